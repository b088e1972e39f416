#include "metrics.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

namespace berth::daemon {

namespace {

using clock = std::chrono::steady_clock;

// A label value with \, " and newline escaped as the text format requires.
std::string label(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string str(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

class Writer {
 public:
  Writer() { out_.precision(15); }  // byte counts stay exact
  void family(const std::string& name, const char* type, const std::string& help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  void sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels, double value) {
    out_ << name;
    if (!labels.empty()) {
      out_ << '{';
      for (std::size_t i = 0; i < labels.size(); ++i)
        out_ << (i ? "," : "") << labels[i].first << "=\"" << label(labels[i].second) << '"';
      out_ << '}';
    }
    out_ << ' ' << value << '\n';
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

uint64_t resident_memory_bytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0;
  uint64_t resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

Metrics::Metrics(events::EventBus& bus)
    : subscription_(bus.subscribe([this](const events::Event& e) { on_event(e); })) {}

Metrics::~Metrics() {
  subscription_.reset();  // no handler runs after this
}

void Metrics::count_request(const std::string& method, const std::string& route, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{method, route, status}];
}

void Metrics::on_event(const events::Event& e) {
  if (e.type != "engine.state" && e.type.rfind("engine.swap.", 0) != 0) return;
  const auto now = clock::now();
  std::lock_guard lock(mutex_);
  if (e.type == "engine.state") {
    const std::string state = str(e.payload, "state");
    if (state == "starting") {
      if (!start_began_) start_began_ = now;  // "starting" again with a new reason: the same start
    } else if (state == "running" && start_began_) {
      const double s = std::chrono::duration<double>(now - *start_began_).count();
      starts_.sum += s;
      starts_.last = s;
      ++starts_.count;
      start_began_.reset();
    } else if (state == "failed" || state == "stopped") {
      if (start_began_ && state == "failed") ++start_failures_;
      start_began_.reset();
    }
    return;
  }
  const std::string outcome = e.type.substr(std::string("engine.swap.").size());
  if (outcome == "started") {
    swap_began_ = now;
  } else if ((outcome == "done" || outcome == "rolled_back" || outcome == "failed") && swap_began_) {
    auto& s = swaps_[outcome];
    const double d = std::chrono::duration<double>(now - *swap_began_).count();
    s.sum += d;
    s.last = d;
    ++s.count;
    swap_began_.reset();
  }
}

std::string Metrics::render(const Current& now) const {
  Writer w;
  w.family("berth_info", "gauge", "berthd's version (always 1)");
  w.sample("berth_info", {{"version", now.version}}, 1);
  w.family("berth_uptime_seconds", "gauge", "Seconds since berthd started");
  w.sample("berth_uptime_seconds", {}, now.uptime_seconds);
  w.family("process_resident_memory_bytes", "gauge", "Resident memory of berthd in bytes");
  w.sample("process_resident_memory_bytes", {}, static_cast<double>(resident_memory_bytes()));

  // One sample per state, 1 for the current one: a state change is a value change, not a new series.
  const std::string engine_state = str(now.engine, "state");
  w.family("berth_engine_state", "gauge", "1 for the engine's current state, 0 for the others");
  for (const char* s : {"stopped", "starting", "running", "stopping", "failed"})
    w.sample("berth_engine_state", {{"state", s}, {"backend", str(now.engine, "backend")}}, engine_state == s ? 1 : 0);

  {
    std::lock_guard lock(mutex_);
    w.family("berth_engine_start_duration_seconds", "summary",
             "Engine starts (starting until the engine answers), in seconds");
    w.sample("berth_engine_start_duration_seconds_sum", {}, starts_.sum);
    w.sample("berth_engine_start_duration_seconds_count", {}, static_cast<double>(starts_.count));
    w.family("berth_engine_last_start_duration_seconds", "gauge", "The last engine start, in seconds");
    w.sample("berth_engine_last_start_duration_seconds", {}, starts_.last);
    w.family("berth_engine_start_failures", "counter", "Engine starts that ended failed");
    w.sample("berth_engine_start_failures_total", {}, static_cast<double>(start_failures_));
    w.family("berth_engine_swap_duration_seconds", "summary", "Backend hot swaps by outcome, in seconds");
    for (const char* outcome : {"done", "rolled_back", "failed"}) {
      const auto it = swaps_.find(outcome);
      const Summary s = it == swaps_.end() ? Summary{} : it->second;
      w.sample("berth_engine_swap_duration_seconds_sum", {{"outcome", outcome}}, s.sum);
      w.sample("berth_engine_swap_duration_seconds_count", {{"outcome", outcome}}, static_cast<double>(s.count));
    }
    w.family("berth_api_requests", "counter", "Control API requests answered, by method, route and status");
    for (const auto& [key, n] : requests_) {
      const auto& [method, route, status] = key;
      w.sample("berth_api_requests_total",
               {{"method", method}, {"route", route.empty() ? "(none)" : route}, {"code", std::to_string(status)}},
               static_cast<double>(n));
    }
  }

  w.family("berth_plugin_state", "gauge", "1 for each plugin's current state, 0 for the others");
  for (const auto& p : now.plugins) {
    const std::string state = str(p, "state");
    for (const char* s : {"refused", "disabled", "enabled", "active", "failed"})
      w.sample("berth_plugin_state", {{"plugin", str(p, "id")}, {"kind", str(p, "kind")}, {"state", s}},
               state == s ? 1 : 0);
  }

  // Published ports as the feature plugins report them, counted by protocol and state.
  std::map<std::tuple<std::string, std::string, std::string>, int> ports;
  for (const auto& [id, status] : now.features) {
    if (!status.contains("ports") || !status["ports"].is_array()) continue;
    for (const auto& port : status["ports"]) ++ports[{id, str(port, "proto"), str(port, "state")}];
  }
  w.family("berth_forwarded_ports", "gauge", "Published container ports forwarded to the host, by state");
  for (const auto& [key, n] : ports)
    w.sample("berth_forwarded_ports",
             {{"plugin", std::get<0>(key)}, {"proto", std::get<1>(key)}, {"state", std::get<2>(key)}}, n);

  // The forwarder's connection counters, where a feature reports them (vpnkit's "connections").
  struct Counter {
    const char* key;
    const char* name;
    const char* type;
    const char* help;
  };
  static constexpr Counter kCounters[] = {
      {"total", "berth_forward_connections_total", "counter", "Connections accepted on forwarded ports"},
      {"active", "berth_forward_connections_active", "gauge", "Connections open on forwarded ports"},
      {"connect_failures", "berth_forward_connect_failures_total", "counter",
       "Forwarded connections the environment refused"},
      {"resets", "berth_forward_resets_total", "counter", "Forwarded connections ended by a reset"},
      {"udp_flows", "berth_forward_udp_flows_active", "gauge", "UDP flows open on forwarded ports"},
  };
  for (const auto& c : kCounters) {
    const std::string name = c.name;
    const bool counter = std::string(c.type) == "counter";
    // A counter's family name has no _total suffix; its sample has.
    w.family(counter ? name.substr(0, name.size() - 6) : name, c.type, c.help);
    for (const auto& [id, status] : now.features) {
      if (!status.contains("connections") || !status["connections"].is_object()) continue;
      const auto& conn = status["connections"];
      if (conn.contains(c.key) && conn[c.key].is_number()) w.sample(name, {{"plugin", id}}, conn[c.key].get<double>());
    }
  }
  return w.str();
}

}  // namespace berth::daemon
