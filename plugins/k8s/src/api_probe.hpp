// One HTTPS GET against the Kubernetes API as kubectl makes it: TLS to 127.0.0.1 verified
// against the cluster's CA (the server certificate must name 127.0.0.1), the admin client
// certificate, a deadline on the whole exchange.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace berth::k8s {

struct ProbeResult {
  int status = 0;    // HTTP status; 0 when no answer came
  std::string body;  // the answer, or why there was none
};

ProbeResult https_get(int port, const std::string& target, const std::string& ca_pem, const std::string& cert_pem,
                      const std::string& key_pem, std::chrono::milliseconds deadline);

// The failing checks of a /readyz?verbose answer ("[-]etcd failed: reason withheld" -> "etcd").
std::vector<std::string> failing_checks(const std::string& verbose_body);

}  // namespace berth::k8s
