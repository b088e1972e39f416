// What the plugin host hands a feature when the engine attaches: exactly the
// capabilities it declared that the environment provides, or a reason.
#include "berth/plugin_host/capability_grant.hpp"

#include <catch2/catch.hpp>

#include "berth/plugin_host/manifest.hpp"

using namespace berth::plugin_host;
using nlohmann::json;

namespace {

std::string refusal_of(const std::string& capabilities, const std::string& kind = "feature") {
  try {
    parse_manifest(R"({"id":"x","kind":")" + kind + R"(","version":"1","library":"x.so","capabilities":)" +
                   capabilities + "}");
  } catch (const ManifestError& e) {
    return e.what();
  }
  return "parsed";
}

const json kWsl2Like{{"net.netns", {{"path", "/proc/7/ns/net"}, {"pid", 7}}}, {"share.host", {{"host", "/"}}}};
const json kVmLike{{"net.hostfwd", {{"qmp_socket", "/q"}}}, {"console.log", {{"path", "/c"}}}};

}  // namespace

TEST_CASE("a feature's manifest declares the capabilities it requires and uses") {
  const auto m = parse_manifest(R"({"id":"x","kind":"feature","version":"1","library":"x.so",
      "capabilities":{"requires":["net.netns|net.hostfwd"],"uses":["share.host"]}})");
  CHECK(m.capabilities.requires_caps == std::vector<std::string>{"net.netns|net.hostfwd"});
  CHECK(m.capabilities.uses == std::vector<std::string>{"share.host"});
  CHECK(parse_manifest(R"({"id":"x","kind":"feature","version":"1","library":"x.so"})").capabilities.uses.empty());
}

TEST_CASE("a malformed capabilities field refuses the plugin, naming what is wrong") {
  CHECK_THAT(refusal_of(R"(["net.netns"])"), Catch::Contains("\"capabilities\" must be an object"));
  CHECK_THAT(refusal_of(R"({"require":["net.netns"]})"), Catch::Contains("unknown key \"require\""));
  CHECK_THAT(refusal_of(R"({"requires":"net.netns"})"), Catch::Contains("\"capabilities\".\"requires\" must be"));
  CHECK_THAT(refusal_of(R"({"uses":[1]})"), Catch::Contains("\"capabilities\".\"uses\" must be"));
  CHECK_THAT(refusal_of(R"({"requires":["net.netns|"]})"), Catch::Contains("\"\" is not a capability name"));
  CHECK_THAT(refusal_of(R"({"requires":["Net.NetNS"]})"), Catch::Contains("\"Net.NetNS\" is not a capability name"));
  CHECK_THAT(refusal_of(R"({"requires":["net.netns"]})", "backend"),
             Catch::Contains("a backend reports what its environment provides in its env status"));
  CHECK(refusal_of("null") == "parsed");
}

TEST_CASE("a feature gets exactly what it declared and the environment provides") {
  const CapabilityNeeds vpnkit{{"net.netns|net.hostfwd"}, {}};
  auto g = grant_capabilities(vpnkit, kWsl2Like);
  CHECK(g.unmet.empty());
  CHECK(g.granted == json{{"net.netns", kWsl2Like["net.netns"]}});  // not share.host: not declared
  g = grant_capabilities(vpnkit, kVmLike);
  CHECK(g.unmet.empty());
  CHECK(g.granted == json{{"net.hostfwd", kVmLike["net.hostfwd"]}});

  const CapabilityNeeds both{{"net.netns"}, {"share.host", "console.log"}};
  g = grant_capabilities(both, kWsl2Like);
  CHECK(g.unmet.empty());
  CHECK(g.granted.size() == 2);  // net.netns, share.host; console.log is not there
  CHECK(g.granted.contains("share.host"));
}

TEST_CASE("an unmet requirement is named with what the environment provides instead") {
  const CapabilityNeeds needs{{"net.netns|net.hostfwd", "share.host"}, {"console.log"}};
  auto g = grant_capabilities(needs, json{{"console.log", json::object()}});
  CHECK(g.unmet == std::vector<std::string>{"net.netns|net.hostfwd", "share.host"});
  CHECK(unmet_reason(g.unmet, json{{"console.log", json::object()}}) ==
        "not attached to the environment: it needs net.netns or net.hostfwd and share.host, and the environment "
        "provides console.log");
  g = grant_capabilities(needs, json(nullptr));
  CHECK(g.unmet.size() == 2);
  CHECK_THAT(unmet_reason(g.unmet, json(nullptr)), Catch::EndsWith("the environment provides none"));
  CHECK(grant_capabilities(CapabilityNeeds{}, json(nullptr)).unmet.empty());
}

TEST_CASE("the engine document a feature gets: granted capabilities, and only the env status contract's keys") {
  const json engine{{"backend", "x"},
                    {"engine_socket", "/run/berth/docker.sock"},
                    {"env",
                     {{"state", "running"},
                      {"pid", 7},
                      {"data_store", "/d"},
                      {"capabilities", kWsl2Like},
                      {"netns", "/proc/7/ns/net"},
                      {"qmp", "/q"}}}};
  const json doc = engine_document_for_feature(engine, json{{"net.netns", kWsl2Like["net.netns"]}});
  CHECK(doc["engine_socket"] == "/run/berth/docker.sock");
  CHECK(doc["env"] == json{{"state", "running"}, {"pid", 7}, {"data_store", "/d"}});
  CHECK(doc["capabilities"] == json{{"net.netns", kWsl2Like["net.netns"]}});
}
