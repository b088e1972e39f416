// The cluster's certificates: what they say, who signed them, and a real TLS exchange with
// them (the API server double on loopback, probed as the feature probes /readyz).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <berth/contracts/kubernetes_layout.hpp>
#include <catch2/catch.hpp>
#include <fstream>

#include "api_probe.hpp"
#include "bounded.hpp"
#include "cluster_certs.hpp"
#include "loopback_port.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace berth::k8s;
using namespace std::chrono_literals;
namespace layout = berth::contracts::kubernetes;

namespace {

const ClusterCerts& certs() {
  static const ClusterCerts c = make_cluster_certs({"localhost", "host.berth.internal"}, {"127.0.0.1"});
  return c;
}

// The double serving from `data_dir` on `port`, killed by its pid at the end.
class Double {
 public:
  Double(const fs::path& data_dir, uint16_t port, std::vector<std::pair<std::string, std::string>> env) {
    const auto binary = berth::test::binary_dir() / "fixtures" / "k8s_api_double" / "k3s";
    pid_ = ::fork();
    if (pid_ == 0) {
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      const std::string p = std::to_string(port);
      ::execl(binary.c_str(), "k3s", "server", "--data-dir", data_dir.c_str(), "--https-listen-port", p.c_str(),
              "--bind-address", "127.0.0.1", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Double() {
    ::kill(pid_, SIGTERM);
    berth::test::wait_pid_within(pid_, 5s, "the API server double to stop");
  }
  Double(const Double&) = delete;
  Double& operator=(const Double&) = delete;

 private:
  pid_t pid_ = -1;
};

void put(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

void place(const fs::path& data_dir) {
  put(data_dir / layout::kServingCert, certs().server.cert);
  put(data_dir / layout::kServingKey, certs().server.key);
  put(data_dir / layout::kClientCaCert, certs().ca.cert);
}

}  // namespace

TEST_CASE("the CA signs a server certificate for localhost, 127.0.0.1 and host.berth.internal and an admin client") {
  const auto ca = inspect_certificate(certs().ca.cert, certs().ca.cert);
  CHECK(ca.is_ca);
  CHECK(ca.signed_by_issuer);
  const auto server = inspect_certificate(certs().server.cert, certs().ca.cert);
  CHECK_FALSE(server.is_ca);
  CHECK(server.signed_by_issuer);
  CHECK(server.subject == "CN=kube-apiserver");
  CHECK(server.sans == std::vector<std::string>{"DNS:localhost", "DNS:host.berth.internal", "IP Address:127.0.0.1"});
  const auto admin = inspect_certificate(certs().admin.cert, certs().ca.cert);
  CHECK(admin.signed_by_issuer);
  CHECK(admin.subject == "CN=berth-admin,O=system:masters");
  // Another cluster's CA did not sign it.
  const auto other = make_cluster_certs({"localhost"}, {});
  CHECK_FALSE(inspect_certificate(certs().admin.cert, other.ca.cert).signed_by_issuer);
  CHECK(certs().admin.key.find("PRIVATE KEY") != std::string::npos);
}

TEST_CASE("readiness over TLS with client certificates: ready, never ready naming the check, wrong client refused") {
  berth::test::TempDir dir("berth-k8s-certs");
  place(dir.path());
  const uint16_t port = berth::test::free_loopback_port();
  const auto& c = certs();

  SECTION("ready after its delay") {
    Double server(dir.path(), port, {{"K8S_API_DOUBLE_READY_AFTER_S", "0"}});
    ProbeResult r;
    REQUIRE(berth::test::eventually_within(
        [&] {
          r = https_get(port, "/readyz?verbose", c.ca.cert, c.admin.cert, c.admin.key, 2s);
          return r.status == 200;
        },
        10s));
    CHECK(r.body.find("readyz check passed") != std::string::npos);
    CHECK(https_get(port, "/version", c.ca.cert, c.admin.cert, c.admin.key, 2s).body.find("gitVersion") !=
          std::string::npos);
    INFO("a client certificate of another CA is refused in the handshake");
    const auto other = make_cluster_certs({"localhost"}, {});
    CHECK(https_get(port, "/readyz", c.ca.cert, other.admin.cert, other.admin.key, 2s).status == 0);
    INFO("and a server that the CA did not sign is not trusted");
    CHECK(https_get(port, "/readyz", other.ca.cert, c.admin.cert, c.admin.key, 2s).status == 0);
  }
  SECTION("never ready, naming etcd") {
    Double server(dir.path(), port, {{"K8S_API_DOUBLE_NEVER_READY", "etcd"}, {"K8S_API_DOUBLE_READY_AFTER_S", "0"}});
    ProbeResult r;
    REQUIRE(berth::test::eventually_within(
        [&] {
          r = https_get(port, "/readyz?verbose", c.ca.cert, c.admin.cert, c.admin.key, 2s);
          return r.status != 0;
        },
        10s));
    CHECK(r.status == 500);
    CHECK(failing_checks(r.body) == std::vector<std::string>{"etcd"});
  }
}

TEST_CASE("failing checks are read from kube-apiserver's verbose list") {
  CHECK(failing_checks("[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\n[-]poststarthook/x failed\n"
                       "readyz check failed\n") == std::vector<std::string>{"etcd", "poststarthook/x"});
  CHECK(failing_checks("ok").empty());
}
