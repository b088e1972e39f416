#include "cluster_certs.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

namespace berth::k8s {

namespace {

template <auto Free>
struct Deleter {
  template <class T>
  void operator()(T* p) const {
    Free(p);
  }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("making the cluster's certificates: ") + what + " failed");
}

Key new_key() {
  Key k(EVP_EC_gen("P-256"));
  check(k != nullptr, "EC key generation");
  return k;
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of(X509* x) {
  Bio b(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(b.get(), x) == 1, "PEM encoding");
  return bio_text(b.get());
}

std::string pem_of(EVP_PKEY* k) {
  Bio b(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) == 1, "PEM encoding");
  return bio_text(b.get());
}

Cert cert_from_pem(const std::string& pem) {
  Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Cert(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
}

void add_ext(X509* issuer, X509* subject, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, subject, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, value.c_str());
  X509_add_ext(subject, ext, -1);
  X509_EXTENSION_free(ext);
}

struct Spec {
  std::string cn;
  std::string org;
  long days;
};

// A certificate for `key`, to be signed by issuer (nullptr: self-signed); its extensions.
Cert make_cert(const Spec& spec, EVP_PKEY* key, X509* issuer) {
  Cert x(X509_new());
  check(x != nullptr, "X509_new");
  X509_set_version(x.get(), 2);
  std::unique_ptr<BIGNUM, Deleter<BN_free>> serial(BN_new());
  check(BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1, "serial");  // positive, as Go wants
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get()));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);  // a guest clock a little behind still accepts it
  X509_gmtime_adj(X509_getm_notAfter(x.get()), spec.days * 86400L);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  if (!spec.org.empty())
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.org.c_str()), -1,
                               -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer ? issuer : x.get();
  add_ext(signer, x.get(), NID_subject_key_identifier, "hash");
  if (issuer == nullptr) {
    add_ext(signer, x.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_ext(signer, x.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign");
  } else {
    add_ext(signer, x.get(), NID_authority_key_identifier, "keyid");
    add_ext(signer, x.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_ext(signer, x.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment");
  }
  return x;
}

void sign(X509* x, EVP_PKEY* key) {
  check(X509_sign(x, key, EVP_sha256()) > 0, "signing");
}

}  // namespace

ClusterCerts make_cluster_certs(const std::vector<std::string>& dns_names, const std::vector<std::string>& ips) {
  ClusterCerts out;
  Key ca_key = new_key();
  Cert ca = make_cert({"berth-kubernetes-ca", "", 3650}, ca_key.get(), nullptr);
  sign(ca.get(), ca_key.get());

  Key server_key = new_key();
  Cert server = make_cert({"kube-apiserver", "", 825}, server_key.get(), ca.get());
  std::string sans;
  for (const auto& d : dns_names) sans += (sans.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : ips) sans += (sans.empty() ? "IP:" : ",IP:") + ip;
  if (!sans.empty()) add_ext(ca.get(), server.get(), NID_subject_alt_name, sans);
  add_ext(ca.get(), server.get(), NID_ext_key_usage, "serverAuth");
  sign(server.get(), ca_key.get());

  Key admin_key = new_key();
  Cert admin = make_cert({"berth-admin", "system:masters", 825}, admin_key.get(), ca.get());
  add_ext(ca.get(), admin.get(), NID_ext_key_usage, "clientAuth");
  sign(admin.get(), ca_key.get());

  out.ca = {pem_of(ca.get()), pem_of(ca_key.get())};
  out.server = {pem_of(server.get()), pem_of(server_key.get())};
  out.admin = {pem_of(admin.get()), pem_of(admin_key.get())};
  return out;
}

CertFacts inspect_certificate(const std::string& cert_pem, const std::string& issuer_pem) {
  CertFacts f;
  Cert x = cert_from_pem(cert_pem);
  if (!x) throw std::runtime_error("not a PEM certificate");
  Bio b(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(b.get(), X509_get_subject_name(x.get()), 0, XN_FLAG_RFC2253);
  f.subject = bio_text(b.get());
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x.get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS) {
      f.sans.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                                            static_cast<std::size_t>(ASN1_STRING_length(g->d.dNSName))));
    } else if (g->type == GEN_IPADD) {
      const unsigned char* ip = ASN1_STRING_get0_data(g->d.iPAddress);
      if (ASN1_STRING_length(g->d.iPAddress) == 4)
        f.sans.push_back("IP Address:" + std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." +
                         std::to_string(ip[2]) + "." + std::to_string(ip[3]));
    }
  }
  GENERAL_NAMES_free(names);
  f.is_ca = X509_check_ca(x.get()) > 0;
  if (Cert issuer = cert_from_pem(issuer_pem)) {
    Key issuer_key(X509_get_pubkey(issuer.get()));
    f.signed_by_issuer = issuer_key && X509_verify(x.get(), issuer_key.get()) == 1;
  }
  return f;
}

}  // namespace berth::k8s
