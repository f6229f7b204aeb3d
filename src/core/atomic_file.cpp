#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <random>

#include "neurobolt/error.hpp"

namespace neurobolt::detail {

void check_writable_output(const std::filesystem::path& path, bool force) {
  std::error_code ec;
  // symlink_status: a symlink counts as existing even when its target does not (exists() follows it).
  if (std::filesystem::exists(std::filesystem::symlink_status(path, ec)) && !force) {
    throw IoError(fmt::format("'{}' already exists (use --force to overwrite)", path.string()));
  }
  auto parent = path.parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    throw IoError(fmt::format("'{}': folder '{}' does not exist", path.string(), parent.string()));
  }
}

AtomicOutput::AtomicOutput(std::filesystem::path path, bool force) : path_(std::move(path)) {
  check_writable_output(path_, force);
  // The temporary file is created here, exclusively and without following links, so that a file
  // or symlink planted at the temporary name is never written through; writers then reopen it.
  std::random_device rd;
  for (int attempt = 0;; ++attempt) {
    temp_ = path_;
    temp_ += fmt::format(".tmp-{}-{:x}", ::getpid(), rd());
    const int fd = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0) {
      ::close(fd);
      return;
    }
    if (errno != EEXIST || attempt == 16) {
      throw IoError(fmt::format("'{}': cannot create temporary file '{}': {}", path_.string(), temp_.string(),
                                std::strerror(errno)));
    }
  }
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

std::string system_reason(int error) {
  if (error == EFBIG) return fmt::format("{} (the file-size limit, ulimit -f, was reached)", std::strerror(error));
  return std::strerror(error);
}

void write_file(const std::filesystem::path& path, std::string_view bytes, const std::string& name) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd < 0) throw IoError(fmt::format("cannot write '{}': {}", name, system_reason(errno)));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      ::close(fd);
      throw IoError(fmt::format("cannot write '{}' ({} of {} bytes written): {}", name, done, bytes.size(),
                                system_reason(error)));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) throw IoError(fmt::format("cannot write '{}': {}", name, system_reason(errno)));
}

void AtomicOutput::write_all(std::string_view bytes) { write_file(temp_, bytes, path_.string()); }

void AtomicOutput::commit() {
  // fsync: on file systems that allocate space late, a full disk shows only now.
  const int fd = ::open(temp_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    throw IoError(fmt::format("cannot write '{}': {}", path_.string(), system_reason(error)));
  }
  ::close(fd);
  std::error_code ec;
  std::filesystem::rename(temp_, path_, ec);
  if (ec) throw IoError(fmt::format("cannot move '{}' to '{}': {}", temp_.string(), path_.string(), ec.message()));
  committed_ = true;
}

}  // namespace neurobolt::detail
