#include "berth/engine_proxy/create_rewrite.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace berth::engine_proxy;
using nlohmann::json;

namespace {
const PathTranslator kT("/", "/mnt/host");
const ProtectedPaths kProtect({"/run/berth", "/run/berth/docker.sock"});
}  // namespace

TEST_CASE("rewrite_bind translates absolute sources, keeping destination and options") {
  CHECK(rewrite_bind("/root/my dir:/src", kT, kProtect) == "/mnt/host/root/my dir:/src");
  CHECK(rewrite_bind("/home/u/a b:/d:ro", kT, kProtect) == "/mnt/host/home/u/a b:/d:ro");
  CHECK(rewrite_bind("/data:/data:rw,rprivate", kT, kProtect) == "/mnt/host/data:/data:rw,rprivate");
  CHECK(rewrite_bind("/x/:/y:z", kT, kProtect) == "/mnt/host/x/:/y:z");  // spelled as sent: echoed back
  CHECK(rewrite_bind("/:/host", kT, kProtect) == "/mnt/host:/host");
}

TEST_CASE("rewrite_bind leaves named volumes, relative paths and bare destinations untouched") {
  CHECK(rewrite_bind("myvol:/data", kT, kProtect) == "myvol:/data");
  CHECK(rewrite_bind("myvol:/data:ro", kT, kProtect) == "myvol:/data:ro");
  CHECK(rewrite_bind("./rel:/data", kT, kProtect) == "./rel:/data");
  CHECK(rewrite_bind("rel/dir:/data", kT, kProtect) == "rel/dir:/data");
  CHECK(rewrite_bind("/data", kT, kProtect) == "/data");
}

TEST_CASE("rewrite_bind refuses the engine socket and /run/berth with 403") {
  for (const char* spec :
       {"/run/berth/docker.sock:/var/run/docker.sock", "/run/berth:/x", "/run/berth/:/x:ro", "/run/./berth/sub:/x"}) {
    try {
      rewrite_bind(spec, kT, kProtect);
      FAIL("accepted " << spec);
    } catch (const RequestRejected& e) {
      CHECK(e.status() == 403);
      CHECK(std::string(e.what()).find("engine API") != std::string::npos);
    }
  }
  // A sibling with a common prefix is not protected.
  CHECK(rewrite_bind("/run/berthday:/x", kT, kProtect) == "/mnt/host/run/berthday:/x");
}

TEST_CASE("rewrite_bind refuses a source outside the shared folder with 400") {
  PathTranslator home("/home", "/mnt/host/home");
  try {
    rewrite_bind("/etc:/e", home, kProtect);
    FAIL("accepted /etc");
  } catch (const RequestRejected& e) {
    CHECK(e.status() == 400);
  }
}

TEST_CASE("rewrite_container_create rewrites Binds and bind Mounts only") {
  json body = json::parse(R"({
    "Image": "busybox", "Cmd": ["cat", "/d/f"],
    "HostConfig": {
      "Binds": ["/root/my dir:/d:ro", "namedvol:/v", "rel:/r"],
      "Mounts": [
        {"Type": "bind", "Source": "/home/u/a b", "Target": "/m", "ReadOnly": true},
        {"Type": "volume", "Source": "vol1", "Target": "/vol"},
        {"Type": "volume", "Source": "/looks/absolute", "Target": "/vol2"},
        {"Type": "tmpfs", "Target": "/t"},
        {"Type": "bind", "Source": "relative", "Target": "/rel"}
      ]
    }
  })");
  CHECK(rewrite_container_create(body, kT, kProtect) == 2);
  const auto& hc = body["HostConfig"];
  CHECK(hc["Binds"] == json({"/mnt/host/root/my dir:/d:ro", "namedvol:/v", "rel:/r"}));
  CHECK(hc["Mounts"][0]["Source"] == "/mnt/host/home/u/a b");
  CHECK(hc["Mounts"][0]["ReadOnly"] == true);
  CHECK(hc["Mounts"][1]["Source"] == "vol1");
  CHECK(hc["Mounts"][2]["Source"] == "/looks/absolute");
  CHECK_FALSE(hc["Mounts"][3].contains("Source"));
  CHECK(hc["Mounts"][4]["Source"] == "relative");
  CHECK(body["Cmd"] == json({"cat", "/d/f"}));
}

TEST_CASE("rewrite_container_create copes with missing or null HostConfig parts") {
  json a = json::parse(R"({"Image":"x"})");
  CHECK(rewrite_container_create(a, kT, kProtect) == 0);
  json b = json::parse(R"({"Image":"x","HostConfig":{"Binds":null,"Mounts":null}})");
  CHECK(rewrite_container_create(b, kT, kProtect) == 0);
  CHECK(b["HostConfig"]["Binds"].is_null());
}

TEST_CASE("rewrite_container_create refuses a bind Mount of the engine socket") {
  json body =
      json::parse(R"({"HostConfig":{"Mounts":[{"Type":"bind","Source":"/run/berth/docker.sock","Target":"/s"}]}})");
  CHECK_THROWS_AS(rewrite_container_create(body, kT, kProtect), RequestRejected);
}

TEST_CASE("is_container_create matches versioned and unversioned paths") {
  CHECK(is_container_create("POST", "/containers/create"));
  CHECK(is_container_create("POST", "/v1.41/containers/create"));
  CHECK(is_container_create("POST", "/v1.41/containers/create?name=my-box"));
  CHECK_FALSE(is_container_create("GET", "/v1.41/containers/create"));
  CHECK_FALSE(is_container_create("POST", "/v1.41/containers/abc/start"));
  CHECK_FALSE(is_container_create("POST", "/v1.41/containers/create/x"));
}

TEST_CASE("rewrite_container_create translates the device of a bind volume declared inline in Mounts") {
  json body = json::parse(R"({"HostConfig":{"Mounts":[
    {"Type":"volume","Source":"v1","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"local",
      "Options":{"type":"none","o":"bind","device":"/srv/data"}}}},
    {"Type":"volume","Source":"v2","Target":"/w","VolumeOptions":{"DriverConfig":{"Name":"nfs-driver",
      "Options":{"type":"none","o":"bind","device":"/srv/data"}}}},
    {"Type":"volume","Source":"v3","Target":"/x","VolumeOptions":{"DriverConfig":{
      "Options":{"type":"tmpfs","o":"size=1m","device":"tmpfs"}}}},
    {"Type":"volume","Source":"v4","Target":"/y","VolumeOptions":{"DriverConfig":null}}
  ]}})");
  CHECK(rewrite_container_create(body, kT, kProtect) == 1);
  const auto& m = body["HostConfig"]["Mounts"];
  CHECK(m[0]["VolumeOptions"]["DriverConfig"]["Options"]["device"] == "/mnt/host/srv/data");
  CHECK(m[1]["VolumeOptions"]["DriverConfig"]["Options"]["device"] == "/srv/data");  // another driver's business
  CHECK(m[2]["VolumeOptions"]["DriverConfig"]["Options"]["device"] == "tmpfs");
}

TEST_CASE("rewrite_volume_create translates a local bind volume's device, as compose's driver_opts send it") {
  json body = json::parse(
      R"({"Name":"proj_data","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/home/u/proj/data"},
          "Labels":{"com.docker.compose.project":"proj"}})");
  CHECK(is_volume_create("POST", "/v1.41/volumes/create"));
  CHECK(is_volume_create("POST", "/volumes/create"));
  CHECK_FALSE(is_volume_create("GET", "/v1.41/volumes/create"));
  CHECK_FALSE(is_volume_create("POST", "/v1.41/volumes/prune"));
  CHECK(rewrite_volume_create(body, kT, kProtect) == 1);
  CHECK(body["DriverOpts"]["device"] == "/mnt/host/home/u/proj/data");
  CHECK(body["Labels"]["com.docker.compose.project"] == "proj");

  json rbind = json::parse(R"({"Name":"a","DriverOpts":{"o":"ro,rbind","device":"/srv"}})");  // Driver: default
  CHECK(rewrite_volume_create(rbind, kT, kProtect) == 1);
  CHECK(rbind["DriverOpts"]["device"] == "/mnt/host/srv");
  for (const char* text : {R"({"Name":"plain"})", R"({"Name":"t","DriverOpts":{"type":"tmpfs","device":"tmpfs"}})",
                           R"({"Name":"n","DriverOpts":{"type":"nfs","o":"addr=10.0.0.1","device":":/export"}})",
                           R"({"Name":"b","DriverOpts":{"o":"binder","device":"/srv"}})",
                           R"({"Name":"o","Driver":"other","DriverOpts":{"o":"bind","device":"/srv"}})"}) {
    json other = json::parse(text);
    const json before = other;
    CHECK(rewrite_volume_create(other, kT, kProtect) == 0);
    CHECK(other == before);
  }
}

TEST_CASE("rewrite_volume_create refuses a bind volume of berth's own sockets") {
  json body = json::parse(R"({"Name":"s","DriverOpts":{"type":"none","o":"bind","device":"/run/berth"}})");
  try {
    rewrite_volume_create(body, kT, kProtect);
    FAIL("accepted /run/berth");
  } catch (const RequestRejected& e) {
    CHECK(e.status() == 403);
  }
}
