// berth-init's real agent (its AgentServer, session and supervisor, built from
// guest/init's sources into berth_init_for_tests) listening on a unix socket
// in this process, its event loop on a thread of its own. For tests of the
// host's side of the agent protocol that need a real peer: streams, events,
// many connections.
//
// berth-init's event loop is single-threaded: nothing here touches it from the
// test's thread once it runs.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

namespace berth::test {

class InProcessAgent {
 public:
  // Listens on `socket_path`; throws std::runtime_error when it cannot.
  explicit InProcessAgent(const std::filesystem::path& socket_path);
  ~InProcessAgent();  // stops the loop (bounded by its 1 s poll), closes every session
  InProcessAgent(const InProcessAgent&) = delete;
  InProcessAgent& operator=(const InProcessAgent&) = delete;

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
  std::atomic<bool> stop_{false};
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

// What a stream reaches inside: a unix socket that accepts and hangs up at
// once, like a dockerd closing an idle connection.
class HangUpListener {
 public:
  explicit HangUpListener(const std::filesystem::path& path);  // throws std::runtime_error
  ~HangUpListener();
  HangUpListener(const HangUpListener&) = delete;
  HangUpListener& operator=(const HangUpListener&) = delete;

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace berth::test
