#pragma once
// What the file-based fuzz targets share: the readers take paths, so each input is written to
// files in a folder of this process (in /dev/shm when there, to keep the disk out of the loop),
// and inputs that hold several files are split at a separator line.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace neurobolt::fuzz {

// Between the parts of an input that holds several files (header, markers, data, ...).
inline constexpr std::string_view kSeparator = "\n--neurobolt-fuzz-part--\n";

inline const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm"
                                                                                      : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("neurobolt-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(work_dir(), ignored);
    });
    return d;
  }();
  return dir;
}

// Writes `bytes` to <work dir>/<name> (replacing it) and returns the path.
inline std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = (work_dir() / name).string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();  // the harness itself is broken, not the reader
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) __builtin_trap();
  std::fclose(f);
  return path;
}

inline void remove_files() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(work_dir(), ec)) std::filesystem::remove(entry.path(), ec);
}

// The input cut at every separator: at most `max_parts` parts (the last takes the rest).
inline std::vector<std::string_view> split(std::string_view bytes, std::size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const std::size_t at = bytes.find(kSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(bytes.substr(0, at));
    bytes.remove_prefix(at + kSeparator.size());
  }
  parts.push_back(bytes);
  return parts;
}

// With NEUROBOLT_FUZZ_VERBOSE set, the errors the readers raise go to stderr: to see how far a
// seed gets (run the target on it alone).
inline void report(const std::exception& e) {
  static const bool verbose = std::getenv("NEUROBOLT_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "neurobolt error: %s\n", e.what());
}

// Reads every value so that ASan sees a buffer shorter than the recording claims.
template <typename T>
void touch(const std::vector<T>& values) {
  volatile T sink{};
  for (const T& v : values) sink = v;
  (void)sink;
}

}  // namespace neurobolt::fuzz
