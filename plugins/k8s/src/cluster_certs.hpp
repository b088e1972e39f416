// The cluster's certificates, made on the host with OpenSSL: a CA, the API server's serving
// certificate and the admin client certificate of the host's kubeconfig. EC P-256 keys, as
// k3s makes its own.
#pragma once

#include <string>
#include <vector>

namespace berth::k8s {

struct PemPair {
  std::string cert;
  std::string key;
};

struct ClusterCerts {
  PemPair ca;      // signs both; also the client CA the server verifies clients with
  PemPair server;  // CN kube-apiserver, SANs below, serverAuth
  PemPair admin;   // CN berth-admin, O system:masters (Kubernetes' admin group), clientAuth
};

// SANs of the server certificate: names and IP addresses (IPv4 or IPv6 text).
ClusterCerts make_cluster_certs(const std::vector<std::string>& dns_names, const std::vector<std::string>& ips);

// What a certificate says, for the status and the tests: "CN=...,O=...", SANs as
// "DNS:localhost", "IP Address:127.0.0.1", and whether `issuer_pem` signed it.
struct CertFacts {
  std::string subject;
  std::vector<std::string> sans;
  bool signed_by_issuer = false;
  bool is_ca = false;
};
CertFacts inspect_certificate(const std::string& cert_pem, const std::string& issuer_pem);

}  // namespace berth::k8s
