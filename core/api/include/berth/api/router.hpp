// Maps (method, path pattern) to handlers. Patterns are literal segments and "{name}"
// parameters: "/v1/plugins/{id}/reload". Routes are added before the server starts; matching
// is then read-only and thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "berth/api/http.hpp"
#include "berth/api/stream_writer.hpp"

namespace berth::api {

using Handler = std::function<Response(const Request&)>;
// A streaming handler may write lines to the writer before returning, keep it to feed from other
// threads, or throw HttpError before writing anything to answer with an error instead of a stream.
using StreamHandler = std::function<void(const Request&, std::shared_ptr<StreamWriter>)>;

class Router {
 public:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{id}" kept as is
    Handler handler;                    // exactly one of handler / stream_handler is set
    StreamHandler stream_handler;
    int literal_segments = 0;
  };

  struct Match {
    enum class Kind { found, not_found, method_not_allowed };
    Kind kind = Kind::not_found;
    const Route* route = nullptr;
    std::map<std::string, std::string> params;
    std::string allow;  // for method_not_allowed: "GET, POST"
  };

  // Throws std::invalid_argument on a malformed pattern or a duplicate (method, pattern).
  Router& add(std::string method, std::string pattern, Handler handler);
  Router& add_stream(std::string method, std::string pattern, StreamHandler handler);

  // `path` is the raw (still percent-encoded) path without the query. Parameters come back decoded.
  // A more literal route wins over a parameter route ("/v1/plugins/all" over "/v1/plugins/{id}").
  Match match(std::string_view method, std::string_view path) const;

  // What a request turns into: a response, or (for a stream route whose handler returned normally)
  // a writer the server now streams from. Never throws.
  struct Outcome {
    Response response;
    std::shared_ptr<StreamWriter> stream;
  };
  // Parses request.target into path/query, matches, runs the handler. Used by the server.
  Outcome handle(Request& request, std::size_t stream_queue_bytes) const;

  // Runs a plain (non-stream) route for `request` (whose path/params it fills), turning every
  // outcome into a Response: 404/405, HttpError -> its status, other exceptions -> 500.
  Response dispatch(Request& request) const;

  const std::vector<Route>& routes() const { return routes_; }

  // Told of every request handle() answered: its method, the route's pattern
  // ("" when none matched) and the status (200 for a stream that began). For
  // GET /metrics' request counts; must be cheap and must not throw.
  using Observer = std::function<void(const std::string& method, const std::string& route, int status)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

 private:
  Route& add_route(std::string method, std::string pattern);
  Outcome route(Request& request, std::size_t stream_queue_bytes, std::string& pattern) const;
  std::vector<Route> routes_;
  Observer observer_;
};

// Splits "/a/b/c" into {"a","b","c"} (empty segments dropped, so a trailing slash does not matter).
std::vector<std::string> split_path(std::string_view path);

// Turns any exception escaping a handler into a JSON error response (and logs unexpected ones).
Response response_for_exception(std::exception_ptr error, const Request& request);

}  // namespace berth::api
