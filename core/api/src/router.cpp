#include "berth/api/router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <stdexcept>

namespace berth::api {

namespace {

bool is_param(const std::string& segment) {
  return segment.size() >= 3 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    auto slash = path.find('/');
    auto segment = path.substr(0, slash);
    if (!segment.empty()) out.emplace_back(segment);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

Router::Route& Router::add_route(std::string method, std::string pattern) {
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  for (const auto& r : routes_) {
    if (r.method == method && r.pattern == pattern) {
      throw std::invalid_argument("duplicate route " + method + " " + pattern);
    }
  }
  Route route;
  route.segments = split_path(pattern);
  for (const auto& s : route.segments) {
    if (s.find_first_of("{}") != std::string::npos && !is_param(s)) {
      throw std::invalid_argument("malformed route segment '" + s + "' in " + pattern);
    }
    if (!is_param(s)) ++route.literal_segments;
  }
  route.method = std::move(method);
  route.pattern = std::move(pattern);
  routes_.push_back(std::move(route));
  return routes_.back();
}

Router& Router::add(std::string method, std::string pattern, Handler handler) {
  add_route(std::move(method), std::move(pattern)).handler = std::move(handler);
  return *this;
}

Router& Router::add_stream(std::string method, std::string pattern, StreamHandler handler) {
  add_route(std::move(method), std::move(pattern)).stream_handler = std::move(handler);
  return *this;
}

Router::Match Router::match(std::string_view method, std::string_view path) const {
  std::vector<std::string> segments = split_path(path);
  Match best;
  std::set<std::string> allowed;
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      const auto& want = route.segments[i];
      if (is_param(want)) {
        params[want.substr(1, want.size() - 2)] = percent_decode(segments[i], false);
      } else {
        ok = want == segments[i];
      }
    }
    if (!ok) continue;
    allowed.insert(route.method);
    if (route.method != method) continue;
    if (best.route == nullptr || route.literal_segments > best.route->literal_segments) {
      best.kind = Match::Kind::found;
      best.route = &route;
      best.params = std::move(params);
    }
  }
  if (best.route == nullptr && !allowed.empty()) {
    best.kind = Match::Kind::method_not_allowed;
    for (const auto& m : allowed) best.allow += (best.allow.empty() ? "" : ", ") + m;
  }
  return best;
}

Response response_for_exception(std::exception_ptr error, const Request& request) {
  try {
    std::rethrow_exception(error);
  } catch (const HttpError& e) {
    return Response::error(e.status(), e.what());
  } catch (const std::exception& e) {
    spdlog::error("api: {} {} failed: {}", request.method, request.target, e.what());
    return Response::error(500, e.what());
  } catch (...) {
    spdlog::error("api: {} {} failed with a non-standard exception", request.method, request.target);
    return Response::error(500, "internal error");
  }
}

Router::Outcome Router::handle(Request& request, std::size_t stream_queue_bytes) const {
  std::string pattern;
  Outcome out = route(request, stream_queue_bytes, pattern);
  if (observer_) observer_(request.method, pattern, out.stream ? 200 : out.response.status);
  return out;
}

Router::Outcome Router::route(Request& request, std::size_t stream_queue_bytes, std::string& pattern) const {
  Outcome out;
  try {
    auto q = request.target.find('?');
    std::string_view raw_path = std::string_view(request.target).substr(0, q);
    if (q != std::string::npos) request.query = parse_query(std::string_view(request.target).substr(q + 1));
    request.path = percent_decode(raw_path, false);
    Match m = match(request.method, raw_path);
    switch (m.kind) {
      case Match::Kind::not_found:
        out.response = Response::error(404, "no such endpoint: " + request.method + " " + request.path);
        return out;
      case Match::Kind::method_not_allowed:
        out.response = Response::error(405, "method " + request.method + " not allowed on " + request.path +
                                                " (allowed: " + m.allow + ")")
                           .with_header("Allow", m.allow);
        return out;
      case Match::Kind::found:
        break;
    }
    request.params = std::move(m.params);
    pattern = m.route->pattern;
    if (m.route->stream_handler) {
      out.stream = std::make_shared<StreamWriter>(stream_queue_bytes);
      m.route->stream_handler(request, out.stream);
    } else {
      out.response = m.route->handler(request);
    }
  } catch (...) {
    out.response = response_for_exception(std::current_exception(), request);
    if (out.stream) {
      out.stream->close_with("the stream handler failed", false);
      out.stream.reset();
    }
  }
  return out;
}

Response Router::dispatch(Request& request) const {
  Outcome out = handle(request, 1 << 20);
  if (out.stream) {
    out.stream->close_with("dispatch() does not stream", false);
    return Response::error(500, "route for " + request.path + " is a stream route");
  }
  return std::move(out.response);
}

}  // namespace berth::api
