// The followers of GET /v1/logs?follow=1: one thread each, polling the log
// directory (LogFollower) about four times a second and writing what was
// appended to its stream, until the client goes away or the daemon stops.
// Finished ones are joined when the next follower comes and on stop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "berth/api/stream_writer.hpp"
#include "berth/logs/log_reader.hpp"

namespace berth::daemon {

inline nlohmann::json log_line_json(const logs::LogLine& l) {
  return {{"time", logs::format_time(l.time_ms)}, {"source", l.source}, {"text", l.text}};
}

class LogStreams {
 public:
  ~LogStreams() { stop(); }

  void add(std::shared_ptr<api::StreamWriter> writer, logs::LogFollower follower) {
    std::list<Entry> finished;
    std::lock_guard lock(mutex_);
    if (stopping_) {
      writer->close();
      return;
    }
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto next = std::next(it);
      if (it->done->load()) finished.splice(finished.end(), entries_, it);
      it = next;
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    entries_.push_back({std::thread([this, writer, done, f = std::move(follower)]() mutable {
                          run(*writer, f);
                          writer->close();
                          done->store(true);
                        }),
                        done});
    for (auto& e : finished) e.thread.join();  // they are past run(): quick
  }

  void stop() {
    std::list<Entry> all;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      all.swap(entries_);
    }
    cv_.notify_all();
    for (auto& e : all) e.thread.join();
  }

 private:
  struct Entry {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  void run(api::StreamWriter& writer, logs::LogFollower& follower) {
    std::unique_lock lock(mutex_);
    while (!stopping_ && !writer.closed()) {
      lock.unlock();
      for (const auto& l : follower.poll())
        if (!writer.write_json(log_line_json(l))) break;
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stopping_; });
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::list<Entry> entries_;
};

}  // namespace berth::daemon
