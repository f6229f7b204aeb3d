#pragma once
// A background reader over a prepared dataset: batches are read from the HDF5 file on one thread
// while the model computes on the others, a bounded number of batches ahead.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "neurobolt/dataset.hpp"

namespace neurobolt::train {

// The HDF5 library is not thread-safe: every use of it while a BatchLoader runs (checkpoint
// writing) must hold this lock, which the loader holds around each read.
std::mutex& hdf5_mutex();

class BatchLoader {
 public:
  // Reads `batches` (lists of window indices) in order, keeping at most `ahead` ready.
  BatchLoader(const DatasetReader& reader, std::vector<std::vector<int64_t>> batches, int64_t ahead);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in order (blocks until read); rethrows a reading error. Call at most
  // batches.size() times.
  Batch next();
  double wait_seconds() const { return wait_seconds_; }  // time next() spent blocked

 private:
  void run();
  const DatasetReader& reader_;
  std::vector<std::vector<int64_t>> batches_;
  std::size_t ahead_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::size_t taken_ = 0;
  double wait_seconds_ = 0;
  std::thread thread_;
};

}  // namespace neurobolt::train
