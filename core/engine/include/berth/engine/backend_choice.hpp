// The backend choice rule of ARCHITECTURE.md as a pure function: the admin's
// locked choice > the user's > the admin's default, if it can run here; else the
// usable backend with the highest priority; a backend whose start failed falls
// back to the next. Host facts enter through the probes (each backend answers
// probe(host facts)); the rule itself touches no plugin, file or process, so it
// is tested on its own (tests/unit/engine). Its texts are the ones users read in
// `berthctl backend ls`, GET /v1/backend and the engine's state reason.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "berth/settings/admin_config.hpp"

namespace berth::engine {

// "berth.backend.wsl2" -> "wsl2": the name users type.
std::string backend_name(const std::string& plugin_id);

// One active backend plugin's answer to probe(host facts).
struct BackendProbe {
  std::string name;  // "wsl2"
  bool supported = false;
  std::string reason;
  int priority = 0;
};

struct ChoiceInput {
  std::vector<BackendProbe> probes;  // every active backend plugin, in the plugin host's order
  settings::AdminString admin;       // backend.preferred in the admin config (a default, or locked)
  std::optional<std::string> user;   // the user's choice (berthctl backend use)
  // Backends whose start failed in this bring-up: left out of the order, so the
  // pick is the next one (the fallback).
  std::vector<std::string> failed;
  // A swap (or its rollback) starts exactly these, in this order, and no other;
  // each must be usable here, else the order is empty and the note says which is not.
  std::vector<std::string> only;
};

struct Choice {
  std::optional<std::string> preferred;  // the admin's locked value > the user's > the admin's default
  // Whom to start, in order: the pick first, then what a failed start falls back to.
  std::vector<std::string> order;
  // Why the usual choice is not the pick, or why there is none (then it is the
  // engine's failure reason). Ends with ". " when it precedes more text.
  std::string note;
  // Why the pick, in words (`berthctl backend ls` "chosen: X (why)").
  std::string why;

  std::optional<std::string> pick() const {
    return order.empty() ? std::nullopt : std::optional<std::string>(order.front());
  }
};

Choice choose_backend(const ChoiceInput& input);

// What the engine's reason says when `name` failed to start: "wsl2 failed: <why>;
// falling back to hyperv" when `next` has a pick, else "wsl2 failed: <why>".
std::string fallback_reason(const std::string& name, const std::string& why, const Choice& next);

// A backend plugin that is installed but not active (disabled or failed).
struct InactiveBackend {
  std::string id;      // "berth.backend.hyperv"
  std::string reason;  // "plugin failed: <why>"
};

// Why the user may not choose `name` now: the HTTP status (403 locked by the
// admin, 400 no such backend, 409 cannot run here or its plugin is not active)
// and the message. nullopt: the choice is allowed.
struct ChoiceRefusal {
  int status = 0;
  std::string message;
};
std::optional<ChoiceRefusal> refuse_user_choice(const std::string& name, const ChoiceInput& input,
                                                const std::vector<InactiveBackend>& inactive);

}  // namespace berth::engine
