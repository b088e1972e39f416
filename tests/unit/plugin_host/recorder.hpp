// HostServices that record what plugins do, for the plugin host tests.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "berth/plugin_host/plugin_host.hpp"
#include "temp_dir.hpp"

namespace berth::test {

struct Recorded {
  std::string plugin;
  std::string what;  // event type, or log message
};

class Recorder {
 public:
  plugin_host::HostServices services() {
    plugin_host::HostServices s;
    s.log = [this](const std::string& id, berth_log_level, const std::string& msg) { add(logs_, {id, msg}); };
    s.publish = [this](const std::string& id, const std::string& type, const nlohmann::json&) {
      add(events_, {id, type});
    };
    s.settings = [this](const std::string& id) {
      std::lock_guard lock(mutex_);
      auto it = settings_.find(id);
      return it == settings_.end() ? nlohmann::json::object() : it->second;
    };
    s.host_facts = [] { return nlohmann::json{{"os", "linux"}}; };
    s.is_enabled = [this](const std::string& id, bool dflt) {
      std::lock_guard lock(mutex_);
      auto it = enabled_.find(id);
      return it == enabled_.end() ? dflt : it->second;
    };
    return s;
  }

  void set_settings(const std::string& id, nlohmann::json v) {
    std::lock_guard lock(mutex_);
    settings_[id] = std::move(v);
  }
  void set_enabled(const std::string& id, bool on) {
    std::lock_guard lock(mutex_);
    enabled_[id] = on;
  }

  std::vector<Recorded> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::vector<Recorded> logs() const {
    std::lock_guard lock(mutex_);
    return logs_;
  }
  // Plugins that published `type`, in order.
  std::vector<std::string> sources_of(const std::string& type) const {
    std::vector<std::string> out;
    for (const auto& e : events())
      if (e.what == type) out.push_back(e.plugin);
    return out;
  }
  size_t count_event(const std::string& type) const { return sources_of(type).size(); }
  size_t count_log(const std::string& text) const {
    auto l = logs();
    return static_cast<size_t>(std::count_if(l.begin(), l.end(), [&](const Recorded& r) { return r.what == text; }));
  }
  // Index of the first event of `type`, or -1.
  long index_of(const std::string& type) const {
    auto e = events();
    for (size_t i = 0; i < e.size(); ++i)
      if (e[i].what == type) return static_cast<long>(i);
    return -1;
  }
  // Waits (generously, not a timing assertion) until an event of `type` arrived.
  bool wait_for_event(const std::string& type, std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] {
      return std::any_of(events_.begin(), events_.end(), [&](const Recorded& r) { return r.what == type; });
    });
  }

 private:
  void add(std::vector<Recorded>& to, Recorded r) {
    {
      std::lock_guard lock(mutex_);
      to.push_back(std::move(r));
    }
    cv_.notify_all();
  }
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Recorded> logs_, events_;
  std::map<std::string, nlohmann::json> settings_;
  std::map<std::string, bool> enabled_;
};

inline std::filesystem::path fixture_dir(const std::string& name) {
  return binary_dir() / "fixtures" / "plugins" / name;
}

// Is a file whose path contains `needle` mapped into this process?
inline bool mapped(const std::string& needle) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(needle) != std::string::npos) return true;
  return false;
}

// A directory with mode 0755 inside a TempDir (mkdtemp makes 0700, also fine).
inline std::filesystem::path make_dir(const std::filesystem::path& p,
                                      std::filesystem::perms mode = std::filesystem::perms(0755)) {
  std::filesystem::create_directories(p);
  std::filesystem::permissions(p, mode);
  return p;
}

// Copy the in-tree hello example (or its v2 build) into dir, as hello_feature.so + hello.feature.plugin.json.
inline void install_hello(const std::filesystem::path& dir, bool v2 = false) {
  namespace fs = std::filesystem;
  auto src = fixture_dir(v2 ? "hello-v2" : "hello");
  fs::copy_file(src / (v2 ? "hello_feature_v2.so" : "hello_feature.so"), dir / "hello_feature.so",
                fs::copy_options::overwrite_existing);
  auto manifest = nlohmann::json::parse(std::ifstream(src / "hello.feature.plugin.json"));
  manifest["library"] = "hello_feature.so";
  std::ofstream(dir / "hello.feature.plugin.json") << manifest.dump(2);
}

inline const plugin_host::PluginInfo* find_info(const std::vector<plugin_host::PluginInfo>& all, const std::string& id,
                                                plugin_host::PluginState state) {
  for (const auto& p : all)
    if (p.id == id && p.state == state) return &p;
  return nullptr;
}

}  // namespace berth::test
