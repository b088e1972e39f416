// A real dockerd reads create bodies with Go's encoding/json: keys in any letter case, Binds at the
// top level, routes the proxy must recognise. Each way a host path can reach it is checked here
// against the proxy's filter: a protected directory must never be bound, and what the filter
// cannot read is refused, never forwarded.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/engine_proxy/engine_proxy.hpp"
#include "docker_api.hpp"
#include "engine_fixture.hpp"
#include "images.hpp"
#include "shell.hpp"

namespace fs = std::filesystem;
using namespace berth::engine_proxy;
using namespace berth::test;
using nlohmann::json;

namespace {

struct Attack {
  std::string what;
  std::string target;
  std::string body;
  Framing framing = Framing::content_length;
  unsigned status = 403;  // what the proxy answers
};

std::string message_of(const ApiResponse& r) {
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("message") && j["message"].is_string() ? j["message"].get<std::string>() : "";
}

}  // namespace

TEST_CASE("dockerd obeys lower-case keys and top-level Binds, and the proxy refuses them for protected paths") {
  Engine engine;
  const fs::path state = engine.dir / "state";  // stands for berth's state dir: visible to the engine as is
  fs::create_directories(state);
  const std::string s = state.string();
  const std::string psock = (engine.dir / "proxy.sock").string();
  auto options = proxy_options(psock, engine.dockerd->socket(), engine.translator());
  options.protected_paths = {s};
  EngineProxy proxy(std::move(options));
  proxy.start();
  DockerApi api(psock);
  DockerApi direct(engine.dockerd->socket());
  REQUIRE_NOTHROW(engine.import_busybox(engine.dockerd->socket()));

  // What the engine does with these spellings, asked directly: it binds what they name.
  const std::string other = (engine.dir / "other").string();
  fs::create_directories(other);
  auto lower = direct.post("/v1.41/containers/create?name=lower",
                           json{{"image", kImage}, {"cmd", {"true"}}, {"hostconfig", {{"binds", {other + ":/o"}}}}});
  INFO(lower.describe());
  REQUIRE(lower.status == 201);
  CHECK(direct.get("/v1.41/containers/lower/json").json()["HostConfig"]["Binds"] == json({other + ":/o"}));
  auto top = direct.post("/v1.41/containers/create?name=top",
                         json{{"Image", kImage}, {"Cmd", {"true"}}, {"Binds", {other + ":/t"}}});
  INFO(top.describe());
  REQUIRE(top.status == 201);
  CHECK(direct.get("/v1.41/containers/top/json").json()["HostConfig"]["Binds"] == json({other + ":/t"}));
  auto odd_route = direct.post("/v1.40.9/containers/cr%65ate?name=odd",
                               json{{"Image", kImage}, {"Cmd", {"true"}}, {"HostConfig", json::object()}});
  INFO(odd_route.describe());
  CHECK(odd_route.status == 201);

  const std::vector<Attack> attacks = {
      {"lower-case keys", "/v1.41/containers/create",
       json{{"Image", kImage}, {"Cmd", {"true"}}, {"hostconfig", {{"binds", {s + ":/s"}}}}}.dump()},
      {"upper-case keys", "/v1.41/containers/create",
       json{{"Image", kImage}, {"Cmd", {"true"}}, {"HOSTCONFIG", {{"BINDS", {s + "/:/s"}}}}}.dump()},
      {"Binds at the top level", "/v1.41/containers/create",
       json{{"Image", kImage}, {"Cmd", {"true"}}, {"Binds", {s + ":/s"}}}.dump()},
      {"lower-case Mounts", "/v1.41/containers/create",
       json{{"Image", kImage},
            {"Cmd", {"true"}},
            {"HostConfig", {{"mounts", {{{"type", "bind"}, {"source", s}, {"target", "/s"}}}}}}}
           .dump()},
      {"a version with three parts", "/v1.40.9/containers/create",
       json{{"Image", kImage}, {"Cmd", {"true"}}, {"HostConfig", {{"Binds", {s + ":/s"}}}}}.dump()},
      {"a percent-encoded route", "/v1.41/containers/cr%65ate",
       json{{"Image", kImage}, {"Cmd", {"true"}}, {"HostConfig", {{"Binds", {s + ":/s"}}}}}.dump()},
      {"a chunked body", "/v1.41/containers/create",
       json{{"Image", kImage}, {"Cmd", {"true"}}, {"HostConfig", {{"Binds", {s + ":/s"}}}}}.dump(), Framing::chunked},
      {"the shared mount's spelling", "/v1.41/containers/create",
       json{{"Image", kImage}, {"Cmd", {"true"}}, {"HostConfig", {{"Binds", {engine.mnt.string() + s + ":/s"}}}}}
           .dump()},
      {"a swarm service (dockerd answers 503 without a swarm: the body reached it)", "/v1.41/services/create",
       json{{"Name", "svc"},
            {"TaskTemplate",
             {{"ContainerSpec",
               {{"Image", kImage},
                {"Mounts", json::array({json{{"Type", "bind"}, {"Source", s}, {"Target", "/s"}}})}}}}}}
           .dump()},
      {"an overlay volume over the protected dir", "/v1.41/volumes/create",
       json{{"Name", "ov"}, {"DriverOpts", {{"type", "overlay"}, {"device", "overlay"}, {"o", "lowerdir=" + s}}}}
           .dump()},
      {"a lower-case bind volume", "/v1.41/volumes/create",
       json{{"name", "sv"}, {"driveropts", {{"type", "none"}, {"o", "bind"}, {"device", s}}}}.dump()},
  };
  for (const auto& a : attacks) {
    INFO(a.what << ": " << a.target << " " << a.body);
    const auto r = api.send({"POST", a.target, a.body, "application/json", a.framing, {}});
    INFO(r.describe());
    CHECK(r.status == a.status);
    CHECK_THAT(message_of(r), Catch::Contains("refusing to bind-mount"));
  }
  // Nothing of the above reached the engine.
  CHECK(direct.get("/v1.41/containers/json?all=1").json().size() == 3);
  CHECK(direct.get("/v1.41/volumes/sv").status == 404);
  CHECK(direct.get("/v1.41/volumes/ov").status == 404);
}

TEST_CASE("the proxy refuses create bodies it cannot read unambiguously, as dockerd would refuse them") {
  Engine engine;
  const std::string psock = (engine.dir / "proxy.sock").string();
  EngineProxy proxy(proxy_options(psock, engine.dockerd->socket(), engine.translator()));
  proxy.start();
  DockerApi api(psock);
  DockerApi direct(engine.dockerd->socket());
  REQUIRE_NOTHROW(engine.import_busybox(engine.dockerd->socket()));
  const std::string h = engine.hidden.string();

  // Empty and invalid bodies: the proxy answers them itself, in the status class dockerd 20.10
  // gives them (500 for a container create it cannot decode, 400 for a volume create).
  for (const auto& [target, body] :
       std::vector<std::pair<std::string, std::string>>{{"/v1.41/containers/create", ""},
                                                        {"/v1.41/volumes/create", ""},
                                                        {"/v1.41/containers/create", "{\"Image\": "},
                                                        {"/v1.41/volumes/create", "{\"Name\": "}}) {
    INFO(target << " with the body '" << body << "'");
    const std::string type = body.empty() ? "" : "application/json";
    const auto native = direct.send({"POST", target, body, type, Framing::content_length, {}});
    const auto proxied = api.send({"POST", target, body, type, Framing::content_length, {}});
    INFO("native " << native.describe() << "; proxied " << proxied.describe());
    CHECK(native.status >= 400);
    CHECK(proxied.status / 100 == native.status / 100);
    CHECK_THAT(message_of(proxied), Catch::StartsWith("berth:"));
  }
  const std::vector<Attack> unreadable = {
      {"a second document behind the first (dockerd would read the first only)", "/v1.41/containers/create",
       json{{"Image", kImage}, {"Cmd", {"true"}}}.dump() + json{{"HostConfig", {{"Binds", {"/run/berth:/s"}}}}}.dump()},
      {"a key given twice", "/v1.41/containers/create",
       R"({"Image":")" + std::string(kImage) +
           R"(","Cmd":["true"],"HostConfig":{"Binds":[]},"HostConfig":{"Binds":[]}})"},
      {"two spellings of a key", "/v1.41/containers/create",
       R"({"Image":")" + std::string(kImage) + R"(","Cmd":["true"],"HostConfig":{"Binds":[],"binds":[]}})"},
      {"a bind volume with a relative device", "/v1.41/volumes/create",
       R"({"Name":"rel","DriverOpts":{"type":"none","o":"bind","device":"run/berth"}})"},
  };
  for (const auto& a : unreadable) {
    INFO(a.what << ": " << a.body);
    const auto r = api.send({"POST", a.target, a.body, "application/json", a.framing, {}});
    INFO(r.describe());
    CHECK(r.status == 400);
    CHECK_THAT(message_of(r), Catch::StartsWith("berth:"));
  }
  CHECK(direct.get("/v1.41/containers/json?all=1").json().empty());
  CHECK(direct.get("/v1.41/volumes/rel").status == 404);

  // A chunked body is read whole and translated: the container sees the shared directory.
  write_file(engine.hidden / "c/f", "chunked\n");
  const json chunked = {{"Image", kImage}, {"Cmd", {"cat", "/c/f"}}, {"HostConfig", {{"Binds", {h + "/c:/c:ro"}}}}};
  auto created = api.send(
      {"POST", "/v1.41/containers/create?name=chunked", chunked.dump(), "application/json", Framing::chunked, {}});
  INFO(created.describe());
  REQUIRE(created.status == 201);
  CHECK(direct.get("/v1.41/containers/chunked/json").json()["HostConfig"]["Binds"][0] ==
        engine.mnt.string() + h + "/c:/c:ro");

  // A compose-style bind volume spelled in lower case works as on a native engine.
  fs::create_directories(engine.hidden / "vol");
  auto vol =
      api.post("/v1.41/volumes/create",
               json{{"name", "lowervol"}, {"driveropts", {{"type", "none"}, {"o", "bind"}, {"device", h + "/vol"}}}});
  INFO(vol.describe());
  REQUIRE(vol.status == 201);
  auto run = engine.docker(psock, std::string("run --rm -v lowervol:/v ") + kImage + " sh -c 'echo hi > /v/f'");
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(sh("cat " + shell_quote(h + "/vol/f")).output == "hi");
}
