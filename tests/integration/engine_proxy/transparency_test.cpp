// The engine proxy must not be visible: bodies of any size and framing pass, the paths a client
// sent come back as it sent them, and what the proxy refuses it answers (and logs) like dockerd.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "berth/engine_proxy/engine_proxy.hpp"
#include "bounded.hpp"
#include "docker_api.hpp"
#include "engine_fixture.hpp"
#include "images.hpp"
#include "shell.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace berth::engine_proxy;
using namespace berth::test;
using nlohmann::json;

namespace {

const char* framing_name(Framing f) {
  switch (f) {
    case Framing::content_length:
      return "Content-Length";
    case Framing::chunked:
      return "chunked";
    case Framing::expect_continue:
      return "Expect: 100-continue";
  }
  return "?";
}

// Collects what the proxy logs while it lives.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string text() {
    sink_->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

// Sends bytes that are not HTTP and reads the answer with Beast.
ApiResponse send_garbage(const std::string& socket) {
  namespace asio = boost::asio;
  namespace http = boost::beast::http;
  asio::io_context io;
  asio::local::stream_protocol::socket s(io);
  s.connect(asio::local::stream_protocol::endpoint(socket));
  asio::write(s, asio::buffer(std::string("THIS IS NOT HTTP\r\n\r\n")));
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  ApiResponse out;
  out.status = res.result_int();
  out.body = res.body();
  return out;
}

std::set<std::string> bind_sources(const json& mounts) {
  std::set<std::string> out;
  for (const auto& m : mounts)
    if (m.value("Type", "") == "bind") out.insert(m.value("Source", ""));
  return out;
}

}  // namespace

TEST_CASE("request bodies over 1 MiB pass with Content-Length, chunked and Expect: 100-continue") {
  Engine engine;
  const std::string psock = (engine.dir / "proxy.sock").string();
  EngineProxy proxy(proxy_options(psock, engine.dockerd->socket(), engine.translator()));
  proxy.start();
  DockerApi api(psock);

  // An image padded to over 9 MB: imported with Content-Length (a 9 MB body), then saved.
  TempDir root("bep-padded");
  make_busybox_rootfs(root.path());
  write_file(root.path() / "pad", pseudo_random_bytes(9'000'000));
  auto imported = api.send({"POST",
                            "/v1.41/images/create?fromSrc=-&repo=berth-test/padded&tag=latest",
                            tar_of(root.path()),
                            "application/x-tar",
                            Framing::content_length,
                            {}});
  INFO(imported.describe());
  REQUIRE(imported.status == 200);
  auto saved = api.get("/v1.41/images/berth-test/padded/get");
  REQUIRE(saved.status == 200);
  REQUIRE(saved.body.size() > 9'000'000);

  for (const auto framing : {Framing::content_length, Framing::chunked, Framing::expect_continue}) {
    INFO("docker load, body sent " << framing_name(framing));
    auto removed = api.del("/v1.41/images/berth-test/padded");
    INFO(removed.describe());
    CHECK(removed.status == 200);
    auto loaded = api.send({"POST", "/v1.41/images/load?quiet=1", saved.body, "application/x-tar", framing, {}});
    INFO(loaded.describe());
    CHECK(loaded.status == 200);
    CHECK_THAT(loaded.body, Catch::Contains("Loaded image: berth-test/padded:latest"));
  }

  // A 5 MiB build context, both ways; the build checks it got every byte.
  TempDir context("bep-context");
  write_file(context.path() / "Dockerfile",
             "FROM berth-test/padded\nCOPY big /big\nRUN test \"$(wc -c < /big)\" -eq 5242880\n");
  write_file(context.path() / "big", pseudo_random_bytes(5 * 1024 * 1024, 2));
  const std::string tar = tar_of(context.path());
  for (const auto framing : {Framing::content_length, Framing::chunked}) {
    INFO("docker build, context sent " << framing_name(framing));
    auto built =
        api.send({"POST", "/v1.41/build?t=berth-test/built&nocache=1&rm=1", tar, "application/x-tar", framing, {}});
    INFO(built.describe());
    CHECK(built.status == 200);
    CHECK_THAT(built.body, Catch::Contains("Successfully tagged berth-test/built:latest"));
  }
  CHECK(proxy.stats().bytes_to_engine > 9'000'000ull * 4 + 5ull * 1024 * 1024 * 2);
  CHECK(proxy.stats().rejected_requests == 0);
}

TEST_CASE("a body berth must rewrite is bounded: over the bound a JSON 413, never a reset, and a log line") {
  Engine engine;
  LogCapture logs;
  const std::string psock = (engine.dir / "proxy.sock").string();
  auto options = proxy_options(psock, engine.dockerd->socket(), engine.translator());
  options.max_create_body = 64 * 1024;
  EngineProxy proxy(std::move(options));
  proxy.start();
  DockerApi api(psock, std::chrono::seconds(20));
  REQUIRE_NOTHROW(engine.import_busybox(engine.dockerd->socket()));

  const json big = {{"Image", kImage}, {"Env", {"X=" + std::string(100 * 1024, 'a')}}};
  const json huge = {{"Image", kImage}, {"Env", {"X=" + std::string(4 * 1024 * 1024, 'a')}}};
  for (const auto framing : {Framing::content_length, Framing::chunked, Framing::expect_continue}) {
    for (const auto* body : {&big, &huge}) {
      INFO("container create of " << body->dump().size() << " bytes sent " << framing_name(framing));
      ApiResponse refused;
      REQUIRE_NOTHROW(
          refused = api.send(
              {"POST", "/v1.41/containers/create?name=too-big", body->dump(), "application/json", framing, {}}));
      INFO(refused.describe());
      CHECK(refused.status == 413);
      CHECK(refused.header("content-type") == "application/json");
      CHECK_THAT(refused.json()["message"].get<std::string>(), Catch::Contains("larger than the 65536 bytes"));
    }
  }
  const json big_volume = {{"Name", "too-big"}, {"Labels", {{"x", std::string(100 * 1024, 'a')}}}};
  auto volume =
      api.send({"POST", "/v1.41/volumes/create", big_volume.dump(), "application/json", Framing::content_length, {}});
  CHECK(volume.status == 413);

  // Within the bound all is well, also after "Expect: 100-continue" (answered by the proxy).
  const json small = {{"Image", kImage}, {"Cmd", {"true"}}};
  auto created = api.send(
      {"POST", "/v1.41/containers/create?name=small", small.dump(), "application/json", Framing::expect_continue, {}});
  INFO(created.describe());
  CHECK(created.status == 201);

  auto garbage = send_garbage(psock);
  CHECK(garbage.status == 400);
  CHECK_THAT(garbage.body, Catch::Contains("malformed HTTP request"));

  const auto text = logs.text();
  INFO(text);
  CHECK_THAT(text, Catch::Contains("POST /v1.41/containers/create: refused (413)"));
  CHECK_THAT(text, Catch::Contains("POST /v1.41/volumes/create: refused (413)"));
  CHECK_THAT(text, Catch::Contains("refused a request that is not valid HTTP"));
  CHECK(proxy.stats().rejected_requests == 8);
}

TEST_CASE("inspect, lists, volumes, df, filters and errors give back the host paths a client sent") {
  Engine engine;
  const std::string psock = (engine.dir / "proxy.sock").string();
  EngineProxy proxy(proxy_options(psock, engine.dockerd->socket(), engine.translator()));
  proxy.start();
  DockerApi api(psock);
  DockerApi direct(engine.dockerd->socket());
  REQUIRE_NOTHROW(engine.import_busybox(engine.dockerd->socket()));

  // Everything under <T>/hidden: only reachable for the engine through the translation.
  const fs::path base = engine.hidden / "my dir";
  const std::string b = base.string();
  for (const char* d : {"a", "b", "c", "m", "real"}) write_file(base / d / "f", std::string(d) + "\n");
  fs::create_directories(base / "inl");
  fs::create_directories(base / "vol");
  fs::create_symlink(base / "real", base / "abs-link");  // absolute target, like /var/run -> /run
  fs::create_symlink("real", base / "rel-link");

  // A local volume binding a host directory, as compose's driver_opts make it.
  auto vol =
      api.post("/v1.41/volumes/create", {{"Name", "bindvol"},
                                         {"Driver", "local"},
                                         {"DriverOpts", {{"type", "none"}, {"o", "bind"}, {"device", b + "/vol"}}}});
  INFO(vol.describe());
  REQUIRE(vol.status == 201);
  CHECK(vol.json()["Options"]["device"] == b + "/vol");
  CHECK(vol.json()["Mountpoint"] == engine.dockerd->data_root() + "/volumes/bindvol/_data");  // the engine's own

  const json binds = {b + "/a:/a",        b + "/b/:/b:ro", b + "//c:/c:rw", b + "/abs-link:/l",
                      b + "/rel-link:/r", "bindvol:/vol",  "named:/n",      "/anon"};
  const json create = {
      {"Image", kImage},
      {"Cmd", {"sh", "-c", "cat /a/f /b/f /c/f /m/f /l/f /r/f && echo inline > /inl/f && echo volume > /vol/f"}},
      {"HostConfig",
       {{"Binds", binds},
        {"Mounts",
         {{{"Type", "bind"}, {"Source", b + "/m"}, {"Target", "/m"}, {"ReadOnly", true}},
          {{"Type", "volume"},
           {"Source", "inl"},
           {"Target", "/inl"},
           {"VolumeOptions",
            {{"DriverConfig",
              {{"Name", "local"}, {"Options", {{"type", "none"}, {"o", "bind"}, {"device", b + "/inl"}}}}}}}}}}}}};
  auto created = api.post("/v1.41/containers/create?name=paths", create);
  INFO(created.describe());
  REQUIRE(created.status == 201);
  REQUIRE(api.post("/v1.41/containers/paths/start").status == 204);
  auto waited = api.post("/v1.41/containers/paths/wait");
  INFO(waited.describe());
  REQUIRE(waited.status == 200);
  auto logs = api.get("/v1.41/containers/paths/logs?stdout=1&stderr=1");
  INFO(logs.body);
  CHECK(waited.json()["StatusCode"] == 0);
  CHECK(demux(logs.body) == std::vector<std::string>{"1:a\n", "1:b\n", "1:c\n", "1:m\n", "1:real\n", "1:real\n"});
  CHECK(berth::test::sh("cat " + shell_quote(b + "/inl/f") + " " + shell_quote(b + "/vol/f")).output ==
        "inline\nvolume");

  // Inspect: what was sent, as sent. A path through an absolute link shows where it leads.
  auto inspect = api.get("/v1.41/containers/paths/json");
  REQUIRE(inspect.status == 200);
  const auto doc = inspect.json();
  json expected_binds = binds;
  expected_binds[3] = b + "/real:/l";
  CHECK(doc["HostConfig"]["Binds"] == expected_binds);
  CHECK(doc["HostConfig"]["Mounts"][0]["Source"] == b + "/m");
  CHECK(doc["HostConfig"]["Mounts"][1]["VolumeOptions"]["DriverConfig"]["Options"]["device"] == b + "/inl");
  const std::set<std::string> sources = {b + "/a", b + "/b", b + "/c", b + "/m", b + "/real", b + "/rel-link"};
  CHECK(bind_sources(doc["Mounts"]) == sources);
  // ... while the engine itself knows them under the share's mount point.
  const auto inside = direct.get("/v1.41/containers/paths/json").json();
  CHECK(inside["HostConfig"]["Binds"][0] == engine.mnt.string() + b + "/a:/a");

  auto list = api.get("/v1.41/containers/json?all=1");
  REQUIRE(list.status == 200);
  REQUIRE(list.json().size() == 1);
  CHECK(bind_sources(list.json()[0]["Mounts"]) == sources);

  // docker ps --filter volume=HOST_PATH finds it, as on a native engine.
  auto cli_filtered = engine.docker(psock, "ps -a -q --filter " + shell_quote("volume=" + b + "/a"));
  CHECK(cli_filtered.output.size() == 12);

  auto volume = api.get("/v1.41/volumes/bindvol");
  CHECK(volume.json()["Options"]["device"] == b + "/vol");
  bool listed = false;
  const auto volumes = api.get("/v1.41/volumes").json();
  for (const auto& v : volumes["Volumes"])
    if (v["Name"] == "bindvol") listed = v["Options"]["device"] == b + "/vol";
  CHECK(listed);
  auto df = api.get("/v1.41/system/df").json();
  CHECK(bind_sources(df["Containers"][0]["Mounts"]) == sources);

  // An error of the engine names the path the client sent.
  const json missing = {{"Image", kImage},
                        {"HostConfig", {{"Mounts", {{{"Type", "bind"}, {"Source", b + "/nope"}, {"Target", "/x"}}}}}}};
  auto refused = api.post("/v1.41/containers/create", missing);
  INFO(refused.describe());
  CHECK(refused.status == 400);
  CHECK_THAT(refused.json()["message"].get<std::string>(),
             Catch::EndsWith("bind source path does not exist: " + b + "/nope"));

  // Why a container cannot start, in the start error, in State.Error and in wait: the host's paths.
  const json rslave = {
      {"Image", kImage},
      {"Cmd", {"true"}},
      {"HostConfig",
       {{"Mounts",
         {{{"Type", "bind"}, {"Source", b + "/a"}, {"Target", "/x"}, {"BindOptions", {{"Propagation", "rslave"}}}}}}}}};
  auto rs = api.post("/v1.41/containers/create?name=rslave", rslave);
  INFO(rs.describe());
  CHECK(rs.status == 201);
  const std::string why = "path " + b + "/a is mounted on / but it is not a shared or slave mount";
  auto start = api.post("/v1.41/containers/rslave/start");
  INFO(start.describe());
  CHECK(start.status == 500);
  CHECK_THAT(start.json()["message"].get<std::string>(), Catch::Contains(why));
  CHECK(api.get("/v1.41/containers/rslave/json").json()["State"]["Error"] == why);
  CHECK(api.post("/v1.41/containers/rslave/wait").json()["Error"]["Message"] == why);

  // Events stream through line by line, as they happen.
  std::string seen;
  berth::test::BoundedThread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    DockerApi(psock).post("/v1.41/volumes/create", {{"Name", "late"}});
  });
  auto events = api.stream(
      "/v1.41/events?filters=%7B%22type%22%3A%5B%22volume%22%5D%7D",
      [&](const std::string& body) { return body.find("\"late\"") == std::string::npos; }, std::chrono::seconds(20));
  later.join_within(std::chrono::seconds(30), "the volume create");
  CHECK(events.status == 200);
  CHECK_THAT(events.body, Catch::Contains(R"("Action":"create","Actor":{"ID":"late")"));
  CHECK(events.body.find(engine.mnt.string()) == std::string::npos);
  CHECK(proxy.stats().restored_responses >= 7);
}

TEST_CASE("the docker CLI sees the paths it sent: inspect and ps") {
  Engine engine;
  const std::string psock = (engine.dir / "proxy.sock").string();
  EngineProxy proxy(proxy_options(psock, engine.dockerd->socket(), engine.translator()));
  proxy.start();
  REQUIRE_NOTHROW(engine.import_busybox(psock));
  const std::string x = (engine.hidden / "x").string();
  write_file(engine.hidden / "x" / "f", "data\n");

  auto v = engine.docker(psock, "run -d --name cv -v " + shell_quote(x + ":/data") + " " + kImage + " sleep 300");
  INFO(v.output);
  REQUIRE(v.exit_code == 0);
  auto vi = engine.docker(psock, "inspect -f '{{json .HostConfig.Binds}} {{(index .Mounts 0).Source}}' cv");
  CHECK(vi.output == "[\"" + x + ":/data\"] " + x);
  auto m = engine.docker(psock, "run -d --name cm --mount " + shell_quote("type=bind,src=" + x + ",dst=/data") + " " +
                                    kImage + " sleep 300");
  INFO(m.output);
  REQUIRE(m.exit_code == 0);
  auto mi =
      engine.docker(psock, "inspect -f '{{(index .HostConfig.Mounts 0).Source}} {{(index .Mounts 0).Source}}' cm");
  CHECK(mi.output == x + " " + x);
  auto ps = engine.docker(psock, "ps --no-trunc --format '{{.Names}} {{.Mounts}}'");
  INFO(ps.output);
  CHECK_THAT(ps.output, Catch::Contains("cv " + x) && Catch::Contains("cm " + x));
  auto cat = engine.docker(psock, "exec cv cat /data/f");
  CHECK(cat.output == "data");
  // An attached run waits for the container (a long poll whose headers come before the body)
  // before it starts it: the proxy must not hold those headers back.
  auto attached = engine.docker(psock, "run --rm -v " + shell_quote(x + ":/data") + " " + kImage + " cat /data/f");
  INFO(attached.output);
  CHECK(attached.output == "data");
  CHECK(engine.docker(psock, "rm -f cv cm").exit_code == 0);
}
