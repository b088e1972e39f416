// The trusted CAs the environment is given: the host's store (the ca_sources setting: files
// and directories) plus the ca_pems setting (paths or inline PEM), parsed and checked with
// OpenSSL. A source that is not a certificate is refused with its path and the reason; the
// rest still counts. Intermediates are kept (a chain a TLS-inspecting proxy sends may lack
// them). Duplicates (same DER) are kept once.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace berth::proxy {

struct CaCert {
  std::string source;   // the file, or "ca_pems[N]" for an inline PEM
  std::string subject;  // one line, RFC 2253
  std::string issuer;
  std::string sha256;     // of the DER, lowercase hex
  std::string not_after;  // as OpenSSL prints it
  bool is_ca = false;     // basicConstraints CA:TRUE
  bool self_signed = false;
  std::string pem;  // re-encoded by OpenSSL
};

struct CaProblem {
  std::string source;
  std::string reason;
};

struct CaBundle {
  std::vector<CaCert> certs;
  std::vector<CaProblem> problems;
  // Every certificate, PEM, one after another: /etc/ssl/certs/ca-certificates.crt inside.
  std::string pem() const;
  // A digest of pem(): a change of the bundle is a change of this string.
  std::string digest() const;
};

// What a status shows of a bundle: each source (in the order first seen) with its count, and
// whether its certificates are listed one by one: only for a source of at most `max_listed`
// (a corporate root, an inline PEM), not for a store's bundle of over a hundred.
struct CaSourceCount {
  std::string source;
  std::size_t count = 0;
  bool listed = false;
};
std::vector<CaSourceCount> count_sources(const CaBundle& bundle, std::size_t max_listed);

// Reads `text` (PEM, possibly many blocks, or one DER certificate) from `source`; appends
// what it holds to `bundle`.
void add_certificates(CaBundle& bundle, const std::string& source, const std::string& text);

// ca_sources: files and directories (read recursively; a missing one is not a problem, the
// host may have no /usr/local/share/ca-certificates). ca_pems: a path, or an inline PEM.
CaBundle collect_cas(const std::vector<std::string>& ca_sources, const std::vector<std::string>& ca_pems);

}  // namespace berth::proxy
