#include "berth/api/stream_writer.hpp"

#include <utility>

namespace berth::api {

StreamWriter::StreamWriter(std::size_t max_queued_bytes) : max_queued_bytes_(max_queued_bytes) {}

StreamWriter::~StreamWriter() = default;

bool StreamWriter::write_line(std::string line) {
  if (line.empty() || line.back() != '\n') line.push_back('\n');
  std::unique_lock lock(mutex_);
  if (closed_) return false;
  if (queue_.size() + line.size() > max_queued_bytes_) {
    finish(lock, "client too slow", false);
    return false;
  }
  queue_ += line;
  if (wake_pending_ || !wake_) return true;
  wake_pending_ = true;
  auto wake = wake_;
  lock.unlock();
  wake();
  return true;
}

void StreamWriter::close() {
  std::unique_lock lock(mutex_);
  if (closed_) return;
  finish(lock, "closed by producer", true);
}

bool StreamWriter::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::string StreamWriter::close_reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

void StreamWriter::on_close(std::function<void()> callback) {
  std::unique_lock lock(mutex_);
  if (!closed_) {
    on_close_ = std::move(callback);
    return;
  }
  lock.unlock();
  if (callback) callback();
}

void StreamWriter::attach(std::function<void()> wake) {
  std::unique_lock lock(mutex_);
  wake_ = std::move(wake);
  if ((queue_.empty() && !closed_) || wake_pending_) return;
  wake_pending_ = true;
  auto w = wake_;
  lock.unlock();
  w();
}

StreamWriter::Batch StreamWriter::take() {
  std::lock_guard lock(mutex_);
  wake_pending_ = false;
  Batch batch;
  batch.data.swap(queue_);
  if (closed_) batch.state = clean_end_ ? Batch::State::end : Batch::State::abort;
  return batch;
}

void StreamWriter::close_with(std::string reason, bool clean) {
  std::unique_lock lock(mutex_);
  if (closed_) {
    // Already ending cleanly but the connection is now gone (or the server stops): nothing to deliver.
    return;
  }
  finish(lock, std::move(reason), clean);
}

void StreamWriter::detach() {
  std::lock_guard lock(mutex_);
  wake_ = nullptr;
  queue_.clear();
}

void StreamWriter::finish(std::unique_lock<std::mutex>& lock, std::string reason, bool clean) {
  closed_ = true;
  clean_end_ = clean;
  reason_ = std::move(reason);
  if (!clean) queue_.clear();
  auto on_close = std::move(on_close_);
  on_close_ = nullptr;
  std::function<void()> wake;
  if (!wake_pending_ && wake_) {
    wake_pending_ = true;
    wake = wake_;
  }
  lock.unlock();
  if (on_close) on_close();
  if (wake) wake();
}

}  // namespace berth::api
