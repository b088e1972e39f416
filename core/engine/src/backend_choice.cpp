#include "berth/engine/backend_choice.hpp"

#include <algorithm>

#include "berth/settings/schema.hpp"

namespace berth::engine {

std::string backend_name(const std::string& plugin_id) {
  const auto dot = plugin_id.rfind('.');
  return dot == std::string::npos ? plugin_id : plugin_id.substr(dot + 1);
}

namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Says why the pick is the pick; `note` is the rule's note.
std::string why_picked(const ChoiceInput& in, const Choice& c) {
  const auto chosen = c.pick();
  if (!chosen) return c.note;
  if (c.preferred && *c.preferred == *chosen) {
    if (in.admin.locked && in.admin.value) return "locked to " + *chosen + " by the administrator";
    if (in.user) return "your choice (berthctl backend use " + *chosen + ")";
    return "the administrator's default";
  }
  return c.note.empty() ? "the highest-priority backend that can run here" : c.note.substr(0, c.note.size() - 2);
}

}  // namespace

Choice choose_backend(const ChoiceInput& in) {
  Choice out;
  out.preferred = settings::resolve_backend_preferred(in.admin, in.user);
  std::vector<BackendProbe> usable;
  std::string unusable;
  for (const auto& p : in.probes) {
    if (p.supported)
      usable.push_back(p);
    else
      unusable += (unusable.empty() ? "" : "; ") + p.name + ": " + p.reason;
  }
  std::stable_sort(usable.begin(), usable.end(),
                   [](const BackendProbe& a, const BackendProbe& b) { return a.priority > b.priority; });
  if (out.preferred) {
    auto it =
        std::find_if(usable.begin(), usable.end(), [&](const BackendProbe& p) { return p.name == *out.preferred; });
    if (it != usable.end()) {
      std::rotate(usable.begin(), it, it + 1);
    } else {
      auto known = std::find_if(in.probes.begin(), in.probes.end(),
                                [&](const BackendProbe& p) { return p.name == *out.preferred; });
      out.note = "preferred backend " + *out.preferred +
                 (known == in.probes.end() ? " is not installed or not active"
                                           : " is not supported here (" + known->reason + ")");
      if (!usable.empty()) out.note += "; using " + usable.front().name;
      out.note += ". ";
    }
  }
  if (usable.empty()) {
    out.note = in.probes.empty() ? "no backend plugin is active (check berthctl plugins ls)"
                                 : "no backend can run on this host: " + unusable;
  } else if (out.note.empty() && !unusable.empty()) {
    // Say why the usual choice is not the one running ("wsl2: no namespaces ...; using hyperv").
    out.note = "not usable here: " + unusable + "; " + usable.front().name +
               " is the highest-priority backend that can run here. ";
  }
  std::vector<std::string> names;
  for (const auto& p : usable) names.push_back(p.name);
  if (!in.only.empty()) {
    out.note.clear();  // the user asked for these: nothing to explain about the usual choice
    for (const auto& name : in.only) {
      if (!contains(names, name)) {
        out.note = name + " cannot run on this host now (see berthctl backend ls)";
        out.why = out.note;
        return out;
      }
    }
    names = in.only;
  }
  for (const auto& name : names)
    if (!contains(in.failed, name)) out.order.push_back(name);
  out.why = why_picked(in, out);
  return out;
}

std::string fallback_reason(const std::string& name, const std::string& why, const Choice& next) {
  const auto to = next.pick();
  return name + " failed: " + why + (to ? "; falling back to " + *to : "");
}

std::optional<ChoiceRefusal> refuse_user_choice(const std::string& name, const ChoiceInput& in,
                                                const std::vector<InactiveBackend>& inactive) {
  if (in.admin.locked && in.admin.value && *in.admin.value != name)
    return ChoiceRefusal{403, "the backend is locked to " + *in.admin.value +
                                  " by the administrator (admin config backend.preferred); ask them to unlock it"};
  auto it = std::find_if(in.probes.begin(), in.probes.end(), [&](const BackendProbe& p) { return p.name == name; });
  if (it == in.probes.end()) {
    for (const auto& p : inactive) {
      if (backend_name(p.id) == name)
        return ChoiceRefusal{409, "backend " + name + " is not running: " + p.reason + " (berthctl plugins reload " +
                                      p.id + " or plugins enable " + p.id + ")"};
    }
    std::string known;
    for (const auto& p : in.probes) known += (known.empty() ? "" : ", ") + p.name;
    return ChoiceRefusal{400, "no active backend named '" + name + "' (active: " + (known.empty() ? "none" : known) +
                                  "; see berthctl backend ls and berthctl plugins ls)"};
  }
  if (!it->supported) return ChoiceRefusal{409, "backend " + name + " cannot run on this host: " + it->reason};
  return std::nullopt;
}

}  // namespace berth::engine
