// REST: GET /v1/logs, every part's log merged in time order (berth/logs), and
// the mirror that copies the environment's logs onto the host.
#include <chrono>
#include <string>
#include <vector>

#include "berth/api/router.hpp"
#include "berth/api/stream_writer.hpp"
#include "berth/logs/env_log_mirror.hpp"
#include "berth/logs/log_reader.hpp"
#include "daemon.hpp"
#include "engine_manager.hpp"
#include "log_streams.hpp"

namespace berth::daemon {

namespace {

constexpr std::size_t kDefaultLines = 1000;
// What one answer writes at once: the stream's queue drops a client that far behind.
constexpr std::size_t kMaxAnswerBytes = 3u << 20;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

logs::LogQuery query_of(const api::Request& req) {
  logs::LogQuery q;
  q.max_lines = kDefaultLines;
  if (auto n = req.query_value("n")) {
    try {
      std::size_t used = 0;
      const long long v = std::stoll(*n, &used);
      if (used != n->size() || v < 0) throw std::invalid_argument("negative");
      q.max_lines = static_cast<std::size_t>(v);
    } catch (const std::exception&) {
      throw api::HttpError(400, "n must be a number of lines (0: all), got '" + *n + "'");
    }
  }
  if (auto s = req.query_value("since")) {
    q.since_ms = logs::parse_since(*s, now_ms());
    if (!q.since_ms)
      throw api::HttpError(
          400, "since must be a time (2026-12-03T07:15:23Z), Unix seconds or a duration (10m, 2h), got '" + *s + "'");
  }
  if (auto s = req.query_value("source")) {
    std::string list = *s;
    std::size_t start = 0;
    while (start <= list.size()) {
      const auto comma = list.find(',', start);
      std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!name.empty()) q.sources.push_back(name);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return q;
}

}  // namespace

void Daemon::start_log_mirror() {
  logs::EnvLogMirror::Source src;
  src.services = [this] { return engine_->env_log_names(); };
  src.tail = [this](const std::string& name, int lines) { return engine_->env_log_tail(name, lines); };
  src.console_path = [this] { return engine_->console_log_path(); };
  env_logs_ = std::make_unique<logs::EnvLogMirror>(logs::LogDir(log_dir()).env_dir(), std::move(src));
  env_logs_->start();
}

void Daemon::add_log_routes(api::Router& router) {
  // Newline-delimited JSON, one {"time","source","text"} per line, oldest first; with
  // follow=1 the stream stays open and goes on with what is appended.
  router.add_stream("GET", "/v1/logs", [this](const api::Request& req, std::shared_ptr<api::StreamWriter> writer) {
    const auto q = query_of(req);
    const bool follow = req.query_value("follow").value_or("0") == "1";
    const logs::LogDir dir(log_dir());
    // The follower starts before the read, so a line appended in between is not lost
    // (it may come twice, never not at all).
    std::optional<logs::LogFollower> follower;
    if (follow) follower.emplace(dir, q);
    auto lines = dir.read(q);
    std::size_t bytes = 0, first = lines.size();
    while (first > 0 && bytes + lines[first - 1].text.size() + 80 <= kMaxAnswerBytes)
      bytes += lines[--first].text.size() + 80;
    for (std::size_t i = first; i < lines.size(); ++i) writer->write_json(log_line_json(lines[i]));
    if (follower)
      log_streams_->add(writer, std::move(*follower));
    else
      writer->close();
  });

  router.add("GET", "/v1/logs/sources", [this](const api::Request&) {
    return api::Response::json(200, {{"sources", logs::LogDir(log_dir()).sources()}});
  });
}

}  // namespace berth::daemon
