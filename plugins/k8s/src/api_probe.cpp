#include "api_probe.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <memory>
#include <sstream>

namespace berth::k8s {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// The exchange as a chain of asynchronous steps on one io_context, run for at most the
// deadline: beast's timeouts apply to asynchronous operations only.
struct Exchange : std::enable_shared_from_this<Exchange> {
  Exchange(asio::io_context& io, asio::ssl::context& tls, int to_port, std::string to_target)
      : stream(io, tls), port(to_port), target(std::move(to_target)) {}

  void run() {
    auto self = shared_from_this();
    beast::get_lowest_layer(stream).async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
        [self](beast::error_code ec) {
          if (ec) return self->fail("connect", ec);
          self->stream.async_handshake(asio::ssl::stream_base::client, [self](beast::error_code hec) {
            if (hec) return self->fail("TLS handshake", hec);
            self->req = {http::verb::get, self->target, 11};
            self->req.set(http::field::host, "127.0.0.1:" + std::to_string(self->port));
            self->req.set(http::field::user_agent, "berth-k8s");
            http::async_write(self->stream, self->req, [self](beast::error_code wec, std::size_t) {
              if (wec) return self->fail("request", wec);
              http::async_read(self->stream, self->buffer, self->res, [self](beast::error_code rec, std::size_t) {
                if (rec) return self->fail("response", rec);
                self->result = {static_cast<int>(self->res.result_int()), self->res.body()};
              });
            });
          });
        });
  }
  void fail(const char* step, const beast::error_code& ec) { result = {0, std::string(step) + ": " + ec.message()}; }

  beast::ssl_stream<beast::tcp_stream> stream;
  int port;
  std::string target;
  http::request<http::empty_body> req;
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  ProbeResult result{0, "no answer in time"};
};

}  // namespace

ProbeResult https_get(int port, const std::string& target, const std::string& ca_pem, const std::string& cert_pem,
                      const std::string& key_pem, std::chrono::milliseconds deadline) {
  try {
    asio::ssl::context tls(asio::ssl::context::tls_client);
    tls.add_certificate_authority(asio::buffer(ca_pem));
    tls.use_certificate_chain(asio::buffer(cert_pem));
    tls.use_private_key(asio::buffer(key_pem), asio::ssl::context::pem);
    tls.set_verify_mode(asio::ssl::verify_peer);
    tls.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
    asio::io_context io;
    auto exchange = std::make_shared<Exchange>(io, tls, port, target);
    exchange->run();
    io.run_for(deadline);
    return exchange->result;
  } catch (const std::exception& e) {
    return {0, e.what()};
  }
}

std::vector<std::string> failing_checks(const std::string& verbose_body) {
  std::vector<std::string> out;
  std::istringstream lines(verbose_body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("[-]", 0) != 0) continue;
    const auto end = line.find(' ', 3);
    out.push_back(line.substr(3, end == std::string::npos ? std::string::npos : end - 3));
  }
  return out;
}

}  // namespace berth::k8s
