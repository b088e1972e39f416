#include "berth/feature_agent/env_agent.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "berth/feature_agent/agent_connection.hpp"

namespace berth::feature_agent {

using agent::Frame;
using agent::FrameType;
using nlohmann::json;

namespace {

// Sends one request and returns its reply's payload; `on_data` sees data/stderr frames.
template <class OnData>
std::string call(AgentConnection& c, const json& request, const std::string& what, OnData on_data) {
  c.send(FrameType::open, request.dump());
  for (;;) {
    const Frame f = c.next();
    if (f.type == FrameType::data || f.type == FrameType::stderr_data) on_data(f);
    if (f.type == FrameType::reply) return f.payload;
    if (f.type == FrameType::error) throw std::runtime_error(what + ": " + error_of(f));
  }
}

std::string state_of(const std::string& reply) {
  const auto j = json::parse(reply, nullptr, false);
  return j.is_object() ? j.value("state", "") : "";
}

}  // namespace

void EnvAgent::write_file(const std::string& path, const std::string& content, unsigned mode) const {
  AgentConnection c(path_, timeout_);
  c.send(FrameType::open, json{{"op", "write_file"}, {"path", path}, {"mode", mode}, {"mkdirs", true}}.dump());
  for (std::size_t off = 0; off < content.size(); off += agent::kDataChunk)
    c.send(FrameType::data, std::string_view(content).substr(off, agent::kDataChunk));
  c.send(FrameType::eof, "");
  for (;;) {
    const Frame f = c.next();
    if (f.type == FrameType::reply) return;
    if (f.type == FrameType::error) throw std::runtime_error("writing " + path + " inside: " + error_of(f));
  }
}

std::optional<std::string> EnvAgent::read_file(const std::string& path) const {
  AgentConnection c(path_, timeout_);
  c.send(FrameType::open, json{{"op", "read_file"}, {"path", path}, {"max_bytes", 16 * 1024 * 1024}}.dump());
  std::string out;
  for (;;) {
    const Frame f = c.next();
    if (f.type == FrameType::data) out += f.payload;
    if (f.type == FrameType::reply) return out;
    if (f.type == FrameType::error) return std::nullopt;  // absent or unreadable; a timeout throws
  }
}

std::string EnvAgent::health() const {
  AgentConnection c(path_, timeout_);
  return call(c, {{"op", "health"}}, "agent health", [](const Frame&) {});
}

int EnvAgent::exec(const std::vector<std::string>& argv, std::string* output) const {
  AgentConnection c(path_, timeout_);
  const auto reply = call(c, {{"op", "exec"}, {"argv", argv}, {"stdin", false}}, "running " + argv.at(0) + " inside",
                          [&](const Frame& f) {
                            if (output != nullptr) *output += f.payload;
                          });
  const auto j = json::parse(reply, nullptr, false);
  return j.is_object() ? j.value("exit_code", -1) : -1;
}

std::string EnvAgent::service_start(const std::string& name) const {
  AgentConnection c(path_, timeout_);
  return state_of(call(c, {{"op", "service_start"}, {"name", name}}, "starting " + name, [](const Frame&) {}));
}

std::string EnvAgent::service_stop(const std::string& name, int grace_s) const {
  AgentConnection c(path_, timeout_);
  return state_of(
      call(c, {{"op", "service_stop"}, {"name", name}, {"grace_s", grace_s}}, "stopping " + name, [](const Frame&) {}));
}

std::string EnvAgent::log_tail(const std::string& service, int lines) const {
  AgentConnection c(path_, timeout_);
  std::string out;
  call(c, {{"op", "log_tail"}, {"service", service}, {"lines", lines}, {"follow", false}}, "log of " + service,
       [&](const Frame& f) { out += f.payload; });
  return out;
}

}  // namespace berth::feature_agent
