#include "api_script.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <sstream>

#include "images.hpp"
#include "temp_dir.hpp"

namespace berth::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kV = "/v1.41";

// How an answer's body is recorded.
enum class Body { json, json_lines, frames, text, size_only };

// The headers a client may look at; Date and the framing are the transport's business.
const char* kHeaders[] = {"content-type", "api-version", "docker-experimental", "ostype", "server"};

class Recorder {
 public:
  explicit Recorder(DockerApi& api) : api_(api) {}

  ApiResponse call(const ApiRequest& r, Body kind) {
    ApiResponse res;
    try {
      res = api_.send(r);
    } catch (const std::exception& e) {
      steps.push_back({r.method + " " + r.target, {{"error", e.what()}}});
      return res;
    }
    record(r.method + " " + r.target, res, kind);
    return res;
  }
  ApiResponse get(const std::string& target, Body kind = Body::json) { return call(request("GET", target), kind); }
  ApiResponse del(const std::string& target) { return call(request("DELETE", target), Body::text); }
  ApiResponse post(const std::string& target, const json& body = nullptr, Body kind = Body::json) {
    ApiRequest r = request("POST", target);
    if (!body.is_null()) {
      r.body = body.dump();
      r.content_type = "application/json";
    }
    return call(r, kind);
  }
  ApiResponse upload(const std::string& target, const std::string& tar, Framing framing) {
    ApiRequest r = request("POST", target);
    r.body = tar;
    r.content_type = "application/x-tar";
    r.framing = framing;
    auto res = call(r, Body::json_lines);
    steps.back().request += framing == Framing::chunked ? " (chunked)" : " (Content-Length)";
    return res;
  }
  ApiResponse hijack(const std::string& target, const json& body, const std::string& input) {
    const std::string label = "POST " + target;
    try {
      auto res = api_.hijack(target, body.is_null() ? std::string() : body.dump(), input);
      record(label, res, Body::frames);
      return res;
    } catch (const std::exception& e) {
      steps.push_back({label, {{"error", e.what()}}});
      return {};
    }
  }
  ApiResponse stream(const std::string& target, const std::function<bool(const std::string&)>& more, Body kind) {
    try {
      auto res = api_.stream(target, more, std::chrono::seconds(20));
      record("GET " + target, res, kind);
      return res;
    } catch (const std::exception& e) {
      steps.push_back({"GET " + target, {{"error", e.what()}}});
      return {};
    }
  }
  void note(const std::string& what, OrderedJson value) { steps.push_back({what, std::move(value)}); }
  // The list at `answer.body[where]` ("" = the body) comes in no defined order: compare it sorted by `field`.
  void unordered(const std::string& where, const std::string& field) {
    steps.back().unordered.emplace_back(where, field);
  }

  Transcript steps;

 private:
  static ApiRequest request(const std::string& method, const std::string& target) {
    ApiRequest r;
    r.method = method;
    r.target = target;
    return r;
  }

  void record(const std::string& label, const ApiResponse& res, Body kind) {
    OrderedJson answer = {{"status", res.status}};
    OrderedJson headers = OrderedJson::object();
    for (const char* h : kHeaders)
      if (res.headers.count(h)) headers[h] = res.header(h);
    answer["headers"] = headers;
    switch (kind) {
      case Body::json: {
        auto parsed = OrderedJson::parse(res.body, nullptr, false);
        if (res.body.empty())
          answer["body"] = "";
        else if (parsed.is_discarded())
          answer["body"] = {{"not-json", res.body}};
        else
          answer["body"] = parsed;
        break;
      }
      case Body::json_lines: {
        OrderedJson lines = OrderedJson::array();
        std::istringstream in(res.body);
        for (std::string line; std::getline(in, line);) {
          if (line.empty()) continue;
          auto parsed = OrderedJson::parse(line, nullptr, false);
          lines.push_back(parsed.is_discarded() ? OrderedJson({{"not-json", line}}) : parsed);
        }
        answer["body"] = lines;
        break;
      }
      case Body::frames:
        answer["body"] = demux(res.body);
        break;
      case Body::text:
        answer["body"] = res.body;
        break;
      case Body::size_only:
        answer["body"] = {{"bytes over 8 MiB", res.body.size() > 8u * 1024 * 1024}};
        break;
    }
    steps.push_back({label, std::move(answer)});
  }

  DockerApi& api_;
};

// A time for the events API's since/until, to the nanosecond ("1796214713.358774918"): whole
// seconds would cut off the events of the current second.
std::string api_time(std::chrono::nanoseconds from_now = {}) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      (std::chrono::system_clock::now() + from_now).time_since_epoch())
                      .count();
  std::string frac = std::to_string(ns % 1'000'000'000);
  return std::to_string(ns / 1'000'000'000) + "." + std::string(9 - frac.size(), '0') + frac;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Percent-encodes every byte but the unreserved ones (RFC 3986), for a query value.
std::string query_escape(const std::string& value) {
  std::ostringstream out;
  out << std::hex << std::uppercase;
  for (unsigned char ch : value) {
    if (std::isalnum(ch) || std::string("-._~").find(static_cast<char>(ch)) != std::string::npos)
      out << static_cast<char>(ch);
    else
      out << '%' << (ch < 16 ? "0" : "") << static_cast<int>(ch);
  }
  return out.str();
}

std::string c(const std::string& name, const std::string& rest = "") {
  return std::string(kV) + "/containers/" + name + rest;
}

}  // namespace

ScriptFixtures::ScriptFixtures(const fs::path& dir) : share(dir / "share dir") {
  TempDir root("bapi-rootfs");
  make_busybox_rootfs(root.path());
  busybox_tar = tar_of(root.path());
  write_file(root.path() / "pad", pseudo_random_bytes(9'000'000, 7));
  padded_tar = tar_of(root.path());
  TempDir context("bapi-context");
  write_file(context.path() / "Dockerfile", "FROM apitest/busybox\nCOPY big /big\nRUN wc -c /big\n");
  write_file(context.path() / "big", pseudo_random_bytes(5 * 1024 * 1024, 8));
  context_tar = tar_of(context.path());
  reset_share();
}

void ScriptFixtures::reset_share() const {
  std::error_code ec;
  fs::remove_all(share, ec);
  for (const char* d : {"a", "b", "c", "d"}) write_file(share / d / "f", std::string(d) + "\n");
  fs::create_directories(share / "inl");
  fs::create_directories(share / "vol");
}

bool expected_to_fail(const std::string& request) {
  for (const char* failing :
       {"/containers/apitest-nope/json", "create?name=apitest-missing", "/apitest-bad/start", "/apitest-rslave/start"})
    if (request.find(failing) != std::string::npos) return true;
  return false;
}

Transcript run_script(DockerApi& api, const ScriptFixtures& fx) {
  Recorder r(api);
  const std::string s = fx.share.string();
  const auto t0 = api_time();

  r.get("/_ping", Body::text);
  r.get(std::string(kV) + "/version");

  // Images: imported (bodies over 1 MiB and 8 MiB with Content-Length), listed, inspected.
  r.upload(std::string(kV) + "/images/create?fromSrc=-&repo=apitest/busybox&tag=latest", fx.busybox_tar,
           Framing::content_length);
  r.upload(std::string(kV) + "/images/create?fromSrc=-&repo=apitest/padded&tag=latest", fx.padded_tar,
           Framing::content_length);
  r.get(std::string(kV) + "/images/json");
  r.unordered("", "RepoTags");
  r.get(std::string(kV) + "/images/apitest/busybox/json");

  // Binds in several spellings, named and anonymous volumes; it prints its files and exits.
  const json binds = {s + "/a:/a", s + "/b/:/b:ro", s + "//c:/c:rw", s + "/./d:/d", "apivol:/named", "/anon"};
  r.post(c("create?name=apitest-binds"), {{"Image", "apitest/busybox"},
                                          {"Cmd", {"sh", "-c", "cat /a/f /b/f /c/f /d/f; echo err >&2"}},
                                          {"HostConfig", {{"Binds", binds}}}});
  // Mounts: binds (one read-only with a propagation), an inline bind volume, tmpfs, a named volume.
  const json mounts = {
      {{"Type", "bind"}, {"Source", s + "/a"}, {"Target", "/a"}},
      {{"Type", "bind"},
       {"Source", s + "/b/"},
       {"Target", "/b"},
       {"ReadOnly", true},
       {"BindOptions", {{"Propagation", "rprivate"}}}},
      {{"Type", "volume"},
       {"Source", "apiinline"},
       {"Target", "/inl"},
       {"VolumeOptions",
        {{"DriverConfig",
          {{"Name", "local"}, {"Options", {{"type", "none"}, {"o", "bind"}, {"device", s + "/inl"}}}}}}}},
      {{"Type", "tmpfs"}, {"Target", "/t"}},
      {{"Type", "volume"}, {"Source", "apivol"}, {"Target", "/v"}}};
  r.post(c("create?name=apitest-mounts"), {{"Image", "apitest/busybox"},
                                           {"Cmd", {"sh", "-c", "echo inline > /inl/f; ls /a /b"}},
                                           {"HostConfig", {{"Mounts", mounts}}}});
  for (const char* name : {"apitest-binds", "apitest-mounts"}) {
    r.post(c(name, "/start"), nullptr, Body::text);
    r.post(c(name, "/wait"));
  }
  r.note("host file share/inl/f", read_text(fx.share / "inl/f"));
  r.get(c("apitest-binds", "/json"));
  r.get(c("apitest-mounts", "/json"));
  // (stdout and stderr apart: dockerd logs the two pipes from two goroutines, in no fixed order)
  r.get(c("apitest-binds", "/logs?stdout=1"), Body::frames);
  r.get(c("apitest-binds", "/logs?stderr=1"), Body::frames);

  // A local volume binding a host directory (compose's driver_opts), used by a container.
  r.post(std::string(kV) + "/volumes/create",
         {{"Name", "apibind"},
          {"Driver", "local"},
          {"DriverOpts", {{"type", "none"}, {"o", "bind"}, {"device", s + "/vol"}}},
          {"Labels", {{"com.example.test", "yes"}}}});
  r.get(std::string(kV) + "/volumes/apibind");
  r.post(c("create?name=apitest-volume"), {{"Image", "apitest/busybox"},
                                           {"Cmd", {"sh", "-c", "echo written > /w/f; cat /w/f"}},
                                           {"HostConfig", {{"Binds", {"apibind:/w"}}}}});
  r.post(c("apitest-volume", "/start"), nullptr, Body::text);
  r.post(c("apitest-volume", "/wait"));
  r.get(c("apitest-volume", "/logs?stdout=1"), Body::frames);
  r.note("host file share/vol/f", read_text(fx.share / "vol/f"));
  r.get(std::string(kV) + "/volumes");
  r.unordered("Volumes", "Name");

  // Logs followed while the container writes them.
  r.post(c("create?name=apitest-logs"),
         {{"Image", "apitest/busybox"}, {"Cmd", {"sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"}}});
  r.post(c("apitest-logs", "/start"), nullptr, Body::text);
  r.stream(
      c("apitest-logs", "/logs?follow=1&stdout=1&stderr=1"), [](const std::string&) { return true; }, Body::frames);
  r.get(c("apitest-logs", "/logs?stdout=1&timestamps=1&tail=2"), Body::frames);

  // Attach: stdin in, stdout out, over the hijacked connection. (Each answer here uses one output
  // stream: dockerd copies stdout and stderr in two goroutines, so their relative order varies.)
  r.post(c("create?name=apitest-attach"), {{"Image", "apitest/busybox"},
                                           {"Cmd", {"cat"}},
                                           {"OpenStdin", true},
                                           {"StdinOnce", true},
                                           {"AttachStdin", true},
                                           {"AttachStdout", true},
                                           {"AttachStderr", true}});
  r.post(c("apitest-attach", "/start"), nullptr, Body::text);
  r.hijack(c("apitest-attach", "/attach?stream=1&stdin=1&stdout=1&stderr=1"), nullptr, "hello\n");
  r.post(c("apitest-attach", "/wait"));

  // Exec: stderr out; stdin in and stdout out.
  r.post(c("create?name=apitest-exec"),
         {{"Image", "apitest/busybox"}, {"Cmd", {"sleep", "1000"}}, {"HostConfig", {{"Binds", {s + "/a:/a"}}}}});
  r.post(c("apitest-exec", "/start"), nullptr, Body::text);
  auto exec = r.post(c("apitest-exec", "/exec"),
                     {{"AttachStdout", true}, {"AttachStderr", true}, {"Cmd", {"sh", "-c", "cat /a/f >&2"}}});
  const std::string exec_id = exec.status == 201 ? exec.json().value("Id", "") : "";
  r.hijack(std::string(kV) + "/exec/" + exec_id + "/start", {{"Detach", false}, {"Tty", false}}, "");
  r.get(std::string(kV) + "/exec/" + exec_id + "/json");
  auto exec_in = r.post(c("apitest-exec", "/exec"), {{"AttachStdin", true}, {"AttachStdout", true}, {"Cmd", {"cat"}}});
  const std::string exec_in_id = exec_in.status == 201 ? exec_in.json().value("Id", "") : "";
  r.hijack(std::string(kV) + "/exec/" + exec_in_id + "/start", {{"Detach", false}, {"Tty", false}}, "piped\n");

  // Lists, also filtered by a bind source.
  r.get(c("json?all=1"));
  r.get(c("json?all=1&filters=" + query_escape(json({{"volume", {s + "/a"}}}).dump())));

  // Networks.
  r.post(std::string(kV) + "/networks/create", {{"Name", "apinet"}, {"CheckDuplicate", true}});
  r.post(std::string(kV) + "/networks/apinet/connect", {{"Container", "apitest-exec"}}, Body::text);
  r.get(std::string(kV) + "/networks/apinet");
  r.get(std::string(kV) + "/networks");
  r.unordered("", "Name");
  r.post(std::string(kV) + "/networks/apinet/disconnect", {{"Container", "apitest-exec"}}, Body::text);
  r.del(std::string(kV) + "/networks/apinet");

  // Save and load an image over 8 MiB, with Content-Length and chunked.
  auto saved = r.get(std::string(kV) + "/images/apitest/padded/get", Body::size_only);
  for (const auto framing : {Framing::content_length, Framing::chunked}) {
    r.del(std::string(kV) + "/images/apitest/padded");
    r.upload(std::string(kV) + "/images/load?quiet=1", saved.body, framing);  // progress bars vary
  }

  // Build with a 5 MiB context, both ways (the second one from the cache).
  r.upload(std::string(kV) + "/build?t=apitest/built&rm=1", fx.context_tar, Framing::content_length);
  r.upload(std::string(kV) + "/build?t=apitest/built&rm=1", fx.context_tar, Framing::chunked);

  // Errors the engine explains, naming paths the client sent.
  r.get(c("apitest-nope", "/json"));
  r.post(c("create?name=apitest-missing"),
         {{"Image", "apitest/busybox"},
          {"HostConfig", {{"Mounts", {{{"Type", "bind"}, {"Source", s + "/nope"}, {"Target", "/x"}}}}}}});
  r.post(std::string(kV) + "/volumes/create",
         {{"Name", "apibad"}, {"DriverOpts", {{"type", "none"}, {"o", "bind"}, {"device", s + "/nope"}}}});
  r.post(c("create?name=apitest-bad"),
         {{"Image", "apitest/busybox"}, {"Cmd", {"true"}}, {"HostConfig", {{"Binds", {"apibad:/x"}}}}});
  r.post(c("apitest-bad", "/start"), nullptr, Body::json);
  // A propagation the share's mount does not allow: refused at start, the message naming both paths.
  r.post(c("create?name=apitest-rslave"), {{"Image", "apitest/busybox"},
                                           {"Cmd", {"true"}},
                                           {"HostConfig",
                                            {{"Mounts",
                                              {{{"Type", "bind"},
                                                {"Source", s + "/b"},
                                                {"Target", "/b"},
                                                {"BindOptions", {{"Propagation", "rslave"}}}}}}}}});
  r.post(c("apitest-rslave", "/start"), nullptr, Body::json);
  r.get(c("apitest-rslave", "/json"));

  // Events: the ones this script caused (in no guaranteed order between unrelated objects), and
  // a live stream of one container's life as it happens.
  // Until a second from now: events dockerd logs just after an answer (a die) are in, and the
  // engine ends the stream then.
  const auto t1 = api_time(std::chrono::seconds(1));
  r.get(std::string(kV) + "/events?since=" + t0 + "&until=" + t1, Body::json_lines);
  r.steps.back().request = "GET /v1.41/events?since=<script start>&until=<now>";
  r.unordered("", "");
  bool started = false;
  Recorder side(api);
  r.stream(
      std::string(kV) +
          "/events?filters=%7B%22container%22%3A%5B%22apitest-follow%22%5D%2C%22type%22%3A%5B%22"
          "container%22%5D%7D",
      [&](const std::string& body) {
        if (!started) {
          started = true;
          side.post(c("create?name=apitest-follow"), {{"Image", "apitest/busybox"}, {"Cmd", {"true"}}});
          side.post(c("apitest-follow", "/start"), nullptr, Body::text);
        }
        // Until the line of the "die" event is complete.
        const auto die = body.find("\"Action\":\"die\"");
        return die == std::string::npos || body.find('\n', die) == std::string::npos;
      },
      Body::json_lines);
  for (auto& step : side.steps) r.steps.push_back(std::move(step));

  r.get(std::string(kV) + "/system/df");
  r.unordered("Volumes", "Name");
  r.unordered("Images", "RepoTags");

  // Clean up; the answers are part of the comparison too.
  for (const char* name : {"apitest-binds", "apitest-mounts", "apitest-volume", "apitest-logs", "apitest-attach",
                           "apitest-exec", "apitest-bad", "apitest-rslave", "apitest-follow"})
    r.del(c(name, "?force=1&v=1"));
  for (const char* vol : {"apibind", "apibad", "apivol", "apiinline"}) r.del(std::string(kV) + "/volumes/" + vol);
  return std::move(r.steps);
}

}  // namespace berth::test
