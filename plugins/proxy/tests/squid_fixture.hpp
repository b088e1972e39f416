// A real squid (Debian's) on the host's loopback for the proxy tests: basic authentication
// (unless no user is given) through basic_ncsa_auth with an htpasswd file made here (htpasswd from apache2-utils),
// names from its own hosts_file, every request in access.log. Stopped (by its pid) and its
// files removed with the object, also when the test fails.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "bounded.hpp"
#include "temp_dir.hpp"

namespace berth::proxy::test {

// A free port on 127.0.0.1 (bound, read, closed: squid takes it right after).
inline uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool loopback_connectable(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

class Squid {
 public:
  // users: name -> password (none: no authentication). hosts: name -> address, squid's own
  // resolution.
  Squid(const std::map<std::string, std::string>& users, const std::map<std::string, std::string>& hosts)
      : dir_("proxy-squid") {
    namespace fs = std::filesystem;
    // squid drops to the "proxy" user: its files must be reachable for it.
    fs::permissions(dir_.path(), fs::perms::all);
    const auto d = dir_.path().string();
    for (const auto& [user, password] : users) {
      const std::string cmd = "htpasswd -b" + std::string(std::filesystem::exists(dir_ / "htpasswd") ? "" : "c") +
                              " '" + d + "/htpasswd' '" + user + "' '" + password + "' 2>/dev/null";
      if (std::system(cmd.c_str()) != 0) throw std::runtime_error("htpasswd failed (apt-get install apache2-utils)");
    }
    {
      std::ofstream h(dir_ / "hosts");
      for (const auto& [name, addr] : hosts) h << addr << " " << name << "\n";
    }
    port_ = free_loopback_port();
    std::ofstream(dir_ / "squid.conf")
        << "http_port 127.0.0.1:" << port_ << "\n"
        << "pid_filename " << d << "/squid.pid\n"
        << "access_log stdio:" << d << "/access.log squid\n"
        << "cache_log " << d << "/cache.log\n"
        << "cache_store_log none\n"
        << "coredump_dir " << d << "\n"
        << "netdb_filename none\n"
        << "cache deny all\n"
        << "hosts_file " << d << "/hosts\n"
        << "dns_nameservers 127.0.0.1\n"  // never ask a real resolver: names come from hosts_file
        << (users.empty() ? std::string()
                          : "auth_param basic program /usr/lib/squid/basic_ncsa_auth " + d +
                                "/htpasswd\n"
                                "auth_param basic realm berth-test\n"
                                "auth_param basic children 2\n"
                                "acl authed proxy_auth REQUIRED\n"
                                "http_access deny !authed\n")
        << "acl to_loopback dst 127.0.0.0/8\n"
        << "http_access allow to_loopback\n"  // everything on loopback, nowhere else
        << "http_access deny all\n"
        << "shutdown_lifetime 0 seconds\n"
        << "visible_hostname berth-test-squid\n";
    for (const char* f : {"access.log", "cache.log"}) {
      std::ofstream(dir_ / f).flush();
      fs::permissions(dir_ / f, fs::perms::all);
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/usr/sbin/squid", "squid", "-N", "-f", (d + "/squid.conf").c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (!berth::test::eventually_within([this] { return loopback_connectable(port_); }, std::chrono::seconds(15)))
      throw std::runtime_error("squid did not listen within 15 s; its log:\n" + cache_log());
  }
  ~Squid() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      try {
        berth::test::wait_pid_within(pid_, std::chrono::seconds(10), "squid to stop");
      } catch (const std::exception&) {
      }
    }
  }
  Squid(const Squid&) = delete;
  Squid& operator=(const Squid&) = delete;

  uint16_t port() const { return port_; }
  std::string access_log() const { return read("access.log"); }
  std::string cache_log() const { return read("cache.log"); }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  std::string read(const char* name) const {
    std::ifstream in(dir_ / name);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  berth::test::TempDir dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace berth::proxy::test
