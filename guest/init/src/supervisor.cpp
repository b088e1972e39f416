#include "supervisor.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <berth/contracts/init_config.hpp>
#include <fstream>
#include <string>

#include "health_check.hpp"
#include "init_log.hpp"
#include "process.hpp"
#include "system_setup.hpp"

namespace berth::init {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// The manifest's env plus /etc/berth/service-env/<name>.env (KEY=VALUE lines, '#' comments),
// read at every start: a feature (the proxy's HTTP_PROXY for dockerd) changes a service's
// environment by writing that file and restarting the service. The file's values win.
std::map<std::string, std::string> service_env(const std::string& name, std::map<std::string, std::string> env) {
  std::ifstream in(std::string(contracts::kServiceEnvDir) + "/" + name + ".env");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}
}  // namespace

Supervisor::Supervisor(EventLoop& loop, std::string log_dir, EventSink events)
    : loop_(loop), log_dir_(std::move(log_dir)), events_(std::move(events)) {}

Supervisor::~Supervisor() {
  for (auto& s : services_) {
    for (int fd : s.out_fds) {
      loop_.unwatch(fd);
      close(fd);
    }
    if (s.notify) loop_.unwatch(s.notify->fd());
  }
}

const char* Supervisor::state_name(State s) {
  switch (s) {
    case State::pending:
      return "pending";
    case State::starting:
      return "starting";
    case State::running:
      return "running";
    case State::unhealthy:
      return "unhealthy";
    case State::backoff:
      return "backoff";
    case State::stopping:
      return "stopping";
    case State::stopped:
      return "stopped";
  }
  return "unknown";
}

void Supervisor::emit(const char* type, const Service& s, const std::string& status) {
  json e = {{"type", type}, {"service", s.spec.name}, {"pid", s.pid}, {"restarts", s.restarts}, {"time_ms", now_ms()}};
  if (!status.empty()) e["status"] = status;
  if (events_) events_(e);
}

void Supervisor::cancel_timers(Service& s) {
  for (uint64_t* t : {&s.health_timer, &s.restart_timer, &s.order_timer, &s.kill_timer}) {
    if (*t) loop_.cancel_timer(*t);
    *t = 0;
  }
}

void Supervisor::start(std::vector<ServiceSpec> services) {
  for (auto& spec : services) {
    Service s;
    s.log = std::make_unique<LogSink>(log_dir_.empty() ? "" : log_dir_ + "/" + spec.name + ".log");
    s.spec = std::move(spec);
    services_.push_back(std::move(s));
  }
  start_next();
}

bool Supervisor::wanted(const Service& s) const {
  return s.spec.start == contracts::StartPolicy::always || s.requested;
}

Supervisor::Service* Supervisor::find(const std::string& name) {
  for (auto& s : services_)
    if (s.spec.name == name) return &s;
  return nullptr;
}

std::string Supervisor::start_service(const std::string& name) {
  Service* s = find(name);
  if (s == nullptr) return "no service \"" + name + "\" in the pack";
  if (stopping_) return "berth-init is shutting down";
  if (s->spec.start != contracts::StartPolicy::on_request) return "service " + name + " always runs";
  s->requested = true;
  // Running already, or still stopping (on_child_exit launches it again, since it is requested).
  if (s->pid > 0) return "";
  cancel_timers(*s);
  s->backoff_s = kBackoffStart;
  log_info("starting service " + name + " on request");
  launch(static_cast<std::size_t>(s - services_.data()));
  return "";
}

std::string Supervisor::stop_service(const std::string& name, int grace_s, std::string* state) {
  Service* s = find(name);
  if (s == nullptr) return "no service \"" + name + "\" in the pack";
  if (s->spec.start != contracts::StartPolicy::on_request) return "service " + name + " always runs";
  s->requested = false;
  for (uint64_t* t : {&s->health_timer, &s->restart_timer, &s->order_timer}) {
    if (*t) loop_.cancel_timer(*t);
    *t = 0;
  }
  if (s->check_pid > 0) kill(s->check_pid, SIGKILL);
  s->healthy = false;
  if (s->pid <= 0) {
    s->state = State::stopped;
    *state = "stopped";
    return "";
  }
  *state = "stopping";
  if (s->state == State::stopping) return "";
  log_info("stopping service " + name + " on request (pid " + std::to_string(s->pid) + ")");
  s->state = State::stopping;
  kill(s->pid, SIGTERM);
  const std::size_t i = static_cast<std::size_t>(s - services_.data());
  s->kill_timer = loop_.add_timer(std::chrono::seconds(std::max(grace_s, 0)), [this, i] {
    Service& svc = services_[i];
    svc.kill_timer = 0;
    if (svc.pid > 0) {
      log_error("service " + svc.spec.name + " did not stop in time; killing it");
      kill(svc.pid, SIGKILL);
    }
  });
  return "";
}

void Supervisor::start_next() {
  // On-request services are not part of the ordered start.
  while (!stopping_ && next_to_start_ < services_.size() &&
         services_[next_to_start_].spec.start == contracts::StartPolicy::on_request) {
    Service& skipped = services_[next_to_start_++];
    skipped.ordered_wait_done = true;
    if (!skipped.requested && skipped.pid < 0) skipped.state = State::stopped;
  }
  if (stopping_ || next_to_start_ >= services_.size()) return;
  std::size_t i = next_to_start_;
  Service& s = services_[i];
  log_info("starting service " + s.spec.name);
  launch(i);
  // The next service waits for this one's health, but not beyond its start timeout.
  s.order_timer = loop_.add_timer(std::chrono::seconds(s.spec.start_timeout_s), [this, i] {
    Service& svc = services_[i];
    svc.order_timer = 0;
    svc.start_over = true;
    log_error("service " + svc.spec.name + " not healthy after " + std::to_string(svc.spec.start_timeout_s) + " s" +
              (svc.ordered_wait_done ? "" : "; starting the next service anyway"));
    if (svc.state == State::starting) svc.state = State::unhealthy;
    emit("service.unhealthy", svc, "start timeout");
    order_advance(i);
  });
  // A next service that waits for this one by itself starts beside it.
  std::size_t next = i + 1;
  while (next < services_.size() && services_[next].spec.start == contracts::StartPolicy::on_request) ++next;
  if (next < services_.size() && services_[next].spec.start_with_previous) {
    log_info("service " + services_[next].spec.name + " starts with " + s.spec.name + ", not after its health");
    order_advance(i);
  }
}

void Supervisor::order_advance(std::size_t i) {
  Service& s = services_[i];
  if (s.ordered_wait_done) return;
  s.ordered_wait_done = true;
  next_to_start_ = i + 1;
  start_next();
}

void Supervisor::open_notify(std::size_t i) {
  Service& s = services_[i];
  mkdir_p(kNotifyDir, 0700);
  std::string error;
  s.notify = NotifySocket::open(std::string(kNotifyDir) + "/" + s.spec.name, &error);
  if (!s.notify) {
    log_error("service " + s.spec.name + " gets no NOTIFY_SOCKET (" + error +
              "); its health check alone says when it is ready");
    return;
  }
  loop_.watch(s.notify->fd(), POLLIN, [this, i](short) { on_notify(i); });
}

// READY=1 is the service's own word that it serves: healthy at once, without waiting for
// the next health poll (the polls go on for a service that never says it).
void Supervisor::on_notify(std::size_t i) {
  Service& s = services_[i];
  if (!s.notify->drain_ready()) return;
  if (s.state != State::starting && s.state != State::unhealthy) return;
  log_info("service " + s.spec.name + " sent READY=1");
  health_result(i, true, "READY=1");
}

void Supervisor::launch(std::size_t i) {
  Service& s = services_[i];
  int fds[2];
  if (!make_pipe(fds)) {
    log_error("pipe for " + s.spec.name + " failed");
    fds[0] = fds[1] = -1;
  }
  auto env = service_env(s.spec.name, s.spec.env);
  if (s.spec.notify && !s.notify) open_notify(i);
  if (s.notify) env["NOTIFY_SOCKET"] = s.notify->path();
  SpawnSpec spec{s.spec.argv, std::move(env), s.spec.cwd, -1, fds[1], fds[1], true};
  std::string error;
  s.pid = spawn(spec, error);
  if (fds[1] >= 0) close(fds[1]);
  if (fds[0] >= 0) watch_output(i, fds[0]);
  if (s.pid < 0) {
    log_error("cannot start service " + s.spec.name + ": " + error);
    s.state = State::backoff;
    s.restart_timer = loop_.add_timer(seconds(s.backoff_s), [this, i] {
      services_[i].restart_timer = 0;
      services_[i].restarts++;
      launch(i);
    });
    s.backoff_s = std::min(s.backoff_s * 2, kBackoffMax);
    return;
  }
  s.state = State::starting;
  s.healthy = false;
  s.start_deadline = Clock::now() + std::chrono::seconds(s.spec.start_timeout_s);
  log_info("service " + s.spec.name + " started, pid " + std::to_string(s.pid));
  emit(s.restarts == 0 ? "service.started" : "service.restarted", s);
  schedule_health(i, s.spec.health.type == HealthType::none ? 0ms : 50ms);
}

void Supervisor::watch_output(std::size_t i, int fd) {
  set_nonblocking(fd);
  services_[i].out_fds.insert(fd);
  loop_.watch(fd, POLLIN, [this, i, fd](short) {
    char buf[16384];
    Service& s = services_[i];
    for (int round = 0; round < 16; ++round) {  // bounded, so one chatty service cannot starve the rest
      ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        s.log->append(std::string_view(buf, static_cast<std::size_t>(n)));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      loop_.unwatch(fd);
      close(fd);
      s.out_fds.erase(fd);
      return;
    }
  });
}

void Supervisor::schedule_health(std::size_t i, Clock::duration after) {
  Service& s = services_[i];
  if (s.health_timer) loop_.cancel_timer(s.health_timer);
  s.health_timer = loop_.add_timer(after, [this, i] {
    services_[i].health_timer = 0;
    poll_health(i);
  });
}

void Supervisor::poll_health(std::size_t i) {
  Service& s = services_[i];
  if (s.state != State::starting && s.state != State::unhealthy) return;
  const HealthSpec& h = s.spec.health;
  if (h.type == HealthType::exec) {
    if (s.check_pid > 0) {
      if (Clock::now() > s.check_deadline) kill(s.check_pid, SIGKILL);
    } else {
      std::string error;
      s.check_pid = spawn(SpawnSpec{h.argv, s.spec.env, "/", -1, -1, -1, true}, error);
      s.check_deadline = Clock::now() + 5s;
      if (s.check_pid < 0) log_error("health check of " + s.spec.name + ": " + error);
    }
    schedule_health(i, 200ms);
    return;
  }
  std::string detail;
  health_result(i, check_socket_health(h, detail), detail);
}

void Supervisor::health_result(std::size_t i, bool ok, const std::string& detail) {
  Service& s = services_[i];
  if (s.state != State::starting && s.state != State::unhealthy) return;
  if (ok) {
    s.state = State::running;
    s.healthy = true;
    s.healthy_since = Clock::now();
    if (s.first_healthy_boot_s == 0) s.first_healthy_boot_s = boot_uptime_s();
    s.start_over = true;
    log_info("service " + s.spec.name + " is healthy");
    emit("service.healthy", s);
    if (s.order_timer) loop_.cancel_timer(s.order_timer);
    s.order_timer = 0;
    order_advance(i);
    return;
  }
  (void)detail;
  if (s.spec.health.type != HealthType::exec) schedule_health(i, s.state == State::starting ? 100ms : 1s);
}

bool Supervisor::on_child_exit(pid_t pid, int status) {
  for (std::size_t i = 0; i < services_.size(); ++i) {
    Service& s = services_[i];
    if (pid == s.check_pid) {
      s.check_pid = -1;
      health_result(i, WIFEXITED(status) && WEXITSTATUS(status) == 0, describe_wait_status(status));
      return true;
    }
    if (pid != s.pid) continue;
    const std::string how = describe_wait_status(status);
    s.pid = -1;
    s.healthy = false;
    if (s.health_timer) loop_.cancel_timer(s.health_timer);
    s.health_timer = 0;
    if (s.state == State::stopping) {
      if (s.kill_timer) loop_.cancel_timer(s.kill_timer);
      s.kill_timer = 0;
      s.state = State::stopped;
      log_info("service " + s.spec.name + " stopped (" + how + ")");
      emit("service.stopped", s, how);
      if (stopping_ && i + 1 == stop_index_) {
        stop_index_ = i;
        stop_next();
      } else if (!stopping_ && s.requested) {  // started again while it was stopping
        launch(i);
      }
      return true;
    }
    if (stopping_) {  // died on its own while others are being stopped: do not restart
      s.state = State::stopped;
      emit("service.died", s, how);
      return true;
    }
    // A service that stayed healthy long enough starts over with the shortest delay.
    if (s.state == State::running && Clock::now() - s.healthy_since >= std::chrono::seconds(kHealthyResetSeconds))
      s.backoff_s = kBackoffStart;
    const double delay = s.backoff_s;
    s.backoff_s = std::min(s.backoff_s * 2, kBackoffMax);
    s.state = State::backoff;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", delay);
    log_error("service " + s.spec.name + " died (" + how + "); restarting in " + buf + " s");
    emit("service.died", s, how);
    s.restart_timer = loop_.add_timer(seconds(delay), [this, i] {
      Service& svc = services_[i];
      svc.restart_timer = 0;
      if (stopping_) return;
      svc.restarts++;
      launch(i);
    });
    return true;
  }
  return false;
}

void Supervisor::stop_all(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  stop_done_ = std::move(done);
  for (auto& s : services_) {
    if (s.restart_timer || s.order_timer || s.health_timer) {
      for (uint64_t* t : {&s.health_timer, &s.restart_timer, &s.order_timer}) {
        if (*t) loop_.cancel_timer(*t);
        *t = 0;
      }
    }
    if (s.check_pid > 0) kill(s.check_pid, SIGKILL);
    if (s.pid < 0 && s.state != State::stopped) s.state = State::stopped;
  }
  stop_index_ = services_.size();
  stop_next();
}

void Supervisor::stop_next() {
  while (stop_index_ > 0) {
    std::size_t i = stop_index_ - 1;
    Service& s = services_[i];
    if (s.pid > 0) {
      log_info("stopping service " + s.spec.name + " (pid " + std::to_string(s.pid) + ")");
      s.state = State::stopping;
      kill(s.pid, SIGTERM);
      s.kill_timer = loop_.add_timer(std::chrono::seconds(kStopGraceSeconds), [this, i] {
        Service& svc = services_[i];
        svc.kill_timer = 0;
        if (svc.pid > 0) {
          log_error("service " + svc.spec.name + " did not stop within " + std::to_string(kStopGraceSeconds) +
                    " s; killing it");
          kill(svc.pid, SIGKILL);
        }
      });
      return;  // continue when it is reaped
    }
    s.state = State::stopped;
    --stop_index_;
  }
  if (stop_done_) {
    auto done = std::move(stop_done_);
    stop_done_ = nullptr;
    done();
  }
}

json Supervisor::health() const {
  json list = json::array();
  for (const auto& s : services_) {
    list.push_back({{"name", s.spec.name},
                    {"state", state_name(s.state)},
                    {"pid", s.pid},
                    {"restarts", s.restarts},
                    {"healthy", s.healthy},
                    {"start", s.spec.start == contracts::StartPolicy::on_request ? "on_request" : "always"},
                    {"first_healthy_boot_s", s.first_healthy_boot_s}});
  }
  return list;
}

bool Supervisor::all_healthy() const {
  if (services_.empty()) return false;
  // A service that is not wanted (on request, not requested) does not count against the engine.
  return std::all_of(services_.begin(), services_.end(), [this](const Service& s) { return s.healthy || !wanted(s); });
}

bool Supervisor::ordered_start_over() const {
  return std::all_of(services_.begin(), services_.end(), [](const Service& s) {
    return s.start_over || s.spec.start == contracts::StartPolicy::on_request;
  });
}

LogSink* Supervisor::log_of(const std::string& name) {
  if (name == "init") return &init_log_sink();
  for (auto& s : services_)
    if (s.spec.name == name) return s.log.get();
  return nullptr;
}

}  // namespace berth::init
