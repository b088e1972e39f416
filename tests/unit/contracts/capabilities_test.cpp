// The capability requirement rule every plugin host and feature applies.
#include <berth/contracts/capabilities.hpp>
#include <catch2/catch.hpp>

namespace cap = berth::contracts::capability;
using nlohmann::json;

TEST_CASE("a requirement is met by any one of its alternatives, and only by a capability provided") {
  const json wsl2{{"net.netns", {{"path", "/proc/1/ns/net"}}}, {"share.host", {{"host", "/"}}}};
  const json vm{{"net.hostfwd", {{"qmp_socket", "/q"}}}};
  CHECK(cap::met(wsl2, "net.netns|net.hostfwd"));
  CHECK(cap::met(vm, "net.netns|net.hostfwd"));
  CHECK(cap::met(wsl2, "share.host"));
  CHECK_FALSE(cap::met(vm, "share.host"));
  CHECK_FALSE(cap::met(json::object(), "net.netns"));
  CHECK_FALSE(cap::met(json(nullptr), "net.netns"));
  CHECK(cap::alternatives("a|b||c") == std::vector<std::string>{"a", "b", "c"});
  CHECK(cap::alternatives("net.netns") == std::vector<std::string>{"net.netns"});
  CHECK(cap::alternatives("").empty());
}

TEST_CASE("a capability name is dotted and lower case") {
  CHECK(cap::valid_name("net.netns"));
  CHECK(cap::valid_name("vendor.my-cap_2.x"));
  CHECK_FALSE(cap::valid_name("netns"));
  CHECK_FALSE(cap::valid_name("Net.netns"));
  CHECK_FALSE(cap::valid_name("net..netns"));
  CHECK_FALSE(cap::valid_name(".net"));
  CHECK_FALSE(cap::valid_name("net."));
  CHECK_FALSE(cap::valid_name("net.netns|net.hostfwd"));
  CHECK_FALSE(cap::valid_name(""));
}
