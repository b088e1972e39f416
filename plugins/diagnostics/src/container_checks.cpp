// The self-check's container checks (container_checks.hpp). Each runs one
// throwaway busybox container through berthd's engine socket and removes it.
#include "container_checks.hpp"

#include <berth/contracts/diagnostic_check.hpp>
#include <berth/engine_client/engine_client.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <random>
#include <thread>

namespace berth::diagnostics {

namespace {

using berth::contracts::diagnostic_check;
using berth::engine_client::EngineClient;
using nlohmann::json;
namespace asio = boost::asio;
namespace http = boost::beast::http;

constexpr const char* kImportHint =
    "import one from berth's base image: `tar -C /var/lib/berth/base/current/rootfs -c bin | docker --context "
    "berth import - busybox`";

// A value the check expects back, so an answer from anything else cannot pass it.
std::string random_token() {
  std::random_device rd;
  std::string s = "berth-check-";
  for (int i = 0; i < 4; ++i) {
    char part[9];
    std::snprintf(part, sizeof part, "%08x", rd());
    s += part;
  }
  return s;
}

// The first local image whose repository is busybox (any registry path, any tag).
std::optional<std::string> local_busybox(const EngineClient& engine) {
  const auto r = engine.request("GET", "/images/json");
  if (!r.ok()) throw std::runtime_error("listing images answered " + std::to_string(r.status));
  for (const auto& image : r.body)
    for (const auto& tag : image.value("RepoTags", json::array())) {
      if (!tag.is_string()) continue;
      const std::string t = tag.get<std::string>();
      const std::string repo = t.substr(0, t.rfind(':'));
      if (repo == "busybox" || (repo.size() > 8 && repo.ends_with("/busybox"))) return t;
    }
  return std::nullopt;
}

// One container created by the check and force-removed when the check ends,
// whether it passed, failed or threw.
class ThrowawayContainer {
 public:
  ThrowawayContainer(std::filesystem::path socket, std::chrono::seconds limit, json spec)
      : socket_(std::move(socket)), limit_(limit) {
    spec["Tty"] = true;  // the logs come back as plain text, not multiplexed frames
    spec["Labels"] = {{"berth.diagnostics", "self-check"}};
    const auto r = client().request("POST", "/containers/create", spec);
    if (r.status != 201) throw std::runtime_error("creating the container: " + r.error_message());
    id_ = r.body.value("Id", "");
    const auto s = client().request("POST", "/containers/" + id_ + "/start");
    if (!s.ok()) throw std::runtime_error("starting the container: " + s.error_message());
  }
  ThrowawayContainer(const ThrowawayContainer&) = delete;
  ThrowawayContainer& operator=(const ThrowawayContainer&) = delete;
  ~ThrowawayContainer() {
    try {
      client().request("DELETE", "/containers/" + id_ + "?force=1");
    } catch (const std::exception&) {
      // The engine stopped answering: `docker ps -a --filter label=berth.diagnostics` finds it.
    }
  }

  // Waits for the container's exit (bounded by the limit) and returns its output.
  std::string wait_and_read() {
    const auto w = client().request("POST", "/containers/" + id_ + "/wait");
    if (!w.ok()) throw std::runtime_error("waiting for the container: " + w.error_message());
    const auto logs = client().request("GET", "/containers/" + id_ + "/logs?stdout=1&stderr=1");
    return logs.text;
  }

  // The host port the engine bound for `container_port` ("8080/tcp").
  std::string host_port(const std::string& container_port) {
    const auto r = client().request("GET", "/containers/" + id_ + "/json");
    const json ports = r.body.is_object() ? r.body["NetworkSettings"].value("Ports", json::object()) : json();
    if (!ports.is_object() || !ports.contains(container_port) || !ports[container_port].is_array() ||
        ports[container_port].empty())
      throw std::runtime_error("the engine bound no host port for " + container_port);
    return ports[container_port][0].value("HostPort", "");
  }

 private:
  EngineClient client() const { return EngineClient(socket_.string(), limit_); }

  std::filesystem::path socket_;
  std::chrono::seconds limit_;
  std::string id_;
};

// The last non-empty line of a container's output, for a finding that fits one line.
std::string last_line(const std::string& output) {
  std::string last;
  std::size_t start = 0;
  while (start < output.size()) {
    std::size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    std::string line = output.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) last = line;
    start = end + 1;
  }
  return last.empty() ? "no output" : last.substr(0, 200);
}

json dns_check(const std::filesystem::path& socket, const std::string& image, std::chrono::seconds limit) {
  // Any answer from the resolver passes, NXDOMAIN included: the question is whether a
  // container's DNS reaches the host's resolver, not what it knows about a name.
  ThrowawayContainer c(socket, limit, {{"Image", image}, {"Cmd", {"nslookup", "localhost"}}});
  const std::string out = c.wait_and_read();
  const bool answered = out.find("Name:") != std::string::npos || out.find("can't find") != std::string::npos;
  if (answered)
    return diagnostic_check("container.dns", "network", "pass", "a container's DNS reaches the host's resolver");
  return diagnostic_check("container.dns", "network", "fail",
                          "a container's DNS query got no answer: " + last_line(out),
                          "check the host's own DNS (`getent hosts deb.debian.org`); then `berthctl logs --source "
                          "berth.feature.vpnkit -n 50` and `berthctl plugins show berth.feature.vpnkit`");
}

// Serves one HTTP answer carrying `token` on the host's 127.0.0.1, on a port of
// its own, until stopped; reports whether anyone asked.
class LoopbackListener {
 public:
  explicit LoopbackListener(std::string token)
      : token_(std::move(token)), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  ~LoopbackListener() {
    io_.stop();
    thread_.join();
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  bool asked() const { return asked_; }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      auto stream = std::make_shared<boost::beast::tcp_stream>(std::move(socket));
      auto buffer = std::make_shared<boost::beast::flat_buffer>();
      auto request = std::make_shared<http::request<http::string_body>>();
      stream->expires_after(std::chrono::seconds(5));
      http::async_read(
          *stream, *buffer, *request, [this, stream, buffer, request](boost::system::error_code e, std::size_t) {
            if (e) return;
            asked_ = true;
            auto answer = std::make_shared<http::response<http::string_body>>(http::status::ok, request->version());
            answer->set(http::field::content_type, "text/plain");
            answer->keep_alive(false);
            answer->body() = token_ + "\n";
            answer->prepare_payload();
            http::async_write(*stream, *answer, [stream, answer](boost::system::error_code, std::size_t) {
              boost::system::error_code ignored;
              stream->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
            });
          });
      accept();
    });
  }

  std::string token_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> asked_{false};
  std::thread thread_;
};

json outbound_check(const std::filesystem::path& socket, const std::string& image, std::chrono::seconds limit) {
  const std::string token = random_token();
  LoopbackListener listener(token);
  const std::string url = "http://host.berth.internal:" + std::to_string(listener.port()) + "/";
  // -Y off: straight to the host, as NO_PROXY says for host.berth.internal (busybox's
  // wget would otherwise send it to a configured proxy, which cannot resolve that name).
  ThrowawayContainer c(socket, limit,
                       {{"Image", image}, {"Cmd", {"timeout", "5", "wget", "-q", "-Y", "off", "-O", "-", url}}});
  const std::string out = c.wait_and_read();
  if (out.find(token) != std::string::npos)
    return diagnostic_check("container.outbound", "network", "pass",
                            "a container reached a listener on the host's loopback as host.berth.internal");
  return diagnostic_check(
      "container.outbound", "network", "fail",
      std::string("a container could not reach ") + url + " (a listener on the host's 127.0.0.1" +
          (listener.asked() ? ", which was asked but its answer did not arrive" : ", which saw no request") +
          "): " + last_line(out),
      "`berthctl plugins show berth.feature.vpnkit` (outbound networking); `berthctl logs --source "
      "berth.feature.vpnkit -n 50`");
}

// GET http://127.0.0.1:<port>/t from the host, retried until `deadline` while
// the port is being published: the body, or "" when it never answered.
std::string get_from_host(const std::string& port, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    try {
      asio::io_context io;
      boost::beast::tcp_stream stream(io);
      stream.expires_after(std::chrono::seconds(2));
      stream.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(std::stoi(port))});
      http::request<http::empty_body> req(http::verb::get, "/t", 10);
      req.set(http::field::host, "127.0.0.1:" + port);
      http::write(stream, req);
      boost::beast::flat_buffer buffer;
      http::response<http::string_body> res;
      http::read(stream, buffer, res);
      if (res.result() == http::status::ok) return res.body();
    } catch (const std::exception&) {
      // Not published yet, or the server in the container is not listening yet.
    }
    if (std::chrono::steady_clock::now() > deadline) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// A port free on the host's loopback now. The engine would pick one free inside the
// environment, which the host may be using (a busy host's ephemeral ports), and the
// forward to the host would then fail for a reason that is not the network's.
unsigned short free_host_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  return probe.local_endpoint().port();
}

json published_port_check(const std::filesystem::path& socket, const std::string& image, std::chrono::seconds limit) {
  const std::string token = random_token();
  const std::string wanted = std::to_string(free_host_port());
  const std::string serve = "mkdir -p /tmp/www && echo " + token + " > /tmp/www/t && exec httpd -f -p 8080 -h /tmp/www";
  ThrowawayContainer c(
      socket, limit,
      {{"Image", image},
       {"Cmd", {"sh", "-c", serve}},
       {"ExposedPorts", {{"8080/tcp", json::object()}}},
       {"HostConfig", {{"PortBindings", {{"8080/tcp", {{{"HostIp", "127.0.0.1"}, {"HostPort", wanted}}}}}}}}});
  const std::string port = c.host_port("8080/tcp");
  const std::string body = get_from_host(port, std::chrono::steady_clock::now() + limit);
  if (body.find(token) != std::string::npos)
    return diagnostic_check("container.published_port", "network", "pass",
                            "a container's published port answers on the host's 127.0.0.1:" + port);
  return diagnostic_check("container.published_port", "network", "fail",
                          "a container's port published on 127.0.0.1:" + port + " did not answer within " +
                              std::to_string(limit.count()) + " s",
                          "`berthctl ports` lists what is forwarded and why a port failed; `berthctl logs --source "
                          "berth.feature.vpnkit -n 50`");
}

}  // namespace

std::vector<json> container_checks(const std::filesystem::path& engine_socket, std::chrono::seconds limit) {
  using Check = json (*)(const std::filesystem::path&, const std::string&, std::chrono::seconds);
  const std::pair<const char*, Check> checks[] = {{"container.dns", dns_check},
                                                  {"container.outbound", outbound_check},
                                                  {"container.published_port", published_port_check}};
  std::vector<json> out;
  std::optional<std::string> image;
  try {
    const EngineClient engine(engine_socket.string(), limit);
    image = local_busybox(engine);
  } catch (const std::exception& e) {
    for (const auto& [id, run] : checks)
      out.push_back(diagnostic_check(id, "network", "fail", std::string("cannot list the engine's images: ") + e.what(),
                                     "see `berthctl logs --source dockerd -n 50`"));
    return out;
  }
  if (!image) {
    for (const auto& [id, run] : checks)
      out.push_back(diagnostic_check(id, "network", "skip",
                                     "no local busybox image to run the check in (the check never pulls one)",
                                     kImportHint));
    return out;
  }
  for (const auto& [id, run] : checks) {
    try {
      out.push_back(run(engine_socket, *image, limit));
    } catch (const std::exception& e) {
      out.push_back(diagnostic_check(id, "network", "fail", std::string("the check's container: ") + e.what(),
                                     "see `berthctl logs --source dockerd -n 50`"));
    }
  }
  return out;
}

}  // namespace berth::diagnostics
