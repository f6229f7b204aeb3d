#include "core/atomic_file.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <random>

#include "neurobolt/error.hpp"

namespace neurobolt::detail {

void check_writable_output(const std::filesystem::path& path, bool force) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !force) {
    throw IoError(fmt::format("'{}' already exists (use --force to overwrite)", path.string()));
  }
  auto parent = path.parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    throw IoError(fmt::format("'{}': folder '{}' does not exist", path.string(), parent.string()));
  }
}

AtomicOutput::AtomicOutput(std::filesystem::path path, bool force) : path_(std::move(path)) {
  check_writable_output(path_, force);
  std::random_device rd;
  temp_ = path_;
  temp_ += fmt::format(".tmp-{}-{:x}", ::getpid(), rd());
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

void AtomicOutput::commit() {
  std::error_code ec;
  std::filesystem::rename(temp_, path_, ec);
  if (ec) throw IoError(fmt::format("cannot move '{}' to '{}': {}", temp_.string(), path_.string(), ec.message()));
  committed_ = true;
}

}  // namespace neurobolt::detail
