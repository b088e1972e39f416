// Errors the plugin host throws.
#pragma once

#include <stdexcept>
#include <string>

namespace berth::plugin_host {

// A request to the host that cannot be done, with an HTTP-ish status for the
// REST layer: 404 unknown plugin id, 409 not possible in the current state.
class PluginHostError : public std::runtime_error {
 public:
  PluginHostError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// A call into a plugin returned an error or threw. The plugin has been marked
// failed (unless the handle was stale: the instance it pointed to had already
// been stopped, e.g. by a reload) and what() is the plugin's message.
class PluginCallError : public std::runtime_error {
 public:
  PluginCallError(std::string plugin_id, const std::string& message)
      : std::runtime_error(message), plugin_id_(std::move(plugin_id)) {}
  const std::string& plugin_id() const { return plugin_id_; }

 private:
  std::string plugin_id_;
};

// An engine filter rejected a request (this is the filter doing its job, the
// plugin is not marked failed). what() is the filter's message.
class FilterRejection : public std::runtime_error {
 public:
  FilterRejection(std::string plugin_id, const std::string& message)
      : std::runtime_error(message), plugin_id_(std::move(plugin_id)) {}
  const std::string& plugin_id() const { return plugin_id_; }

 private:
  std::string plugin_id_;
};

}  // namespace berth::plugin_host
