// Waits with deadlines, for tests: a hang must fail the test in seconds with a
// message that says what hung, not sit until ctest's timeout kills the process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

namespace berth::test {

// A std::thread that can be joined with a deadline. If the body has not
// finished in time, join_within() detaches it and throws std::runtime_error
// naming `what`; the test fails there and its cleanup runs. An exception
// escaping the body ends the program, as with std::thread.
class BoundedThread {
 public:
  explicit BoundedThread(std::function<void()> body);
  ~BoundedThread();  // joins within 30 s, else detaches (a destructor cannot fail the test)
  BoundedThread(const BoundedThread&) = delete;
  BoundedThread& operator=(const BoundedThread&) = delete;
  BoundedThread(BoundedThread&&) = default;
  BoundedThread& operator=(BoundedThread&&) = default;

  void join_within(std::chrono::milliseconds limit, const std::string& what);
  bool joinable() const { return thread_.joinable(); }

 private:
  struct Done;
  std::shared_ptr<Done> done_;
  std::thread thread_;
};

// waitpid() with a deadline: the child's wait status; past the deadline the
// child is killed (SIGKILL, by this pid, which is ours), reaped, and
// std::runtime_error names `what`.
int wait_pid_within(pid_t pid, std::chrono::milliseconds limit, const std::string& what);

// future.get() with a deadline. A future of std::async cannot be abandoned (its
// destructor waits for the task), so past the deadline this says what hung and
// ends the test process at once: a failure in seconds instead of ctest's timeout.
template <class T>
T get_within(std::future<T>& future, std::chrono::milliseconds limit, const char* what) {
  if (future.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: %s did not finish within %lld ms\n", what, static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(3);
  }
  return future.get();
}

// Polls `done` every `step` until it returns true or `limit` passes; false on timeout.
bool eventually_within(const std::function<bool()>& done, std::chrono::milliseconds limit,
                       std::chrono::milliseconds step = std::chrono::milliseconds(50));

}  // namespace berth::test
