#include "ca_bundle.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

namespace berth::proxy {

namespace fs = std::filesystem;

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string name_line(X509_NAME* name) {
  BioPtr b(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253);
  return bio_text(b.get());
}

std::string hex(const unsigned char* p, unsigned n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

// Appends one parsed certificate, unless the bundle holds it already.
void add_x509(CaBundle& bundle, const std::string& source, X509* x) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  X509_digest(x, EVP_sha256(), md, &n);
  CaCert c;
  c.sha256 = hex(md, n);
  if (std::any_of(bundle.certs.begin(), bundle.certs.end(), [&](const CaCert& o) { return o.sha256 == c.sha256; }))
    return;
  c.source = source;
  c.subject = name_line(X509_get_subject_name(x));
  c.issuer = name_line(X509_get_issuer_name(x));
  c.is_ca = X509_check_ca(x) != 0;
  c.self_signed = (X509_get_extension_flags(x) & EXFLAG_SS) != 0;
  {
    BioPtr b(BIO_new(BIO_s_mem()));
    ASN1_TIME_print(b.get(), X509_get0_notAfter(x));
    c.not_after = bio_text(b.get());
  }
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b.get(), x);
  c.pem = bio_text(b.get());
  bundle.certs.push_back(std::move(c));
}

std::string read_file(const fs::path& p, std::string& error) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    error = "cannot be read";
    return "";
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void add_certificates(CaBundle& bundle, const std::string& source, const std::string& text) {
  ERR_clear_error();
  if (text.find("-----BEGIN ") == std::string::npos) {
    // DER: exactly one certificate.
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    X509Ptr x(d2i_X509(nullptr, &p, static_cast<long>(text.size())));
    if (!x) {
      ERR_clear_error();
      bundle.problems.push_back(
          {source, text.empty() ? "is empty, not a certificate" : "is not a certificate (neither PEM nor DER)"});
      return;
    }
    add_x509(bundle, source, x.get());
    return;
  }
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  int found = 0;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      const unsigned long e = ERR_peek_last_error();
      if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;  // the end
      }
      bundle.problems.push_back({source, "has a PEM block OpenSSL cannot read: " + openssl_error()});
      break;
    }
    const std::string block = name;
    if (block == "CERTIFICATE" || block == "TRUSTED CERTIFICATE" || block == "X509 CERTIFICATE") {
      const unsigned char* p = data;
      X509Ptr x(block == "TRUSTED CERTIFICATE" ? d2i_X509_AUX(nullptr, &p, len) : d2i_X509(nullptr, &p, len));
      if (x) {
        add_x509(bundle, source, x.get());
        ++found;
      } else {
        bundle.problems.push_back(
            {source, "has a " + block + " block that is not a valid certificate: " + openssl_error()});
      }
    } else {
      // Never keep (or quote) a key or anything else that is not a certificate.
      bundle.problems.push_back({source, "holds a " + block + " block, not a certificate; that block is ignored"});
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
  }
  if (found == 0 && (bundle.problems.empty() || bundle.problems.back().source != source))
    bundle.problems.push_back({source, "holds no certificate"});
}

CaBundle collect_cas(const std::vector<std::string>& ca_sources, const std::vector<std::string>& ca_pems) {
  CaBundle bundle;
  auto add_file = [&](const fs::path& p) {
    std::string error;
    const std::string text = read_file(p, error);
    if (!error.empty())
      bundle.problems.push_back({p.string(), error});
    else
      add_certificates(bundle, p.string(), text);
  };
  for (const auto& s : ca_sources) {
    std::error_code ec;
    const fs::path p(s);
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> files;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->path().filename().string().starts_with(".")) continue;  // editors' and rsync's temporaries
        if (it->is_regular_file(ec)) files.push_back(it->path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) add_file(f);
    } else if (fs::exists(p, ec)) {
      add_file(p);
    }
  }
  for (std::size_t i = 0; i < ca_pems.size(); ++i) {
    const auto& e = ca_pems[i];
    if (e.find("-----BEGIN ") != std::string::npos)
      add_certificates(bundle, "ca_pems[" + std::to_string(i) + "]", e);
    else if (std::error_code ec; fs::exists(e, ec))
      add_file(e);
    else
      bundle.problems.push_back({e, "does not exist (ca_pems takes a file path or an inline PEM)"});
  }
  return bundle;
}

std::string CaBundle::pem() const {
  std::string out;
  for (const auto& c : certs) out += c.pem;
  return out;
}

std::string CaBundle::digest() const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  const std::string p = pem();
  EVP_Digest(p.data(), p.size(), md, &n, EVP_sha256(), nullptr);
  return hex(md, n);
}

std::vector<CaSourceCount> count_sources(const CaBundle& bundle, std::size_t max_listed) {
  std::vector<CaSourceCount> out;
  for (const auto& c : bundle.certs) {
    auto it = std::find_if(out.begin(), out.end(), [&](const CaSourceCount& s) { return s.source == c.source; });
    if (it == out.end()) it = out.insert(out.end(), CaSourceCount{c.source, 0, false});
    ++it->count;
  }
  for (auto& s : out) s.listed = s.count <= max_listed;
  return out;
}

}  // namespace berth::proxy
