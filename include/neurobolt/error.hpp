#pragma once
// The error family of libneurobolt. Library code throws; the CLI maps each kind to an exit code.
// Messages name the file, the field, and what was expected versus found.
#include <exception>
#include <string>
#include <vector>

namespace neurobolt {

// Each kind is also the CLI's exit status for it (documented in the README).
enum class ErrorKind : int {
  internal = 1,  // a bug or an unexpected state
  usage = 2,     // bad command-line arguments
  io = 3,        // a file is missing, unreadable or unwritable
  format = 4,    // a file exists but its content is corrupt or not what was expected
  config = 5,    // invalid configuration, or a config/checkpoint/data mismatch
  device = 6,    // the requested compute device is unavailable
  interrupted = 130,  // stopped by the user (SIGINT), after saving what can be resumed
};

const char* to_string(ErrorKind kind) noexcept;

class Error : public std::exception {
 public:
  Error(ErrorKind kind, std::string message);

  ErrorKind kind() const noexcept { return kind_; }
  int exit_code() const noexcept { return static_cast<int>(kind_); }
  // The innermost message, without context.
  const std::string& message() const noexcept { return message_; }
  // Context added by outer layers, outermost first.
  const std::vector<std::string>& context() const noexcept { return context_; }
  // Adds an outer layer of context, e.g. "loading checkpoint 'a.h5'"; what() becomes
  // "loading checkpoint 'a.h5': <message>".
  Error& add_context(std::string context);
  const char* what() const noexcept override { return full_.c_str(); }

 private:
  void rebuild();
  ErrorKind kind_;
  std::string message_;
  std::vector<std::string> context_;
  std::string full_;
};

struct IoError : Error {
  explicit IoError(std::string message) : Error(ErrorKind::io, std::move(message)) {}
};
struct FormatError : Error {
  explicit FormatError(std::string message) : Error(ErrorKind::format, std::move(message)) {}
};
struct ConfigError : Error {
  explicit ConfigError(std::string message) : Error(ErrorKind::config, std::move(message)) {}
};
struct DeviceError : Error {
  explicit DeviceError(std::string message) : Error(ErrorKind::device, std::move(message)) {}
};
struct UsageError : Error {
  explicit UsageError(std::string message) : Error(ErrorKind::usage, std::move(message)) {}
};

}  // namespace neurobolt
