// The way back: what the engine answers about translated paths, as a client must see it.
#include "berth/engine_proxy/response_rewrite.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace berth::engine_proxy;

namespace {
const PathTranslator kResponseTranslator("/", "/mnt/host");

// A container inspect document as dockerd 20.10 writes it (shortened), for a container created
// through berth with -v "/tmp/x:/data" -v bvol:/bv -v "/tmp/y/:/y:ro" --mount type=bind,... and an
// inline bind volume.
const char* kInspect = R"({"Id":"cfecd475bd37","Created":"2026-12-02T11:39:53.845009517Z",
"LogPath":"/var/lib/docker/containers/cfecd475bd37/cfecd475bd37-json.log","Name":"/c1",
"HostConfig":{"Binds":["/mnt/host/tmp/x:/data","bvol:/bv","/mnt/host/tmp/y/:/y:ro","/anon"],
 "LogConfig":{"Type":"json-file","Config":{}},
 "Mounts":[{"Type":"bind","Source":"/mnt/host/tmp/my dir","Target":"/m","ReadOnly":true},
           {"Type":"volume","Source":"iv","Target":"/iv","VolumeOptions":{"DriverConfig":{"Name":"local",
            "Options":{"type":"none","o":"bind","device":"/mnt/host/srv/d"}}}},
           {"Type":"tmpfs","Target":"/t"}]},
"Mounts":[{"Type":"bind","Source":"/mnt/host/tmp/x","Destination":"/data","Mode":"","RW":true,"Propagation":"rprivate"},
          {"Type":"volume","Name":"bvol","Source":"/var/lib/docker/volumes/bvol/_data","Destination":"/bv","Driver":"local"},
          {"Type":"bind","Source":"/etc/resolv.conf","Destination":"/r"}],
"Config":{"Hostname":"cfecd475bd37","Labels":{"com.docker.compose.project.working_dir":"/mnt/host/keep/as/is"}}})";
}  // namespace

TEST_CASE("response_kind names the answers that carry translated paths") {
  CHECK(response_kind("GET", "/v1.41/containers/c1/json") == ResponseKind::container_inspect);
  CHECK(response_kind("GET", "/containers/c1/json?size=1") == ResponseKind::container_inspect);
  CHECK(response_kind("GET", "/v1.41/containers/json?all=1") == ResponseKind::container_list);
  CHECK(response_kind("GET", "/v1.41/containers/json/json") == ResponseKind::container_inspect);  // named "json"
  CHECK(response_kind("GET", "/v1.41/volumes") == ResponseKind::volume_list);
  CHECK(response_kind("GET", "/v1.41/volumes?filters=%7B%7D") == ResponseKind::volume_list);
  CHECK(response_kind("GET", "/v1.41/volumes/data") == ResponseKind::volume);
  CHECK(response_kind("POST", "/v1.41/volumes/create") == ResponseKind::volume);
  CHECK(response_kind("GET", "/v1.41/system/df") == ResponseKind::system_df);
  CHECK(response_kind("GET", "/v1.41/events?since=1") == ResponseKind::events);
  CHECK(response_kind("POST", "/v1.41/containers/c1/wait?condition=next-exit") == ResponseKind::container_wait);
  CHECK(response_kind("POST", "/v1.41/containers/create") == ResponseKind::none);
  CHECK(response_kind("GET", "/v1.41/containers/c1/logs") == ResponseKind::none);
  CHECK(response_kind("DELETE", "/v1.41/volumes/data") == ResponseKind::none);
  CHECK(response_kind("GET", "/v1.41/images/json") == ResponseKind::none);
}

TEST_CASE("restore_container gives back the paths the client sent and leaves the engine's own") {
  auto doc = Json::parse(kInspect);
  CHECK(restore_container(doc, kResponseTranslator) == 5);
  const auto& hc = doc["HostConfig"];
  CHECK(hc["Binds"] == Json({"/tmp/x:/data", "bvol:/bv", "/tmp/y/:/y:ro", "/anon"}));
  CHECK(hc["Mounts"][0]["Source"] == "/tmp/my dir");
  CHECK(hc["Mounts"][1]["VolumeOptions"]["DriverConfig"]["Options"]["device"] == "/srv/d");
  CHECK(doc["Mounts"][0]["Source"] == "/tmp/x");
  CHECK(doc["Mounts"][1]["Source"] == "/var/lib/docker/volumes/bvol/_data");
  CHECK(doc["Mounts"][2]["Source"] == "/etc/resolv.conf");
  CHECK(doc["LogPath"] == "/var/lib/docker/containers/cfecd475bd37/cfecd475bd37-json.log");
  // Labels are the client's own text, never translated.
  CHECK(doc["Config"]["Labels"]["com.docker.compose.project.working_dir"] == "/mnt/host/keep/as/is");
  CHECK(restore_container(doc, kResponseTranslator) == 0);  // nothing left to translate
}

TEST_CASE("restore_document keeps the engine's key order and newline, and leaves untouched answers alone") {
  const std::string text = std::string(kInspect) + "\n";
  auto restored = restore_document(ResponseKind::container_inspect, text, kResponseTranslator);
  REQUIRE(restored);
  CHECK(restored->back() == '\n');
  CHECK(restored->find(R"({"Id":"cfecd475bd37","Created":)") == 0);
  CHECK(restored->find("/mnt/host/tmp") == std::string::npos);
  CHECK_FALSE(restore_document(ResponseKind::container_inspect, R"({"Id":"x","Mounts":[]})", kResponseTranslator));
  CHECK_FALSE(restore_document(ResponseKind::container_inspect, "not json", kResponseTranslator));
  CHECK_FALSE(restore_document(ResponseKind::container_inspect, text, PathTranslator::identity()));
  CHECK_FALSE(restore_document(ResponseKind::none, text, kResponseTranslator));
}

TEST_CASE("restore_response covers the container list, volumes and system df") {
  auto list = Json::parse(R"([{"Id":"a","Names":["/a"],"HostConfig":{"NetworkMode":"default"},
    "Mounts":[{"Type":"bind","Source":"/mnt/host/tmp/x","Destination":"/data"}]},
    {"Id":"b","Mounts":[{"Type":"volume","Name":"v","Source":"/var/lib/docker/volumes/v/_data"}]}])");
  CHECK(restore_response(ResponseKind::container_list, list, kResponseTranslator) == 1);
  CHECK(list[0]["Mounts"][0]["Source"] == "/tmp/x");

  const char* bind_volume = R"({"CreatedAt":"2026-12-02T11:39:53Z","Driver":"local","Labels":{},
    "Mountpoint":"/var/lib/docker/volumes/bvol/_data","Name":"bvol",
    "Options":{"device":"/mnt/host/tmp/x","o":"bind","type":"none"},"Scope":"local"})";
  auto volume = Json::parse(bind_volume);
  CHECK(restore_response(ResponseKind::volume, volume, kResponseTranslator) == 1);
  CHECK(volume["Options"]["device"] == "/tmp/x");
  CHECK(volume["Mountpoint"] == "/var/lib/docker/volumes/bvol/_data");

  auto volumes = Json::parse(std::string(R"({"Volumes":[)") + bind_volume +
                             R"(,{"Driver":"local","Name":"plain","Mountpoint":"/var/lib/docker/volumes/plain/_data",
                                  "Options":null}],"Warnings":null})");
  CHECK(restore_response(ResponseKind::volume_list, volumes, kResponseTranslator) == 1);
  CHECK(volumes["Volumes"][0]["Options"]["device"] == "/tmp/x");

  auto df = Json::parse(std::string(R"({"LayersSize":1,"Images":[],"Containers":[{"Id":"a","Mounts":[
    {"Type":"bind","Source":"/mnt/host/srv","Destination":"/s"}]}],"Volumes":[)") +
                        bind_volume + R"(],"BuildCache":[]})");
  CHECK(restore_response(ResponseKind::system_df, df, kResponseTranslator) == 2);
  CHECK(df["Containers"][0]["Mounts"][0]["Source"] == "/srv");
}

TEST_CASE("restore_lines translates events one line at a time and passes the rest unchanged") {
  const std::string untouched =
      R"({"Type":"volume","Action":"mount","Actor":{"ID":"bvol","Attributes":{"container":"c","destination":"/mnt/host/x","driver":"local"}},"time":1})"
      "\n";
  CHECK_FALSE(restore_lines(untouched, kResponseTranslator));  // a destination is the container's path, not the host's
  const std::string with_source =
      R"({"Type":"volume","Action":"create","Actor":{"ID":"v","Attributes":{"device":"/mnt/host/tmp/x","source":"/mnt/host/tmp/y"}}})";
  auto restored = restore_lines(untouched + with_source + "\nnot json\n", kResponseTranslator);
  REQUIRE(restored);
  CHECK(restored->rfind(untouched, 0) == 0);
  CHECK(restored->find(R"("device":"/tmp/x","source":"/tmp/y")") != std::string::npos);
  CHECK(restored->substr(restored->size() - 10) == "\nnot json\n");
  CHECK_FALSE(restore_lines(with_source, PathTranslator::identity()));
}

TEST_CASE("restore_message translates shared paths in the engine's error messages") {
  CHECK(restore_message(R"(invalid mount config for type "bind": bind source path does not exist: /mnt/host/tmp/nope)",
                        kResponseTranslator) ==
        R"(invalid mount config for type "bind": bind source path does not exist: /tmp/nope)");
  CHECK(restore_message("error while mounting volume '/var/lib/docker/volumes/v/_data': failed to mount local volume: "
                        "mount /mnt/host/tmp/nope:/var/lib/docker/volumes/v/_data, flags: 0x1000: no such file",
                        kResponseTranslator) ==
        "error while mounting volume '/var/lib/docker/volumes/v/_data': failed to mount local volume: "
        "mount /tmp/nope:/var/lib/docker/volumes/v/_data, flags: 0x1000: no such file");
  CHECK(restore_message("cannot bind '/mnt/host' twice", kResponseTranslator) == "cannot bind '/' twice");
  CHECK(restore_message("/mnt/host/a and /mnt/host/b", kResponseTranslator) == "/a and /b");
  CHECK(restore_message("/mnt/hostile and x/mnt/host/y stay", kResponseTranslator) ==
        "/mnt/hostile and x/mnt/host/y stay");
  CHECK(restore_message("no such container: c1", kResponseTranslator) == "no such container: c1");
  PathTranslator home("/home", "/mnt/host/home");
  CHECK(restore_message("path /mnt/host/home/u is gone", home) == "path /home/u is gone");

  auto body = restore_error_body(R"({"message":"bind source path does not exist: /mnt/host/tmp/nope"})"
                                 "\n",
                                 kResponseTranslator);
  REQUIRE(body);
  CHECK(*body == R"({"message":"bind source path does not exist: /tmp/nope"})"
                 "\n");
  CHECK_FALSE(restore_error_body(R"({"message":"No such container: c1"})", kResponseTranslator));
  CHECK_FALSE(restore_error_body("plain text /mnt/host/x", kResponseTranslator));
}

TEST_CASE("rewrite_list_filters adds the environment's spelling of host paths to a volume filter") {
  // docker ps --filter volume=/tmp/x --filter volume=/data, as the CLI encodes it.
  const std::string list_form = "/v1.41/containers/json?all=1&filters=" +
                                std::string("%7B%22volume%22%3A%5B%22%2Ftmp%2Fx%22%2C%22named%22%5D%7D");
  auto widened = rewrite_list_filters("GET", list_form, kResponseTranslator);
  REQUIRE(widened);
  CHECK(widened->rfind("/v1.41/containers/json?all=1&filters=", 0) == 0);
  CHECK(widened->find("%22%2Fmnt%2Fhost%2Ftmp%2Fx%22") != std::string::npos);
  CHECK(widened->find("%22%2Ftmp%2Fx%22") != std::string::npos);  // the original stays: destinations match too

  const std::string map_form = "/containers/json?filters=%7B%22volume%22%3A%7B%22%2Fsrv+d%22%3Atrue%7D%7D";
  auto widened_map = rewrite_list_filters("GET", map_form, kResponseTranslator);
  REQUIRE(widened_map);
  CHECK(widened_map->find("%22%2Fmnt%2Fhost%2Fsrv%20d%22%3Atrue") != std::string::npos);

  CHECK_FALSE(rewrite_list_filters("GET", "/v1.41/containers/json?all=1", kResponseTranslator));
  CHECK_FALSE(rewrite_list_filters("GET", "/containers/json?filters=%7B%22status%22%3A%5B%22running%22%5D%7D",
                                   kResponseTranslator));
  CHECK_FALSE(rewrite_list_filters("GET", list_form, PathTranslator::identity()));
  CHECK_FALSE(rewrite_list_filters("GET", "/v1.41/images/json?filters=%7B%22volume%22%3A%5B%22%2Fx%22%5D%7D",
                                   kResponseTranslator));
}

TEST_CASE("why a container failed to start names the paths the client sent: State.Error and wait") {
  auto inspect = Json::parse(
      R"({"State":{"Status":"created","Error":"path /mnt/host/tmp/b is mounted on /mnt/host but it is not a shared or slave mount"},"Mounts":[]})");
  CHECK(restore_response(ResponseKind::container_inspect, inspect, kResponseTranslator) == 1);
  CHECK(inspect["State"]["Error"] == "path /tmp/b is mounted on / but it is not a shared or slave mount");
  auto wait =
      Json::parse(R"({"Error":{"Message":"bind source path does not exist: /mnt/host/tmp/x"},"StatusCode":128})");
  CHECK(restore_response(ResponseKind::container_wait, wait, kResponseTranslator) == 1);
  CHECK(wait["Error"]["Message"] == "bind source path does not exist: /tmp/x");
  auto fine = Json::parse(R"({"Error":null,"StatusCode":0})");
  CHECK(restore_response(ResponseKind::container_wait, fine, kResponseTranslator) == 0);
}
