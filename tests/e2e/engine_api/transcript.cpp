#include "transcript.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>

namespace berth::test {
namespace {

// Keys whose numbers are times or process ids.
const std::set<std::string> kTimeKeys = {"Created", "time", "timeNano"};
const std::set<std::string> kPidKeys = {"Pid"};

class Normaliser {
 public:
  explicit Normaliser(std::vector<std::pair<std::string, std::string>> prefixes) : prefixes_(std::move(prefixes)) {}

  OrderedJson value(const OrderedJson& v, const std::string& key) {
    if (v.is_object()) {
      OrderedJson out = OrderedJson::object();
      for (const auto& [k, child] : v.items()) out[text(k)] = value(child, k);
      return out;
    }
    if (v.is_array()) {
      OrderedJson out = OrderedJson::array();
      for (const auto& child : v) out.push_back(value(child, key));
      // A container's mount points come from a map inside dockerd: in no defined order.
      if (key == "Mounts")
        std::stable_sort(out.begin(), out.end(), [](const OrderedJson& a, const OrderedJson& b) {
          return a.value("Destination", "") < b.value("Destination", "");
        });
      return out;
    }
    if (v.is_number() && kTimeKeys.count(key)) return "<time>";
    if (v.is_number() && kPidKeys.count(key) && v.get<long long>() != 0) return "<pid>";
    if (v.is_string()) {
      // Names dockerd makes up (adjective_surname), e.g. for the classic builder's containers.
      static const std::regex made_up(R"(^/?[a-z]+_[a-z]+$)");
      const auto s = v.get<std::string>();
      if ((key == "name" || key == "Names") && std::regex_match(s, made_up)) return "<made-up-name>";
      return text(s);
    }
    return v;
  }

  std::string text(std::string s) {
    for (const auto& [from, to] : prefixes_)
      for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
        s.replace(at, from.size(), to);
    s = replace_each(s, ids_re(), [this](const std::string& hex) { return id_token(hex); });
    static const std::regex time(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d))");
    s = replace_each(s, time, [](const std::string& t) {
      return t.rfind("0001-01-01T00:00:00", 0) == 0 ? t : std::string("<time>");
    });
    static const std::regex mac(R"(\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b)");
    static const std::regex ip(R"(\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b)");
    static const std::regex duration(
        R"(Less than a second|About a minute|About an hour|\d+ (seconds?|minutes?|hours?))");
    s = std::regex_replace(s, mac, "<mac>");
    s = std::regex_replace(s, ip, "<ip>");
    s = std::regex_replace(s, duration, "<duration>");
    return s;
  }

 private:
  static const std::regex& ids_re() {
    static const std::regex re(R"(\b([0-9a-f]{64}|[0-9a-f]{12})\b)");
    return re;
  }

  template <class F>
  static std::string replace_each(const std::string& s, const std::regex& re, F replace) {
    std::string out;
    std::size_t last = 0;
    for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it) {
      out.append(s, last, static_cast<std::size_t>(it->position()) - last);
      out += replace(it->str());
      last = static_cast<std::size_t>(it->position() + it->length());
    }
    out.append(s, last, std::string::npos);
    return out;
  }

  // The same object keeps its number wherever it appears, long or short form.
  std::string id_token(const std::string& hex) {
    const std::string key = hex.substr(0, 12);
    auto [it, fresh] = ids_.emplace(key, static_cast<int>(ids_.size()) + 1);
    (void)fresh;
    return (hex.size() == 64 ? "<id-" : "<short-id-") + std::to_string(it->second) + ">";
  }

  std::vector<std::pair<std::string, std::string>> prefixes_;
  std::map<std::string, int> ids_;
};

std::string cut(const nlohmann::json& v) {
  auto s = v.dump();
  return s.size() > 300 ? s.substr(0, 300) + "..." : s;
}

void diff(const nlohmann::json& a, const nlohmann::json& b, const std::string& request, const std::string& path,
          std::vector<Difference>& out) {
  if (a.type() != b.type()) {
    out.push_back({request, path, cut(a), cut(b)});
    return;
  }
  if (a.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys) {
      const auto child = path + "." + k;
      if (!a.contains(k) || !b.contains(k)) {
        out.push_back({request, child, a.contains(k) ? cut(a[k]) : "<absent>", b.contains(k) ? cut(b[k]) : "<absent>"});
        continue;
      }
      diff(a[k], b[k], request, child, out);
    }
    return;
  }
  if (a.is_array()) {
    const auto n = std::max(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
      const auto child = path + "[" + std::to_string(i) + "]";
      if (i >= a.size() || i >= b.size()) {
        out.push_back({request, child, i < a.size() ? cut(a[i]) : "<absent>", i < b.size() ? cut(b[i]) : "<absent>"});
        continue;
      }
      diff(a[i], b[i], request, child, out);
    }
    return;
  }
  if (a != b) out.push_back({request, path, cut(a), cut(b)});
}

}  // namespace

namespace {

// Sorts the lists of `step` the engine returns in no defined order.
void sort_unordered(Step& step) {
  for (const auto& [where, field] : step.unordered) {
    if (!step.answer.contains("body")) continue;
    auto& body = step.answer["body"];
    if (!where.empty() && !(body.is_object() && body.contains(where))) continue;
    auto& list = where.empty() ? body : body[where];
    if (!list.is_array()) continue;
    const auto key = [&field = field](const OrderedJson& e) {
      return field.empty() || !e.is_object() ? e.dump() : e.value(field, OrderedJson()).dump();
    };
    std::stable_sort(list.begin(), list.end(),
                     [&key](const OrderedJson& a, const OrderedJson& b) { return key(a) < key(b); });
  }
}

}  // namespace

Transcript normalise(const Transcript& in, const std::vector<std::pair<std::string, std::string>>& prefixes) {
  Normaliser n(prefixes);
  Transcript out;
  for (auto step : in) {
    // Sorted before (so ids first seen here are numbered in a stable order, e.g. networks by
    // name) and after (raw ids sort at random; their numbers do not).
    sort_unordered(step);
    Step norm{n.text(step.request), n.value(step.answer, ""), step.unordered};
    sort_unordered(norm);
    out.push_back(std::move(norm));
  }
  return out;
}

std::string Difference::describe() const {
  return request + "  " + path + ":\n    bare:  " + bare + "\n    berth: " + berth;
}

std::vector<Difference> compare(const Transcript& bare, const Transcript& berth) {
  std::vector<Difference> out;
  const auto n = std::max(bare.size(), berth.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (i >= bare.size() || i >= berth.size() || bare[i].request != berth[i].request) {
      out.push_back({"step " + std::to_string(i), "$", i < bare.size() ? bare[i].request : "<absent>",
                     i < berth.size() ? berth[i].request : "<absent>"});
      break;  // the scripts went different ways: what follows would not line up
    }
    // Plain json compares objects by key, whatever order each engine wrote them in.
    const auto a = nlohmann::json::parse(bare[i].answer.dump());
    const auto b = nlohmann::json::parse(berth[i].answer.dump());
    diff(a, b, bare[i].request, "$", out);
  }
  return out;
}

std::vector<Allowed> load_allow_list(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read the allow-list " + file.string());
  const auto doc = nlohmann::json::parse(in);
  std::vector<Allowed> out;
  for (const auto& e : doc) {
    Allowed a{e.at("request").get<std::string>(), e.at("path").get<std::string>(), e.at("reason").get<std::string>()};
    if (a.reason.size() < 20) throw std::runtime_error("allow-list entry without a reason: " + e.dump());
    out.push_back(std::move(a));
  }
  return out;
}

bool glob_match(const std::string& pattern, const std::string& text) {
  // Iterative '*' matching with backtracking to the last star.
  std::size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool matches(const Allowed& allowed, const Difference& d) {
  return glob_match(allowed.request, d.request) && glob_match(allowed.path, d.path);
}

}  // namespace berth::test
