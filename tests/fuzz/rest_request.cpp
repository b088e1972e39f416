// The REST request path: the input is the byte stream a client sends on one connection. Beast's
// request parser reads it with the server's limits, one request after another while the
// connection is kept alive; each request becomes berth's Request as the server's connections make
// it (request_from_beast), and its answer becomes what they write (response_to_beast). Each input
// is sent twice, each time to an empty settings database: over the unix socket, where the socket's
// permissions are the only check, and over the loopback TCP listener, through its real check
// (check_tcp_request) with a token read from a file as berthd reads it, so refused requests are
// fuzzed as well. Requests let through reach a real Router with the daemon's real settings
// routes, over the SQLite settings store on a temp dir and a plugin host that has read two
// plugins' manifests (nothing runs a plugin: settings routes only read manifests).
// Checked besides crashes: routing answers every request without throwing, with a status between
// 100 and 599; over TCP, only a page request or one that presents the token gets past the check;
// a secret setting never shows unmasked; an error answer says what went wrong.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "berth/api/auth.hpp"
#include "berth/api/beast_messages.hpp"
#include "berth/api/browser_sessions.hpp"
#include "berth/api/router.hpp"
#include "berth/api/server.hpp"
#include "berth/daemon/settings_routes.hpp"
#include "berth/events/event_bus.hpp"
#include "berth/plugin_host/plugin_host.hpp"
#include "berth/settings/admin_config.hpp"
#include "berth/settings/store.hpp"
#include "fuzz_target.hpp"

namespace fs = std::filesystem;
namespace http = boost::beast::http;
namespace api = berth::api;

namespace {

// The token the seeds present (tests/fuzz/rest_request/dict has it too).
constexpr std::string_view kToken = "fuzz-token-3f9a1c07d2b84e65";

void write_file(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) berth::fuzz::violated("cannot write " + path.string());
}

// What one process shares between inputs: the token, the admin config, the plugin host, the
// event bus and the settings database, which every pass of an input starts with empty.
//
// What it keeps from one input to the next stays the same size: libFuzzer runs an input that
// made more allocations than it freed again, and then LeakSanitizer over the whole heap. With
// the bus's history and the browser sessions filling up over thousands of inputs, and a
// PATCHed store replaced at the start of the next input, most inputs took that path, and the
// target ran at a sixth of its speed (117 inputs a second against 669 without leak checks).
// So the bus keeps no history, one browser session and one code at most, and a pass that
// PATCHed replaces the store before it ends (it frees what the old one grew by).
struct World {
  fs::path dir;
  std::string token;
  api::ServerOptions options;  // the server's defaults: body and header limits, stream queue
  std::shared_ptr<const berth::settings::AdminConfig> config;
  berth::events::EventBus bus{0};
  std::unique_ptr<berth::plugin_host::PluginHost> plugins;
  api::BrowserSessions sessions{
      api::BrowserSessions::Limits{std::chrono::seconds(60), std::chrono::seconds(3600), 1, 1}};
  std::unique_ptr<berth::settings::Store> store;
  // Only a PATCH writes to the store; making a fresh one costs more than a whole request, so it
  // is made anew only after a pass that routed one, from a copy of an empty database made once
  // (opening a copy skips creating the tables).
  bool store_touched = false;
  fs::path empty_db;

  World() {
    // tmpfs where there is one: the store commits with fsync, once per changed setting.
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string pattern = (base / "berth-fuzz-rest-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) berth::fuzz::violated("mkdtemp failed under " + base.string());
    dir = pattern;

    write_file(dir / "token", std::string(kToken) + "\n");
    fs::permissions(dir / "token", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    token = api::read_token_file(dir / "token");

    // A plugin with a setting of each kind the schema language has, a secret among them, and one
    // without settings (the routes then serve an empty schema).
    const fs::path plugin_dir = dir / "plugins";
    fs::create_directories(plugin_dir);
    write_file(plugin_dir / "fixture.settings.plugin.json", R"({
      "id": "fixture.settings", "kind": "feature", "version": "1.0.0", "library": "libfixture-settings.so",
      "settings": {"type": "object", "properties": {
        "greeting": {"type": "string", "default": "hello", "maxLength": 40},
        "count": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
        "ratio": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "token": {"type": "string", "secret": true},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 3},
        "nested": {"type": "object", "properties": {"x": {"type": "boolean"}}, "additionalProperties": false},
        "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"}}}})");
    write_file(plugin_dir / "libfixture-settings.so", "");
    write_file(plugin_dir / "fixture.plain.plugin.json",
               R"({"id": "fixture.plain", "kind": "backend", "version": "0.1.0", "library": "libfixture-plain.so"})");
    write_file(plugin_dir / "libfixture-plain.so", "");

    // The admin locks one setting and gives another a default, through the real config parser.
    config = std::make_shared<const berth::settings::AdminConfig>(berth::settings::parse_admin_config(
        R"({"plugins": {"fixture.settings": {"settings": {"mode": {"value": "fast", "locked": true},
                                                           "count": {"value": 2}}}}})",
        dir / "berth.json"));

    berth::settings::Store::open(dir / "empty").reset();  // closing it leaves no WAL beside it
    empty_db = dir / "empty" / berth::settings::Store::kFileName;
    fresh_store();

    plugins = std::make_unique<berth::plugin_host::PluginHost>(berth::plugin_host::HostServices{}, dir / "cache");
    plugins->discover({plugin_dir});
  }

  ~World() {
    store.reset();
    plugins.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  // An empty settings store in place of the one a pass PATCHed.
  void fresh_store();
};

World& world() {
  static World w;
  return w;
}

// An error answer carries {"error": {"code": status, "message": "..."}} with a message.
void check_error_body(const api::Response& response) {
  if (response.text) return;  // a text answer, not JSON
  const auto& body = response.body;
  if (!body.is_object() || !body.contains("error") || !body["error"].is_object())
    berth::fuzz::violated("error answer " + std::to_string(response.status) + " without an error object");
  const auto& message = body["error"]["message"];
  if (!message.is_string() || message.get<std::string>().empty())
    berth::fuzz::violated("error answer " + std::to_string(response.status) + " without a message");
}

void check_secret_masked(const api::Response& response) {
  const auto& body = response.body;
  if (!body.is_object() || !body.contains("values") || !body["values"].is_object()) return;
  const auto& values = body["values"];
  if (auto it = values.find("token"); it != values.end() && *it != "***")
    berth::fuzz::violated("a secret setting shows unmasked: " + it->dump());
}

// libFuzzer's timeout alarm interrupts system calls, and copy_file throws when its sendfile is
// interrupted; a copy that was interrupted is made again.
void copy_empty_db(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  do {
    fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  } while (ec == std::errc::interrupted);
  if (ec) berth::fuzz::violated("cannot copy the empty settings database: " + ec.message());
}

void World::fresh_store() {
  store.reset();
  std::error_code ec_rm;
  fs::remove_all(dir / "state", ec_rm);
  fs::create_directory(dir / "state");
  copy_empty_db(empty_db, dir / "state" / berth::settings::Store::kFileName);
  store = berth::settings::Store::open(dir / "state");
  store_touched = false;
}

// One connection: reads requests from `bytes` while the connection is kept alive, answers each.
void serve_connection(std::string_view bytes, const api::Peer& peer) {
  World& w = world();
  // The routes over it, as berthd registers them.
  berth::daemon::SettingsRouteDeps deps;
  deps.store = w.store.get();
  deps.plugins = w.plugins.get();
  deps.bus = &w.bus;
  deps.config = [&w] { return w.config; };
  deps.settings_changed = [&w](const std::string& id) { w.plugins->notify_settings_changed(id); };
  api::Router router;
  berth::daemon::add_settings_routes(router, deps);

  const bool tcp = peer.transport == api::Peer::Transport::tcp;
  while (!bytes.empty()) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(w.options.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(w.options.max_header_bytes));
    boost::beast::error_code ec;
    // All of the connection's remaining bytes are here, so a parser that takes none of them (it
    // says "need more", or in the middle of a body nothing at all) has met the end of the stream.
    while (!parser.is_done()) {
      const std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
      bytes.remove_prefix(used);
      if (ec == http::error::need_more) ec = {};
      if (ec) break;
      if (used == 0) {
        parser.put_eof(ec);
        break;
      }
    }
    // The server answers a request it could not read with an error and closes (session.hpp).
    if (ec || !parser.is_done()) return;

    auto message = parser.release();
    const bool keep_alive = message.keep_alive();
    api::Request request = api::request_from_beast(std::move(message), peer);

    api::Response response;
    bool routed = false;
    if (auto refusal = tcp ? api::check_tcp_request(request, w.token, &w.sessions) : std::nullopt) {
      response = std::move(*refusal);
    } else {
      if (tcp && !api::is_page_request(request)) {
        const std::string* auth = request.header("Authorization");
        if (auth == nullptr || auth->find(w.token) == std::string::npos)
          berth::fuzz::violated("a TCP request without the token got past the check: " + request.method + " " +
                                request.target);
      }
      if (request.method == "PATCH") w.store_touched = true;
      api::Router::Outcome outcome = router.handle(request, w.options.stream_queue_bytes);
      if (outcome.stream) berth::fuzz::violated("a stream from a route that has none: " + request.target);
      response = std::move(outcome.response);
      routed = true;
    }
    if (response.status < 100 || response.status > 599)
      berth::fuzz::violated("status " + std::to_string(response.status) + " for " + request.target);
    if (response.status >= 400) check_error_body(response);
    if (routed) check_secret_masked(response);
    // What the connection writes; it must not throw either.
    auto written = api::response_to_beast(std::move(response));
    written.keep_alive(keep_alive);
    written.prepare_payload();
    if (!keep_alive) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The routes log every change; millions of lines would only fill the log.
  static const bool quiet = (spdlog::set_level(spdlog::level::off), true);
  (void)quiet;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  api::Peer unix_peer;  // root, as berthctl run by root: SO_PEERCRED's answer
  unix_peer.uid = 0;
  unix_peer.gid = 0;
  unix_peer.pid = ::getpid();
  serve_connection(bytes, unix_peer);
  if (world().store_touched) world().fresh_store();

  api::Peer tcp_peer;
  tcp_peer.transport = api::Peer::Transport::tcp;
  tcp_peer.address = "127.0.0.1";
  tcp_peer.port = 41234;
  serve_connection(bytes, tcp_peer);
  if (world().store_touched) world().fresh_store();
  return 0;
}
