#include "train/loader.hpp"

#include <chrono>

namespace neurobolt::train {

std::mutex& hdf5_mutex() {
  static std::mutex mutex;
  return mutex;
}

BatchLoader::BatchLoader(const DatasetReader& reader, std::vector<std::vector<int64_t>> batches, int64_t ahead)
    : reader_(reader), batches_(std::move(batches)), ahead_(static_cast<std::size_t>(std::max<int64_t>(ahead, 1))) {
  thread_ = std::thread([this] { run(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  space_.notify_all();
  thread_.join();
}

void BatchLoader::run() {
  for (const auto& indices : batches_) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      space_.wait(lock, [this] { return stop_ || queue_.size() < ahead_; });
      if (stop_) return;
    }
    Batch batch;
    try {
      std::lock_guard<std::mutex> h5_lock(hdf5_mutex());
      batch = reader_.read_batch(indices);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      ready_.notify_all();
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(batch));
    ready_.notify_all();
  }
}

Batch BatchLoader::next() {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [this] { return !queue_.empty() || error_; });
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (queue_.empty() && error_) std::rethrow_exception(error_);
  Batch batch = std::move(queue_.front());
  queue_.pop_front();
  ++taken_;
  space_.notify_all();
  return batch;
}

}  // namespace neurobolt::train
