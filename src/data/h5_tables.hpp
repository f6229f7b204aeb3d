#pragma once
// What the dataset files need beyond io/h5.hpp: a float32 dataset that grows by whole chunks of
// rows (windows are appended run by run), string datasets and float64 attributes.
#include <cstdint>
#include <string>
#include <vector>

#include "io/h5.hpp"

namespace neurobolt::data {

// A float32 dataset [rows, row_shape...] with an unlimited first axis, chunked by `chunk_rows`
// rows, shuffle + deflate. Rows are buffered until a chunk is full, so every chunk is compressed
// exactly once; finish() writes the last partial chunk.
class RowAppender {
 public:
  RowAppender(h5::File& file, const std::string& name, std::vector<int64_t> row_shape, int64_t chunk_rows, int gzip);
  // Space for one row in the buffer: fill it, then call commit_row().
  float* next_row();
  void commit_row();
  void finish();
  int64_t rows() const { return written_ + buffered_; }

 private:
  void flush();
  h5::File* file_;
  std::string name_;
  std::vector<int64_t> row_shape_;
  int64_t row_size_ = 1;
  int64_t chunk_rows_ = 1;
  h5::Handle dataset_;
  std::vector<float> buffer_;
  int64_t buffered_ = 0;
  int64_t written_ = 0;
};

void write_strings(h5::File& file, const std::string& name, const std::vector<std::string>& values);
std::vector<std::string> read_strings(const h5::File& file, const std::string& name);

void set_double_attribute(h5::File& file, const std::string& object_path, const std::string& name, double value);
double double_attribute(const h5::File& file, const std::string& object_path, const std::string& name);

// A dataset handle with a chunk cache of `cache_bytes` (HDF5's default is 1 MiB, less than one
// chunk of windows).
h5::Handle open_cached(const h5::File& file, const std::string& name, std::size_t cache_bytes);
// Reads rows [first, first + count) along the first axis of an open dataset, as float32.
void read_rows_f32(const h5::Handle& dataset, const std::string& what, int64_t first, int64_t count, float* out);

}  // namespace neurobolt::data
