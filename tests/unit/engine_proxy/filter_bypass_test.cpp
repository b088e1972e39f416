// The protected paths (berth's sockets, state and run dirs) must be refused however a request
// spells them: the keys of the JSON document, the path itself, or the place the engine finds it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "berth/engine_proxy/create_rewrite.hpp"
#include "temp_dir.hpp"

using namespace berth::engine_proxy;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {
const PathTranslator kBypassTranslator("/", "/mnt/host");
const ProtectedPaths kBypassProtected({"/run/berth", "/var/lib/berth"});

// The status the create rewrite answers `text` with; 0 when it lets the body through.
int container_status(const std::string& text, const ProtectedPaths& protect = kBypassProtected) {
  json body = json::parse(text);
  try {
    rewrite_container_create(body, kBypassTranslator, protect);
    return 0;
  } catch (const RequestRejected& e) {
    return e.status();
  }
}

int volume_status(const std::string& text) {
  json body = json::parse(text);
  try {
    rewrite_volume_create(body, kBypassTranslator, kBypassProtected);
    return 0;
  } catch (const RequestRejected& e) {
    return e.status();
  }
}

int bind_status(const std::string& spec, const ProtectedPaths& protect = kBypassProtected) {
  try {
    rewrite_bind(spec, kBypassTranslator, protect);
    return 0;
  } catch (const RequestRejected& e) {
    return e.status();
  }
}
}  // namespace

TEST_CASE("keys in any letter case are checked and translated as dockerd reads them") {
  CHECK(container_status(R"({"Image":"x","hostconfig":{"binds":["/run/berth/docker.sock:/s"]}})") == 403);
  CHECK(container_status(R"({"HOSTCONFIG":{"Binds":["/run/berth:/s"]}})") == 403);
  CHECK(container_status("{\"HostConfig\":{\"Bind\\u017f\":[\"/run/berth:/s\"]}}") == 403);  // "ſ" folds to "s"
  CHECK(container_status(R"({"hostConfig":{"mounts":[{"type":"bind","source":"/run/berth","target":"/s"}]}})") == 403);
  CHECK(container_status(R"({"HostConfig":{"Mounts":[{"TYPE":"volume","Source":"v","Target":"/s",
      "volumeoptions":{"driverconfig":{"name":"local","options":{"type":"none","o":"bind","device":"/run/berth"}}}}]}})") ==
        403);

  json body = json::parse(
      R"({"hostconfig":{"binds":["/srv/a:/a"],"mounts":[{"type":"bind","source":"/srv/b","target":"/b"}]}})");
  CHECK(rewrite_container_create(body, kBypassTranslator, kBypassProtected) == 2);
  CHECK(body["hostconfig"]["binds"][0] == "/mnt/host/srv/a:/a");
  CHECK(body["hostconfig"]["mounts"][0]["source"] == "/mnt/host/srv/b");
}

TEST_CASE("Binds and Mounts at the top level of a create body (dockerd's deprecated form) are checked too") {
  CHECK(container_status(R"({"Image":"x","Binds":["/run/berth:/s"]})") == 403);
  CHECK(container_status(R"({"Image":"x","mounts":[{"Type":"bind","Source":"/run/berth","Target":"/s"}]})") == 403);
  json body = json::parse(R"({"Image":"x","Binds":["/srv:/s"]})");
  CHECK(rewrite_container_create(body, kBypassTranslator, kBypassProtected) == 1);
  CHECK(body["Binds"][0] == "/mnt/host/srv:/s");
}

TEST_CASE("two spellings of one field are refused with 400, never guessed") {
  CHECK(container_status(R"({"HostConfig":{"Binds":["/srv:/a"]},"hostconfig":{"Binds":["/run/berth:/x"]}})") == 400);
  CHECK(container_status(R"({"HostConfig":{"Binds":["/srv:/a"],"binds":["/run/berth:/x"]}})") == 400);
  CHECK(container_status(
            R"({"HostConfig":{"Mounts":[{"Type":"bind","type":"volume","Source":"/srv","Target":"/t"}]}})") == 400);
  CHECK(volume_status(
            R"({"DriverOpts":{"o":"bind","device":"/srv"},"driveropts":{"o":"bind","device":"/run/berth"}})") == 400);
}

TEST_CASE("volume create reads its fields in any letter case") {
  CHECK(volume_status(R"({"name":"v","driveropts":{"type":"none","o":"bind","device":"/run/berth"}})") == 403);
  CHECK(volume_status(R"({"DRIVER":"local","DriverOpts":{"type":"none","o":"bind","device":"/run/berth/x"}})") == 403);
  json body = json::parse(R"({"name":"v","driver":"local","driveropts":{"type":"none","o":"bind","device":"/srv"}})");
  CHECK(rewrite_volume_create(body, kBypassTranslator, kBypassProtected) == 1);
  CHECK(body["driveropts"]["device"] == "/mnt/host/srv");
}

TEST_CASE("a local bind volume whose device is not an absolute path is refused with 400") {
  // Relative to dockerd's working directory inside the environment: nothing the host could check.
  CHECK(volume_status(R"({"DriverOpts":{"type":"none","o":"bind","device":"mnt/host/run/berth"}})") == 400);
  CHECK(volume_status(R"({"DriverOpts":{"type":"none","o":"rbind","device":"./x"}})") == 400);
  CHECK(container_status(R"({"HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/s",
      "VolumeOptions":{"DriverConfig":{"Options":{"type":"none","o":"bind","device":"run/berth"}}}}]}})") == 400);
}

TEST_CASE("protected paths are refused however the path is spelled") {
  for (const char* spec :
       {"/run/berth:/x", "/run/berth/:/x", "/run//berth:/x", "//run/berth:/x", "/run/./berth:/x",
        "/tmp/../run/berth:/x", "/run/berth/../berth/docker.sock:/x", "/var/lib/berth///state:/x", "/run/berth/.:/x"})
    CHECK(bind_status(spec) == 403);
  CHECK(bind_status("/run/berthday:/x") == 0);
  CHECK(bind_status("/run:/x") == 0);  // a parent stays allowed, as on a native engine
}

TEST_CASE("protected paths are refused as the environment sees them, under the shared mount") {
  for (const char* spec : {"/mnt/host/run/berth:/x", "/mnt/host//run/berth/docker.sock:/x", "/mnt/host/run/berth/:/x",
                           "/mnt/host/tmp/../run/berth:/x", "/mnt/host/mnt/host/var/lib/berth:/x"})
    CHECK(bind_status(spec) == 403);
  CHECK(volume_status(R"({"DriverOpts":{"type":"none","o":"bind","device":"/mnt/host/run/berth"}})") == 403);
}

TEST_CASE("host symlinks into a protected dir are refused, resolved on the host") {
  berth::test::TempDir dir("bfb");
  const fs::path prot = dir.path() / "state";
  fs::create_directories(prot / "sub");
  fs::create_directories(dir.path() / "u");
  fs::create_symlink(prot, dir.path() / "u/abs");
  fs::create_symlink("../state/sub", dir.path() / "u/rel");
  // Climbs above "/" on the host (a no-op there) and so, inside the environment, out of the shared
  // mount: it would reach the environment's view of the protected dir.
  std::string up;
  for (int i = 0; i < 40; ++i) up += "../";
  fs::create_symlink(up + "mnt/host" + prot.string(), dir.path() / "u/escape");
  const ProtectedPaths protect({prot.string()});
  const std::string u = (dir.path() / "u").string();
  CHECK(bind_status(u + "/abs:/x", protect) == 403);
  CHECK(bind_status(u + "/abs/sub/new:/x", protect) == 403);
  CHECK(bind_status(u + "/rel:/x", protect) == 403);
  CHECK(bind_status(u + "/rel/../x:/x", protect) == 0);  // lexically u/x: not protected
  CHECK(bind_status(u + "/escape:/x", protect) == 403);
  CHECK(bind_status(u + ":/x", protect) == 0);
}

TEST_CASE("create requests are recognised however dockerd's router would route them") {
  CHECK(is_container_create("POST", "/v1.40.9/containers/create"));         // dockerd's route takes /v{[0-9.]+}
  CHECK(is_container_create("POST", "/v1.41/containers/cr%65ate?name=x"));  // the router matches the decoded path
  CHECK(is_container_create("POST", "/v1.41/containers%2Fcreate"));
  CHECK(is_container_create("POST", "http://localhost/v1.41/containers/create"));  // absolute-form target
  CHECK(is_volume_create("POST", "/v1.40.9/volumes/create"));
  CHECK(is_volume_create("POST", "/v1.41/volumes/%63reate"));
  CHECK(is_volume_create("POST", "unix://x/volumes/create"));
  CHECK_FALSE(is_container_create("POST", "/v1.41/containers/created"));
  CHECK_FALSE(is_container_create("POST", "/v1.41/containers/abc/start"));
  CHECK_FALSE(is_volume_create("POST", "/v1.41/volumes/prune"));
}

TEST_CASE("swarm service mounts are translated and checked like a container's") {
  CHECK(is_service_write("POST", "/v1.41/services/create"));
  CHECK(is_service_write("POST", "/v1.41/services/abc123/update?version=3"));
  CHECK(is_service_write("POST", "/services/create"));
  CHECK_FALSE(is_service_write("GET", "/v1.41/services/abc123"));
  CHECK_FALSE(is_service_write("POST", "/v1.41/services/abc123/logs"));
  const auto status = [](const std::string& text) {
    json body = json::parse(text);
    try {
      rewrite_service_spec(body, kBypassTranslator, kBypassProtected);
      return 0;
    } catch (const RequestRejected& e) {
      return e.status();
    }
  };
  CHECK(status(
            R"({"TaskTemplate":{"ContainerSpec":{"Mounts":[{"Type":"bind","Source":"/run/berth","Target":"/s"}]}}})") ==
        403);
  CHECK(status(R"({"tasktemplate":{"containerspec":{"mounts":[{"type":"bind","source":"/mnt/host/run/berth",
      "target":"/s"}]}}})") == 403);
  json body = json::parse(R"({"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"x",
      "Mounts":[{"Type":"bind","Source":"/srv/www","Target":"/www"}]}}})");
  CHECK(rewrite_service_spec(body, kBypassTranslator, kBypassProtected) == 1);
  CHECK(body["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"] == "/mnt/host/srv/www");
  json none = json::parse(R"({"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"x"}}})");
  CHECK(rewrite_service_spec(none, kBypassTranslator, kBypassProtected) == 0);
}

TEST_CASE("a local overlay volume's directories are host paths: translated and checked like a bind's") {
  CHECK(volume_status(R"({"DriverOpts":{"type":"overlay","device":"overlay",
      "o":"lowerdir=/run/berth,upperdir=/srv/up,workdir=/srv/work"}})") == 403);
  CHECK(volume_status(R"({"DriverOpts":{"type":"overlay","device":"overlay",
      "o":"lowerdir=/srv/a:/mnt/host/run/berth,upperdir=/srv/up,workdir=/srv/work"}})") == 403);
  // Relative to dockerd's working directory inside the environment (".berth-host" holds its sockets).
  CHECK(volume_status(R"({"DriverOpts":{"type":"overlay","device":"overlay","o":"lowerdir=.berth-host"}})") == 400);
  CHECK(container_status(R"({"HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/s",
      "VolumeOptions":{"DriverConfig":{"Options":{"type":"overlay","device":"overlay","o":"lowerdir=/run/berth"}}}}]}})") ==
        403);
  json body = json::parse(R"({"Name":"ov","DriverOpts":{"type":"overlay","device":"overlay",
      "o":"ro,lowerdir=/srv/a:/srv/b,upperdir=/srv/up,workdir=/srv/work,index=off"}})");
  CHECK(rewrite_volume_create(body, kBypassTranslator, kBypassProtected) == 1);
  CHECK(body["DriverOpts"]["o"] ==
        "ro,lowerdir=/mnt/host/srv/a:/mnt/host/srv/b,upperdir=/mnt/host/srv/up,workdir=/mnt/host/srv/work,index=off");
  json tmpfs = json::parse(R"({"Name":"t","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m"}})");
  CHECK(rewrite_volume_create(tmpfs, kBypassTranslator, kBypassProtected) == 0);
}
