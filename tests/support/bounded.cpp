#include "bounded.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <stdexcept>

namespace berth::test {

struct BoundedThread::Done {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
};

BoundedThread::BoundedThread(std::function<void()> body) : done_(std::make_shared<Done>()) {
  thread_ = std::thread([done = done_, body = std::move(body)] {
    body();
    std::lock_guard lock(done->mu);
    done->done = true;
    done->cv.notify_all();
  });
}

BoundedThread::~BoundedThread() {
  if (!thread_.joinable()) return;
  try {
    join_within(std::chrono::seconds(30), "a test thread at its end");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
  }
}

void BoundedThread::join_within(std::chrono::milliseconds limit, const std::string& what) {
  if (!thread_.joinable()) return;
  bool finished = false;
  {
    std::unique_lock lock(done_->mu);
    finished = done_->cv.wait_for(lock, limit, [this] { return done_->done; });
  }
  if (finished) {
    thread_.join();
    return;
  }
  thread_.detach();
  throw std::runtime_error(what + " did not finish within " + std::to_string(limit.count()) + " ms");
}

int wait_pid_within(pid_t pid, std::chrono::milliseconds limit, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) throw std::runtime_error(what + ": waitpid(" + std::to_string(pid) + ") failed");
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  throw std::runtime_error(what + " (pid " + std::to_string(pid) + ") did not end within " +
                           std::to_string(limit.count()) + " ms; killed");
}

bool eventually_within(const std::function<bool()>& done, std::chrono::milliseconds limit,
                       std::chrono::milliseconds step) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

}  // namespace berth::test
