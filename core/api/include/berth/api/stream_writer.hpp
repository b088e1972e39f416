// One streaming response (newline-delimited JSON), fed by producers on any thread.
//
// The server owns the connection; producers (the event bus) hold a shared_ptr and call
// write_line(). Lines are queued, bounded by bytes: a client that reads too slowly is dropped
// rather than blocking or bloating the producer. Once the stream is closed — by the client
// going away, by overflow, by close(), or by the server stopping — write_line() returns false
// and the on_close callback runs once, so the producer can unsubscribe and release the writer.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace berth::api {

class Router;
namespace detail {
template <class Protocol>
class Session;
}

class StreamWriter {
 public:
  explicit StreamWriter(std::size_t max_queued_bytes);
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  ~StreamWriter();

  // Queues one line ('\n' appended if missing). Never blocks on the client.
  // Returns false once the stream is closed (the line is dropped then).
  bool write_line(std::string line);
  // Bytes that are not UTF-8 (a container's log line, a path a client sent) are sent as
  // U+FFFD: a throw here would end the stream, or reach whoever published the line.
  bool write_json(const nlohmann::json& value) {
    return write_line(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // Ends the stream from the producer side: queued lines are still delivered, then the
  // response ends cleanly.
  void close();

  bool closed() const;
  // Why it closed: "closed by producer", "client disconnected", "client too slow", "server stopping".
  std::string close_reason() const;

  // Runs once when the stream closes for any reason (immediately if already closed). It may run
  // on a server thread: keep it short and do not call back into this writer's close().
  void on_close(std::function<void()> callback);

 private:
  template <class Protocol>
  friend class detail::Session;
  friend class Router;

  // Server side.
  struct Batch {
    enum class State { open, end, abort };
    std::string data;
    State state = State::open;
  };
  void attach(std::function<void()> wake);          // wake runs when there is data or the stream closed
  Batch take();                                     // drains the queue
  void close_with(std::string reason, bool clean);  // client gone / overflow (abort), stopping (clean)
  void detach();                                    // the connection is gone: no more wake-ups
  void finish(std::unique_lock<std::mutex>& lock, std::string reason, bool clean);

  mutable std::mutex mutex_;
  std::size_t max_queued_bytes_;
  std::string queue_;
  bool closed_ = false;
  bool clean_end_ = false;
  bool wake_pending_ = false;
  std::string reason_;
  std::function<void()> wake_;
  std::function<void()> on_close_;
};

}  // namespace berth::api
