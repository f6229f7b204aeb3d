#pragma once
// Atomic output: write to a temporary file beside the target, then rename over it, so a crash or
// an error never leaves a half-written output under the final name.
#include <filesystem>
#include <string_view>
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
  // Writes `bytes` as the whole content of the temporary file, checking every write: a full disk
  // or a file-size limit is an IoError naming the output and the system's reason.
  void write_all(std::string_view bytes);
  // Flushes the temporary file to disk (so that a full disk shows here, not after the rename) and
  // renames it to the final path. Throws IoError when either fails; the temporary file is removed.
  void commit();

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

// Writes `bytes` as the whole content of `path` (created or truncated; a symlink there is not
// followed), checking every write. IoError messages name `name` (the file the user asked for) and
// the system's reason (a full disk, the file-size limit).
void write_file(const std::filesystem::path& path, std::string_view bytes, const std::string& name);

// The system's reason for a failed write (strerror), saying so when it is the file-size limit.
std::string system_reason(int error);

// Throws IoError unless `path` can be written: it does not exist or `force` is set.
void check_writable_output(const std::filesystem::path& path, bool force);

}  // namespace neurobolt::detail
