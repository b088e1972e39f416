// The way back: host paths that berth translated into environment paths on the way in
// (create_rewrite.hpp) are translated back in the engine's answers, so a client sees the paths it
// sent. Paths the engine chose itself (a named volume's data directory, a container's log file)
// lie outside the shared folder's mount point and stay as they are.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "berth/engine_proxy/path_translator.hpp"

namespace berth::engine_proxy {

// Which answers carry translated paths, from the request's method and target.
enum class ResponseKind {
  none,
  container_inspect,  // GET /containers/{id}/json
  container_list,     // GET /containers/json
  container_wait,     // POST /containers/{id}/wait: Error.Message of a container that failed
  volume,             // GET /volumes/{name}, POST /volumes/create
  volume_list,        // GET /volumes
  system_df,          // GET /system/df
  events,             // GET /events: a stream of JSON documents, one a line
};
ResponseKind response_kind(const std::string& method, const std::string& target);

// Answers are kept in the engine's key order: only the values that change are touched.
using Json = nlohmann::ordered_json;

// Each returns how many values it changed.
// A container inspect document or one entry of the container list: HostConfig.Binds,
// HostConfig.Mounts (bind sources, inline bind volumes' devices), Mounts[].Source of binds, and
// State.Error (why it failed to start, naming the paths as the engine saw them).
int restore_container(Json& container, const PathTranslator& translator);
// A volume: the device of a local bind volume (Options), and Mountpoint when it lies in the share.
int restore_volume(Json& volume, const PathTranslator& translator);
// An event: the Actor's attributes "source" and "device" (the names the engine gives a mount's
// source). dockerd 20.10 names no source path in its events; the rule is here for engines that do.
int restore_event(Json& event, const PathTranslator& translator);
// A whole answer of `kind` (for events: one document).
int restore_response(ResponseKind kind, Json& body, const PathTranslator& translator);

// The text of a JSON answer with its paths translated back; nullopt when nothing changed (the
// engine's bytes are then forwarded as they are) or the text is not JSON. A trailing newline is kept.
std::optional<std::string> restore_document(ResponseKind kind, const std::string& text,
                                            const PathTranslator& translator);
// The same for a stream of documents, one a line (events); lines that are not JSON pass unchanged.
std::optional<std::string> restore_lines(const std::string& text, const PathTranslator& translator);

// An error message of the engine ("bind source path does not exist: /mnt/host/tmp/x") with the
// environment's spelling of shared paths replaced by the host's.
std::string restore_message(const std::string& message, const PathTranslator& translator);
// The same for an error answer's body {"message": "..."}; nullopt when nothing changed.
std::optional<std::string> restore_error_body(const std::string& text, const PathTranslator& translator);

// GET /containers/json?filters={"volume":[PATH]}: the engine matches a mount's source as it
// knows it, so the environment's spelling of each host path is added to the filter. Returns the
// new target, or nullopt when it stays as it is.
std::optional<std::string> rewrite_list_filters(const std::string& method, const std::string& target,
                                                const PathTranslator& translator);

}  // namespace berth::engine_proxy
