// Runs the pack's services: ordered start with health checks, restart with exponential
// back-off, per-service logs, and an orderly reverse-order stop.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "config.hpp"
#include "event_loop.hpp"
#include "log_sink.hpp"
#include "notify_socket.hpp"

namespace berth::init {

class Supervisor {
 public:
  using EventSink = std::function<void(const nlohmann::json& event)>;

  Supervisor(EventLoop& loop, std::string log_dir, EventSink events);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  void start(std::vector<ServiceSpec> services);
  // True when `pid` was one of ours (a service or an exec health check).
  bool on_child_exit(pid_t pid, int status);
  // Stops services last to first (SIGTERM, SIGKILL after the grace period), then calls done.
  void stop_all(std::function<void()> done);

  // A service started on request (the pack's "start":"on_request" ones, e.g. Kubernetes):
  // run and kept running until stop_service. "" or why not (unknown name, shutting down).
  std::string start_service(const std::string& name);
  // SIGTERM now, SIGKILL after grace; no restart. "" or why not; *state = "stopping"|"stopped".
  std::string stop_service(const std::string& name, int grace_s, std::string* state);

  nlohmann::json health() const;
  bool all_healthy() const;
  // True once every service of the ordered start has been healthy, or has passed its start
  // timeout, at least once: the start-up is over (whatever happens to them later).
  bool ordered_start_over() const;
  LogSink* log_of(const std::string& name);

  static constexpr double kBackoffStart = 0.5;
  static constexpr double kBackoffMax = 10.0;
  static constexpr int kHealthyResetSeconds = 30;
  static constexpr int kStopGraceSeconds = 10;
  // Where the services' NOTIFY_SOCKETs are (<dir>/<service>), under the environment's own /run.
  static constexpr const char* kNotifyDir = "/run/berth-init/notify";

 private:
  enum class State { pending, starting, running, unhealthy, backoff, stopping, stopped };
  struct Service {
    ServiceSpec spec;
    State state = State::pending;
    pid_t pid = -1;
    int restarts = 0;
    double backoff_s = kBackoffStart;
    Clock::time_point healthy_since{};
    double first_healthy_boot_s = 0;  // kernel uptime when it first became healthy (0: not yet)
    Clock::time_point start_deadline{};
    bool healthy = false;
    bool ordered_wait_done = false;
    bool start_over = false;  // healthy once, or past its start timeout (ordered_start_over)
    bool requested = false;   // on_request: between start_service and stop_service
    uint64_t health_timer = 0;
    uint64_t restart_timer = 0;
    uint64_t order_timer = 0;
    uint64_t kill_timer = 0;
    pid_t check_pid = -1;
    Clock::time_point check_deadline{};
    std::unique_ptr<LogSink> log;
    std::unique_ptr<NotifySocket> notify;  // the manifest's "notify": its NOTIFY_SOCKET, kept across restarts
    std::set<int> out_fds;                 // read ends of output pipes still open (older runs may linger)
  };

  static const char* state_name(State s);
  void launch(std::size_t i);
  void open_notify(std::size_t i);
  void on_notify(std::size_t i);
  void watch_output(std::size_t i, int fd);
  void schedule_health(std::size_t i, Clock::duration after);
  void poll_health(std::size_t i);
  void health_result(std::size_t i, bool ok, const std::string& detail);
  void order_advance(std::size_t i);
  void start_next();
  void stop_next();
  void emit(const char* type, const Service& s, const std::string& status = {});
  void cancel_timers(Service& s);
  bool wanted(const Service& s) const;
  Service* find(const std::string& name);

  EventLoop& loop_;
  std::string log_dir_;
  EventSink events_;
  std::vector<Service> services_;
  std::size_t next_to_start_ = 0;
  bool stopping_ = false;
  std::size_t stop_index_ = 0;  // services still to stop: [0, stop_index_)
  std::function<void()> stop_done_;
};

}  // namespace berth::init
