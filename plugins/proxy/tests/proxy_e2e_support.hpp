// What the proxy's end-to-end tests share (wsl2 and hyperv): the registry's PKI, Debian's
// docker-registry behind TLS on the host's loopback, and the engine session with the proxy
// feature's status.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine_session.hpp"
#include "squid_fixture.hpp"

namespace berth::proxy::test {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

inline void run(const std::string& cmd) {
  const auto r = berth::test::run_command(cmd + " 2>&1", 60s);
  INFO(cmd << "\n" << r.output);
  REQUIRE(r.status == 0);
}

inline std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Debian's docker-registry on 127.0.0.1:port, TLS with the given certificate; killed by pid.
class Registry {
 public:
  Registry(const fs::path& dir, uint16_t port) : port_(port) {
    std::ofstream(dir / "registry.yml") << "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                                        << "    rootdirectory: " << (dir / "registry-data").string() << "\n"
                                        << "http:\n  addr: 127.0.0.1:" << port << "\n  tls:\n"
                                        << "    certificate: " << (dir / "server-chain.pem").string() << "\n"
                                        << "    key: " << (dir / "server.key").string() << "\n";
    const std::string log = (dir / "registry.log").string();
    const std::string cfg = (dir / "registry.yml").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      std::freopen(log.c_str(), "w", stderr);
      std::freopen(log.c_str(), "a", stdout);
      ::execl("/usr/bin/docker-registry", "docker-registry", "serve", cfg.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (!berth::test::eventually_within([&] { return berth::proxy::test::loopback_connectable(port_); }, 15s))
      throw std::runtime_error("docker-registry did not listen within 15 s:\n" + read(log));
  }
  ~Registry() {
    ::kill(pid_, SIGTERM);
    try {
      berth::test::wait_pid_within(pid_, 10s, "docker-registry to stop");
    } catch (const std::exception&) {
    }
  }
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

 private:
  uint16_t port_;
  pid_t pid_ = -1;
};

// A corporate root CA and a registry.berth.test server certificate signed by it, made by
// the openssl tool in `pki` (ca.pem, server-chain.pem, server.key). Returns `pki`.
inline fs::path make_registry_pki(const fs::path& pki) {
  fs::create_directories(pki);
  const std::string q = "cd '" + pki.string() + "' && ";
  run(q +
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=berth e2e corp "
      "root' -addext basicConstraints=critical,CA:TRUE");
  run(q +
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=registry.berth.test' && "
      "printf 'subjectAltName=DNS:registry.berth.test\\n' > san.cnf && openssl x509 -req -in server.csr -CA "
      "ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.cnf && cat server.pem > "
      "server-chain.pem");
  return pki;
}

// Says on stderr, at once, which step a long scenario has reached and when: a test that
// ctest stops at its timeout prints no Catch2 report, but what it wrote to stderr shows.
class Steps {
 public:
  void operator()(const std::string& what) const {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "[+%.1f s] %s\n", s, what.c_str());
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

struct Engine : berth::test::EngineSession {
  using EngineSession::EngineSession;
  json proxy() const { return plugin_status("berth.feature.proxy")["proxy"]; }
  // The docker CLI, retried while dockerd restarts (berth-init brings it back in about a second).
  berth::test::CommandResult docker_settled(const std::string& args) const {
    berth::test::CommandResult r;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    do {
      r = docker(args);
      if (r.status == 0 ||
          (r.output.find("Cannot connect") == std::string::npos &&
           r.output.find("connection refused") == std::string::npos && r.output.find("EOF") == std::string::npos))
        return r;
      std::this_thread::sleep_for(200ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return r;
  }
};

}  // namespace berth::proxy::test
