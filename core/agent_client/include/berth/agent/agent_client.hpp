// Host side of the agent protocol (<berth/contracts/agent_protocol.hpp>): one multiplexed connection to
// berth-init. Thread-safe: any thread may call any method; calls run concurrently on their
// own channels. A background reader thread dispatches frames; event callbacks run on a
// separate dispatcher thread, so they may call back into the client.
#pragma once

#include <atomic>
#include <berth/contracts/agent_protocol.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace berth::agent {

// Connection failures, timeouts, and errors the agent answered with (message from the agent).
struct AgentError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ExecResult {
  int exit_code = -1;
  std::string std_out;  // ("stdout"/"stderr" are macros in <cstdio>)
  std::string std_err;
};

class AgentClient {
 public:
  using EventCallback = std::function<void(const nlohmann::json& event)>;

  // Connects, retrying until `timeout` while the socket does not exist or refuses (berth-init
  // may still be starting). Throws AgentError.
  static std::unique_ptr<AgentClient> connect_unix(const std::string& path, std::chrono::milliseconds timeout);
  // Takes ownership of an already connected stream: a socket (e.g. a QEMU chardev socket)
  // or a tty-like device in raw mode.
  static std::unique_ptr<AgentClient> adopt_fd(int fd);

  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // Timeout for each request/answer operation (default 30 s). exec has its own.
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

  nlohmann::json hello();  // checks the protocol version; throws on mismatch
  // hello, sent again on a fresh channel every `every` until one is answered;
  // AgentError once `deadline` passes. The first thing to say on a connection
  // to a virtio-serial port (the hyperv VM's): while no host is connected,
  // berth-init reads EOF there, closes the port and reopens it 200 ms later,
  // and what reaches the guest in between is discarded by its kernel, so the
  // first bytes of a new connection can vanish without a trace. Once a hello
  // is answered the guest holds the port open with us connected, and nothing
  // later is lost. On a unix socket the first hello is simply answered.
  nlohmann::json greet(std::chrono::steady_clock::time_point deadline,
                       std::chrono::milliseconds every = std::chrono::milliseconds(1000));
  // {"services":[...],"engine_healthy":bool,"uptime_s":..,...}; timeout 0: the client's own
  // (30 s). The self-check asks with a short one: a frozen berth-init must not hold it.
  nlohmann::json health(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // Runs argv inside; `stdin_data` (if any) is sent then closed. timeout 0 = wait forever;
  // on timeout the process is killed and AgentError thrown.
  ExecResult exec(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
                  std::optional<std::string> stdin_data = std::nullopt, const std::string& cwd = "/",
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  void write_file(const std::string& path, std::string_view content, unsigned mode = 0644);
  std::string read_file(const std::string& path, uint64_t max_bytes = kDefaultReadFileMax);
  std::string log_tail(const std::string& service, int lines);  // "init" = berth-init's own log
  // Events arrive on the dispatcher thread until unsubscribe or destruction. Returns an id.
  uint64_t subscribe_events(EventCallback callback);
  void unsubscribe_events(uint64_t id);
  // A bidirectional byte stream to {"tcp":PORT} or {"unix":"/path"} inside. Returns one end
  // of a socketpair (the caller owns and closes it); shutdown(fd, SHUT_WR) is a half-close.
  int open_stream(const nlohmann::json& target);
  // Asks berth-init to stop its services and exit. Returns once the request is accepted.
  void shutdown();
  // An on-request service of the pack: {"state":"starting"} / {"state":"stopping"|"stopped"}.
  nlohmann::json service_start(const std::string& name);
  nlohmann::json service_stop(const std::string& name, int grace_s);

  // Stream pump threads this client holds (running, or finished and not yet joined).
  // A pump ends with its stream and leaves nothing behind, so this is the number of
  // streams whose local end is still being read.
  std::size_t pump_threads() const;

  bool connected() const { return !broken_.load(); }
  std::string broken_reason() const;

  // The reader thread's two steps, callable without it on a client made by
  // adopt_fd_without_reader (the fuzz target tests/fuzz/agent_frames_host drives them
  // synchronously; each input would otherwise cost two thread starts and a poll loop).
  // Such a client has no event dispatcher thread either: events are queued, never delivered.
  // consume: decodes bytes read from the connection and dispatches every whole frame;
  // false with `why` set on a protocol error. end_input: the connection is gone, every
  // call in flight fails with `why`.
  static std::unique_ptr<AgentClient> adopt_fd_without_reader(int fd);
  bool consume(const char* data, std::size_t n, std::string& why);
  void end_input(const std::string& why) { fail_all(why); }

 private:
  struct Channel;
  AgentClient(int fd, bool start_reader);

  uint32_t register_channel(const std::shared_ptr<Channel>& c);
  std::shared_ptr<Channel> open_channel(const nlohmann::json& request, int kind, uint32_t& id);
  void send_frame(uint32_t channel, FrameType type, std::string_view payload);
  void send_data(uint32_t channel, std::string_view bytes);
  void wait_done(Channel& c, std::chrono::milliseconds timeout, uint32_t id);
  // timeout 0: timeout_.
  nlohmann::json simple_call(const nlohmann::json& request,
                             std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  void finish_channel(uint32_t id);
  void reader_loop();
  void dispatch(Frame& f);
  void dispatcher_loop();
  void fail_all(const std::string& why);
  void pump_loop(std::shared_ptr<Channel> c, uint32_t id);

  int fd_;
  int wake_[2] = {-1, -1};  // written by the destructor to stop the reader
  std::chrono::milliseconds timeout_{30000};
  std::atomic<bool> broken_{false};
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;  // channels_, broken_reason_, events_
  std::string broken_reason_;
  std::map<uint32_t, std::shared_ptr<Channel>> channels_;
  std::atomic<uint32_t> next_id_{1};
  std::mutex send_mu_;
  FrameDecoder decoder_;  // the reader's (consume's) alone
  std::thread reader_;

  std::mutex ev_mu_;
  std::condition_variable ev_cv_;
  std::deque<std::pair<uint64_t, nlohmann::json>> ev_queue_;
  std::map<uint64_t, EventCallback> ev_callbacks_;
  std::thread dispatcher_;

  // Stream pumps run detached (a finished one must not stay behind as an unjoined
  // thread for the connection's lifetime: one per engine connection on hyperv);
  // the destructor waits for the count to reach zero instead of joining them.
  mutable std::mutex pumps_mu_;
  std::condition_variable pumps_cv_;
  std::size_t pumps_running_ = 0;
};

}  // namespace berth::agent
