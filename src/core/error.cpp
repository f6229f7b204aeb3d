#include "neurobolt/error.hpp"

namespace neurobolt {

const char* to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::internal: return "internal error";
    case ErrorKind::usage: return "usage error";
    case ErrorKind::io: return "I/O error";
    case ErrorKind::format: return "format error";
    case ErrorKind::config: return "configuration error";
    case ErrorKind::device: return "device error";
    case ErrorKind::interrupted: return "interrupted";
  }
  return "error";
}

Error::Error(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {
  rebuild();
}

Error& Error::add_context(std::string context) {
  context_.insert(context_.begin(), std::move(context));
  rebuild();
  return *this;
}

void Error::rebuild() {
  full_.clear();
  for (const auto& c : context_) {
    full_ += c;
    full_ += ": ";
  }
  full_ += message_;
}

}  // namespace neurobolt
