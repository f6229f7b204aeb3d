// Reading-speed benchmark of the EEG readers.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "core/plural.hpp"
#include "io/brainvision_parser.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/bench.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"

namespace neurobolt {
namespace {

// Bytes of the file and of the companions its reader opens.
int64_t bytes_read(const std::string& path) {
  namespace fs = std::filesystem;
  int64_t total = io::regular_file_size(path);
  const fs::path p(path);
  const std::string extension = io::lowercase(p.extension().string());
  auto add = [&](const fs::path& companion) {
    std::error_code ec;
    if (fs::is_regular_file(companion, ec)) total += static_cast<int64_t>(fs::file_size(companion, ec));
  };
  if (extension == ".vhdr") {
    const auto header = io::brainvision::parse_header(io::read_file_bytes(path), path);
    add(p.parent_path() / header.data_file);
    if (!header.marker_file.empty()) add(p.parent_path() / header.marker_file);
  } else if (extension == ".set") {
    add(fs::path(p).replace_extension(".fdt"));
  }
  return total;
}

}  // namespace

ReadBenchResult bench_read_recording(const std::string& path, int repeats, int warmup) {
  if (repeats < 1) throw UsageError(fmt::format("read benchmark: repeats must be at least 1, found {}", repeats));
  if (warmup < 0) throw UsageError(fmt::format("read benchmark: warm-up reads must be 0 or more, found {}", warmup));
  ReadBenchResult result;
  result.path = path;
  result.repeats = repeats;
  result.warmup = warmup;
  result.file_bytes = bytes_read(path);
  for (int i = 0; i < warmup; ++i) read_recording(path);
  double total = 0;
  result.best_s = 0;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const Recording r = read_recording(path);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i == 0) {
      result.format = r.format;
      result.channels = r.num_channels();
      result.samples = r.num_samples;
    }
    total += seconds;
    result.best_s = i == 0 ? seconds : std::min(result.best_s, seconds);
  }
  result.mean_s = total / repeats;
  return result;
}

std::string format_read_bench(const ReadBenchResult& r) {
  return fmt::format(
      "file      {} ({}, {:.1f} MB)\n"
      "recording {} x {} samples\n"
      "read      best {:.4f} s, mean {:.4f} s over {} {} ({})\n"
      "speed     {:.1f} MB/s, {:.1f} Msamples/s\n",
      r.path, r.format, r.file_bytes / 1e6, count_of(r.channels, "channel"), r.samples, r.best_s, r.mean_s, r.repeats, r.repeats == 1 ? "read" : "reads",
      r.warmup > 0 ? fmt::format("after {} untimed {}: page cache warm", r.warmup, r.warmup == 1 ? "read" : "reads")
                   : std::string("no untimed read first: the first may find a cold page cache"),
      r.mb_per_s(),
      r.samples_per_s() / 1e6);
}

}  // namespace neurobolt
