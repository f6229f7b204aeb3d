#pragma once
// Atomic output: write to a temporary file beside the target, then rename over it, so a crash or
// an error never leaves a half-written output under the final name.
#include <filesystem>
#include <string>

namespace neurobolt::detail {

class AtomicOutput {
 public:
  // Throws IoError if `path` exists and `force` is false ("use --force"), or if its folder is
  // missing.
  AtomicOutput(std::filesystem::path path, bool force);
  ~AtomicOutput();  // removes the temporary file unless commit() succeeded
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& path() const { return path_; }
  // Renames the temporary file to the final path.
  void commit();

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

// Throws IoError unless `path` can be written: it does not exist or `force` is set.
void check_writable_output(const std::filesystem::path& path, bool force);

}  // namespace neurobolt::detail
