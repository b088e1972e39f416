// vpnkit's reading of what it is handed: the network capability (its strategy)
// and the env_forwards setting's entries.
#include <catch2/catch.hpp>

#include "env_forwards.hpp"
#include "env_network.hpp"

using namespace berth::vpnkit;
using nlohmann::json;

TEST_CASE("vpnkit's strategy comes from the capability, never from a backend's name") {
  auto n = env_network_from(json{{"net.netns", {{"path", "/proc/9/ns/net"}, {"pid", 9}, {"root", "/proc/9/root"}}}});
  CHECK(n.via == EnvNetwork::Via::netns);
  CHECK(n.via_name() == "net.netns");
  CHECK(n.netns == "/proc/9/ns/net");
  CHECK(n.pid == 9);
  CHECK(n.root == "/proc/9/root");

  n = env_network_from(json{{"net.netns", {{"path", "/run/netns/x"}}}});  // no pid, no root: ports only
  CHECK(n.via == EnvNetwork::Via::netns);
  CHECK(n.pid == 0);
  CHECK(n.root.empty());

  n = env_network_from(json{{"net.hostfwd", {{"qmp_socket", "/q.sock"}, {"guest_address", "10.0.2.16"}}}});
  CHECK(n.via == EnvNetwork::Via::hostfwd);
  CHECK(n.qmp_socket == "/q.sock");
  CHECK(n.guest_address == "10.0.2.16");
  CHECK(n.netdev == "net0");  // defaults of QEMU's user networking
  CHECK(n.host_alias == "10.0.2.2");

  // Both: the namespace wins (the splice path).
  n = env_network_from(json{{"net.hostfwd", {{"qmp_socket", "/q"}}}, {"net.netns", {{"path", "/n"}}}});
  CHECK(n.via == EnvNetwork::Via::netns);

  CHECK(env_network_from(json::object()).via == EnvNetwork::Via::none);
  CHECK(env_network_from(json{{"share.host", json::object()}}).via == EnvNetwork::Via::none);
  CHECK_THROWS_WITH(env_network_from(json{{"net.netns", json::object()}}),
                    Catch::Contains("net.netns gives no \"path\""));
  CHECK_THROWS_WITH(env_network_from(json{{"net.hostfwd", {{"qmp_socket", 3}}}}),
                    Catch::Contains("\"qmp_socket\" must be a non-empty string"));
  CHECK_THROWS_WITH(env_network_from(json{{"net.netns", {{"path", "/n"}, {"pid", "x"}}}}),
                    Catch::Contains("\"pid\" must be a process id"));
}

TEST_CASE("env_forwards entries: [tcp|udp:][HOST_IP:]HOST_PORT:ENV_PORT") {
  auto f = parse_env_forward("tcp:127.0.0.1:16443:6443");
  CHECK(f.proto == "tcp");
  CHECK(f.host_ip == "127.0.0.1");
  CHECK(f.host_port == 16443);
  CHECK(f.env_port == 6443);
  f = parse_env_forward("8080:80");
  CHECK(f.proto == "tcp");
  CHECK(f.host_ip == "127.0.0.1");
  CHECK(f.host_port == 8080);
  CHECK(f.env_port == 80);
  f = parse_env_forward("udp:5353:53");
  CHECK(f.proto == "udp");
  CHECK(f.host_port == 5353);
  f = parse_env_forward("0.0.0.0:9000:9001");
  CHECK(f.host_ip == "0.0.0.0");

  CHECK_THROWS_WITH(parse_env_forward("8080"), Catch::Contains("is not [tcp|udp:][HOST_IP:]HOST_PORT:ENV_PORT"));
  CHECK_THROWS_WITH(parse_env_forward("sctp:1:2"), Catch::Contains("\"sctp\" is not an IPv4 host address"));
  CHECK_THROWS_WITH(parse_env_forward("tcp:localhost:1:2"), Catch::Contains("\"localhost\" is not an IPv4"));
  CHECK_THROWS_WITH(parse_env_forward("70000:1"), Catch::Contains("host port \"70000\" is not a port"));
  CHECK_THROWS_WITH(parse_env_forward("1:0"), Catch::Contains("environment port \"0\" is not a port"));
  CHECK_THROWS_WITH(parse_env_forward("1:-2"), Catch::Contains("is not a port"));
  CHECK_THROWS_WITH(parse_env_forward(""), Catch::Contains("is not [tcp|udp:]"));
}
