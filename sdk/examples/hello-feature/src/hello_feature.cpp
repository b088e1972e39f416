// hello.feature: greets in the daemon's log and on the event bus when it starts
// and whenever its settings change; its status shows the current greeting.
//
// Everything a plugin needs comes from <berth/sdk/sdk.hpp>: derive from
// berth::Feature, override what you need, and export it with BERTH_PLUGIN().
#include <berth/sdk/sdk.hpp>
#include <mutex>
#include <string>

namespace {

// The SDK hands settings over as a JSON document. A real plugin would use its
// favourite JSON library; this example reads its two flat keys by hand so it
// needs nothing but the SDK.
std::string json_string_field(const std::string& doc, const std::string& key, const std::string& fallback) {
  auto pos = doc.find("\"" + key + "\"");
  if (pos == std::string::npos) return fallback;
  pos = doc.find(':', pos);
  if (pos == std::string::npos) return fallback;
  pos = doc.find('"', pos);
  if (pos == std::string::npos) return fallback;
  std::string out;
  for (++pos; pos < doc.size() && doc[pos] != '"'; ++pos) {
    if (doc[pos] == '\\' && pos + 1 < doc.size()) ++pos;
    out += doc[pos];
  }
  return out;
}

int json_int_field(const std::string& doc, const std::string& key, int fallback) {
  auto pos = doc.find("\"" + key + "\"");
  if (pos == std::string::npos) return fallback;
  pos = doc.find(':', pos);
  if (pos == std::string::npos) return fallback;
  try {
    return std::stoi(doc.substr(pos + 1));
  } catch (const std::exception&) {
    return fallback;
  }
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

class HelloFeature : public berth::Feature {
 public:
  // Keep the constructor cheap: the host is still loading. Work goes in start().
  using berth::Feature::Feature;

  ~HelloFeature() override { host().debug("hello.feature instance destroyed"); }

  void start() override {
    apply(host().settings_json());
    host().info("hello.feature started");
  }

  void stop() override { host().info("hello.feature stopped"); }  // no threads to join

  std::string status_json() override {
    std::lock_guard lock(mutex_);
    return "{\"greeting\":" + json_quote(greeting_) + ",\"times\":" + std::to_string(times_) +
           ",\"greeted\":" + std::to_string(greeted_) + "}";
  }

  void on_settings_changed(const std::string& settings_json) override { apply(settings_json); }

 private:
  void apply(const std::string& settings_json) {
    std::string greeting = json_string_field(settings_json, "greeting", "hello");
    int times = json_int_field(settings_json, "times", 1);
    if (times < 1 || times > 10) throw berth::Error("setting 'times' must be 1..10, got " + std::to_string(times));
    {
      std::lock_guard lock(mutex_);
      greeting_ = greeting;
      times_ = times;
    }
    for (int i = 0; i < times; ++i) host().info(greeting);
    host().publish("hello.greeted",
                   "{\"greeting\":" + json_quote(greeting) + ",\"times\":" + std::to_string(times) + "}");
    std::lock_guard lock(mutex_);
    ++greeted_;
  }

  std::mutex mutex_;  // status() may run on another thread than on_settings_changed()
  std::string greeting_ = "hello";
  int times_ = 1;
  int greeted_ = 0;
};

}  // namespace

BERTH_PLUGIN(HelloFeature)
