// Reading PyTorch .pth files without Python: the zip archive (torch >= 1.6) and the legacy
// pickle stream. The pickles are run by checkpoint/pickle.cpp; this file finds the state dict in
// what they build and reads the storages of its tensors.
#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "checkpoint/pickle.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/pth.hpp"

namespace neurobolt {
namespace {

using pickle::Kind;
using pickle::StorageInfo;
using pickle::TensorInfo;
using pickle::Value;

// The whole bytes of a root storage, 64-byte aligned, as a uint8 tensor; kept until released.
class StorageSource {
 public:
  virtual ~StorageSource() = default;
  virtual torch::Tensor bytes(const StorageInfo& storage) = 0;
  void release(const std::string& key) { cache_.erase(key); }

 protected:
  std::map<std::string, torch::Tensor> cache_;
};

bool checked_mul(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
bool checked_add(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }

class ZipSource final : public StorageSource {
 public:
  explicit ZipSource(caffe2::serialize::PyTorchStreamReader& reader) : reader_(reader) {}

  torch::Tensor bytes(const StorageInfo& storage) override {
    auto cached = cache_.find(storage.key);
    if (cached != cache_.end()) return cached->second;
    std::string record = "data/" + storage.key;
    if (!reader_.hasRecord(record)) {
      throw FormatError(fmt::format("storage '{}' missing from the archive", record));
    }
    auto [data, size] = reader_.getRecord(record);
    int64_t expected = 0;
    if (!checked_mul(storage.numel, storage.element_size, expected) || static_cast<uint64_t>(expected) != size) {
      throw FormatError(fmt::format("storage '{}' has {} bytes, expected {} ({} elements of {})", record, size,
                                    expected, storage.numel, storage.type_name));
    }
    torch::Tensor t;
    if (size == 0) {
      t = torch::empty({0}, torch::kByte);
    } else {
      auto owner = std::make_shared<at::DataPtr>(std::move(data));
      t = torch::from_blob(owner->get(), {static_cast<int64_t>(size)}, [owner](void*) {}, torch::kByte);
    }
    cache_.emplace(storage.key, t);
    return t;
  }

 private:
  caffe2::serialize::PyTorchStreamReader& reader_;
};

class LegacySource final : public StorageSource {
 public:
  struct Location {
    std::size_t offset = 0;
    std::size_t size = 0;
    std::string error;  // non-empty: the storage could not be located, and why
  };

  LegacySource(const std::vector<uint8_t>& file, std::map<std::string, Location> where)
      : file_(file), where_(std::move(where)) {}

  torch::Tensor bytes(const StorageInfo& storage) override {
    auto cached = cache_.find(storage.key);
    if (cached != cache_.end()) return cached->second;
    auto it = where_.find(storage.key);
    if (it == where_.end()) {
      throw FormatError(fmt::format("storage '{}' is not in the file's list of storages", storage.key));
    }
    const Location& loc = it->second;
    if (!loc.error.empty()) throw FormatError(loc.error);
    // Copied so that the data is aligned for its dtype.
    torch::Tensor t = torch::empty({static_cast<int64_t>(loc.size)}, torch::kByte);
    if (loc.size > 0) std::memcpy(t.data_ptr<uint8_t>(), file_.data() + loc.offset, loc.size);
    cache_.emplace(storage.key, t);
    return t;
  }

 private:
  const std::vector<uint8_t>& file_;
  std::map<std::string, Location> where_;
};

std::string shape_text(const std::vector<int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ", ")); }

// A contiguous copy of the tensor a rebuild call described, after checking that its geometry
// fits inside its storage.
torch::Tensor materialize(const TensorInfo& t, StorageSource& source) {
  if (!t.invalid.empty()) throw FormatError(t.invalid);
  const StorageInfo& s = *t.storage->storage;
  if (!s.invalid.empty()) throw FormatError(s.invalid);
  if (!t.dtype) throw FormatError(fmt::format("unsupported tensor type {}", t.dtype_name));
  const c10::ScalarType dtype = *t.dtype;
  const auto element_size = static_cast<int64_t>(c10::elementSize(dtype));

  auto geometry = [&] {
    return fmt::format("size {}, stride {}, storage offset {}", shape_text(t.sizes), shape_text(t.strides), t.offset);
  };
  if (t.sizes.size() > 64) throw FormatError(fmt::format("{} dimensions are too many", t.sizes.size()));
  int64_t numel = 1;
  for (std::size_t d = 0; d < t.sizes.size(); ++d) {
    if (t.sizes[d] < 0 || t.strides[d] < 0 || !checked_mul(numel, t.sizes[d], numel)) {
      throw FormatError(fmt::format("invalid geometry ({})", geometry()));
    }
  }
  if (t.offset < 0) throw FormatError(fmt::format("invalid geometry ({})", geometry()));
  if (numel == 0) return torch::empty(t.sizes, torch::TensorOptions().dtype(dtype));

  int64_t last = t.offset;  // index of the last element the view touches
  for (std::size_t d = 0; d < t.sizes.size(); ++d) {
    int64_t extent = 0;
    if (!checked_mul(t.sizes[d] - 1, t.strides[d], extent) || !checked_add(last, extent, last)) {
      throw FormatError(fmt::format("invalid geometry ({})", geometry()));
    }
  }
  int64_t needed = 0;
  if (!checked_add(last, 1, needed) || !checked_mul(needed, element_size, needed)) {
    throw FormatError(fmt::format("invalid geometry ({})", geometry()));
  }

  torch::Tensor raw = source.bytes(s);
  int64_t begin = 0;
  int64_t available = raw.numel();
  if (s.is_view) {
    int64_t end = 0;
    if (!checked_mul(s.view_offset, s.element_size, begin) || !checked_mul(s.numel, s.element_size, available) ||
        !checked_add(begin, available, end) || end > raw.numel()) {
      throw FormatError(fmt::format("storage view of '{}' (offset {}, {} elements) exceeds its {} bytes", s.key,
                                    s.view_offset, s.numel, raw.numel()));
    }
  }
  if (needed > available) {
    throw FormatError(fmt::format("{} needs {} bytes of {}, but storage '{}' holds {}", geometry(), needed,
                                  c10::toString(dtype), s.key, available));
  }
  // Zero strides let a view repeat its storage; a copy far larger than the data is not plausible.
  constexpr int64_t max_broadcast_bytes = int64_t{1} << 30;
  int64_t result_bytes = 0;
  if (!checked_mul(numel, element_size, result_bytes) ||
      (result_bytes > available && result_bytes > max_broadcast_bytes)) {
    throw FormatError(fmt::format("{} repeats {} bytes of storage '{}' into more than {} bytes", geometry(),
                                  available, s.key, max_broadcast_bytes));
  }
  if (begin % element_size != 0) {  // keep the data aligned for its dtype
    raw = raw.slice(0, begin, begin + available).clone();
    begin = 0;
  }
  auto view = torch::from_blob(raw.data_ptr<uint8_t>() + begin, {available / element_size},
                               torch::TensorOptions().dtype(dtype));
  return view.as_strided(t.sizes, t.strides, t.offset).clone(at::MemoryFormat::Contiguous);
}

std::string describe_entries(const Value* dict) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : dict->entries) {
    if (parts.size() == 30) {
      parts.push_back(fmt::format("... {} more", dict->entries.size() - 30));
      break;
    }
    parts.push_back(fmt::format("{} ({})", pickle::key_text(k), pickle::type_name(v)));
  }
  return parts.empty() ? "none" : fmt::format("{}", fmt::join(parts, ", "));
}

bool is_named_tensor(const std::pair<Value*, Value*>& entry) {
  return entry.first->kind == Kind::str && entry.second->kind == Kind::tensor;
}

// Picks the state dict in the unpickled object, reads its tensors, lists what was skipped.
PthContents extract(const Value* root, StorageSource& source, const std::vector<std::string>& model_keys) {
  if (root->kind != Kind::dict) {
    throw FormatError(fmt::format("no state dict found: the file holds a {}, not a dict of tensors",
                                  pickle::type_name(root)));
  }
  auto all_tensors = [](const Value* d) {
    return !d->entries.empty() && std::all_of(d->entries.begin(), d->entries.end(), is_named_tensor);
  };
  auto any_tensor = [](const Value* d) {
    return std::any_of(d->entries.begin(), d->entries.end(), is_named_tensor);
  };

  PthContents out;
  const Value* chosen = nullptr;
  if (all_tensors(root)) {
    chosen = root;
  } else {
    for (const std::string& key : model_keys) {
      const Value* v = pickle::dict_get(root, key);
      if (v != nullptr && v->kind == Kind::dict && any_tensor(v)) {
        chosen = v;
        out.found_under = key;
        break;
      }
    }
    // A state dict with a few non-tensor entries of its own, at the top level.
    if (chosen == nullptr && any_tensor(root)) chosen = root;
  }
  if (chosen == nullptr) {
    throw FormatError(fmt::format(
        "no state dict found: the top-level dict holds no tensors and none of the keys [{}] holds a dict of "
        "tensors; top-level keys: {}",
        fmt::join(model_keys, ", "), describe_entries(root)));
  }

  if (chosen != root) {
    for (const auto& [k, v] : root->entries) {
      if (k->kind == Kind::str && k->s == out.found_under) continue;
      out.skipped.push_back(fmt::format("{} ({})", pickle::key_text(k), pickle::type_name(v)));
    }
  }
  const std::string prefix = out.found_under.empty() ? "" : out.found_under + ".";
  // Each storage is dropped after the last tensor that uses it, so that at most one is held.
  std::map<std::string, int> uses;
  for (const auto& entry : chosen->entries) {
    if (is_named_tensor(entry) && entry.second->tensor->storage != nullptr) {
      ++uses[entry.second->tensor->storage->storage->key];
    }
  }
  out.tensors.reserve(chosen->entries.size());
  for (const auto& entry : chosen->entries) {
    if (!is_named_tensor(entry)) {
      out.skipped.push_back(fmt::format("{}{} ({})", prefix, pickle::key_text(entry.first),
                                        pickle::type_name(entry.second)));
      continue;
    }
    const std::string& name = entry.first->s;
    const TensorInfo& info = *entry.second->tensor;
    try {
      out.tensors.emplace_back(name, materialize(info, source));
    } catch (Error& e) {
      e.add_context(fmt::format("tensor '{}{}'", prefix, name));
      throw;
    }
    if (info.storage != nullptr && --uses[info.storage->storage->key] == 0) source.release(info.storage->storage->key);
  }
  return out;
}

std::string first_line(const char* text) {
  std::string s(text);
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

std::string exception_text(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    return first_line(c10_error->what_without_backtrace());
  }
  return first_line(e.what());
}

PthContents read_zip(const std::string& path, const std::vector<std::string>& model_keys) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const std::exception& e) {
    throw FormatError(fmt::format("not a readable PyTorch zip archive ({})", exception_text(e)));
  }
  if (!reader->hasRecord("data.pkl")) {
    std::vector<std::string> names = reader->getAllRecords();
    if (names.size() > 10) {
      auto more = names.size() - 10;
      names.resize(10);
      names.push_back(fmt::format("... {} more", more));
    }
    throw FormatError(fmt::format("the zip archive has no data.pkl (records: {})", fmt::join(names, ", ")));
  }
  if (reader->hasRecord("byteorder")) {
    auto [order, order_size] = reader->getRecord("byteorder");
    std::string text(static_cast<const char*>(order.get()), order_size);
    if (text == "big") throw FormatError("the file was written on a big-endian machine, which is not supported");
  }
  auto [pkl, pkl_size] = reader->getRecord("data.pkl");
  pickle::Context context;
  std::size_t pos = 0;
  const Value* root = nullptr;
  try {
    root = pickle::unpickle(context, static_cast<const uint8_t*>(pkl.get()), pkl_size, pos);
  } catch (Error& e) {
    e.add_context("data.pkl");
    throw;
  }
  ZipSource source(*reader);
  return extract(root, source, model_keys);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size < 0) throw IoError(fmt::format("cannot read '{}'", path));
  std::vector<uint8_t> bytes(static_cast<std::size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    throw IoError(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
  }
  return bytes;
}

// The legacy stream: magic number, protocol version, system info, the object, the list of
// storage keys (pickles), then each storage in that order as an int64 element count + bytes.
PthContents read_legacy(const std::string& path, const std::vector<std::string>& model_keys) {
  const std::vector<uint8_t> file = read_file(path);
  pickle::Context context;
  std::size_t pos = 0;
  auto next_pickle = [&](const char* what) {
    try {
      return pickle::unpickle(context, file.data(), file.size(), pos);
    } catch (Error& e) {
      e.add_context(fmt::format("legacy format, {}", what));
      throw;
    }
  };

  // 0x1950a86a20f9469cfc6c, as the minimal little-endian two's complement bytes.
  static const std::string magic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
  const Value* number = next_pickle("magic number");
  if (number->kind != Kind::big_integer || number->s != magic) {
    throw FormatError(fmt::format("not a PyTorch file: it is a pickle of a {}, not torch's magic number",
                                  pickle::type_name(number)));
  }
  const Value* protocol = next_pickle("protocol version");
  if (protocol->kind != Kind::integer || protocol->i != 1001) {
    throw FormatError(fmt::format("legacy protocol version {} is not supported (expected 1001)",
                                  protocol->kind == Kind::integer ? std::to_string(protocol->i)
                                                                  : pickle::type_name(protocol)));
  }
  const Value* sys_info = next_pickle("system info");
  if (sys_info->kind == Kind::dict) {
    const Value* little = pickle::dict_get(sys_info, "little_endian");
    if (little != nullptr && little->kind == Kind::boolean && !little->flag) {
      throw FormatError("the file was written on a big-endian machine, which is not supported");
    }
  }
  const Value* root = next_pickle("main pickle");
  const Value* keys = next_pickle("storage keys");
  if (keys->kind != Kind::list) {
    throw FormatError(fmt::format("legacy format: the storage key list is a {}", pickle::type_name(keys)));
  }

  // Walk the storages; once one cannot be read, none after it can be located.
  std::map<std::string, LegacySource::Location> where;
  std::string broken;
  for (const Value* key_value : keys->items) {
    if (key_value->kind != Kind::str) {
      throw FormatError(fmt::format("legacy format: a storage key is a {}", pickle::type_name(key_value)));
    }
    const std::string& key = key_value->s;
    LegacySource::Location& loc = where[key];
    if (!broken.empty()) {
      loc.error = fmt::format("storage '{}' cannot be located: {}", key, broken);
      continue;
    }
    auto it = context.storages.find(key);
    const std::size_t left = file.size() - pos;
    int64_t count = 0;
    int64_t nbytes = 0;
    if (it == context.storages.end()) {
      loc.error = fmt::format("storage '{}' is listed but never referenced", key);
    } else if (it->second->storage->element_size == 0) {
      loc.error = fmt::format("storage '{}' has the unsupported type {}", key, it->second->storage->type_name);
    } else if (left < 8) {
      loc.error = fmt::format("truncated: storage '{}' should start at offset {}, but the file has {} bytes", key,
                              pos, file.size());
    } else {
      uint64_t raw = 0;
      for (int k = 0; k < 8; ++k) raw |= static_cast<uint64_t>(file[pos + k]) << (8 * k);
      count = static_cast<int64_t>(raw);
      const StorageInfo& info = *it->second->storage;
      if (count < 0 || !checked_mul(count, info.element_size, nbytes)) {
        loc.error = fmt::format("storage '{}' at offset {} has an invalid element count {}", key, pos, count);
      } else if (static_cast<uint64_t>(nbytes) > left - 8) {
        loc.error = fmt::format("truncated: storage '{}' needs {} bytes at offset {}, the file has only {} left",
                                key, nbytes, pos + 8, left - 8);
      } else if (count != info.numel) {
        loc.error = fmt::format("storage '{}' holds {} elements, the pickle declared {}", key, count, info.numel);
      }
    }
    if (!loc.error.empty()) {
      broken = fmt::format("storage '{}' before it could not be read", key);
      continue;
    }
    loc.offset = pos + 8;
    loc.size = static_cast<std::size_t>(nbytes);
    pos = loc.offset + loc.size;
  }
  LegacySource source(file, std::move(where));
  return extract(root, source, model_keys);
}

std::string printable(const std::vector<char>& head) {
  std::string hex;
  std::string text;
  for (char c : head) {
    hex += fmt::format("{}{:02x}", hex.empty() ? "" : " ", static_cast<uint8_t>(c));
    text += (c >= 0x20 && c < 0x7f) ? c : '.';
  }
  return fmt::format("{} ('{}')", hex, text);
}

}  // namespace

PthContents read_pth(const std::string& path, const std::vector<std::string>& model_keys) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    throw IoError(fmt::format("cannot open '{}': {}", path, ec ? ec.message() : "no such file"));
  }
  if (std::filesystem::is_directory(status)) throw IoError(fmt::format("cannot read '{}': it is a directory", path));

  std::vector<char> head(512);
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
  }

  try {
    if (head.empty()) throw FormatError("the file is empty");
    if (head.size() >= 4 && head[0] == 'P' && head[1] == 'K' &&
        ((head[2] == '\x03' && head[3] == '\x04') || (head[2] == '\x05' && head[3] == '\x06'))) {
      return read_zip(path, model_keys);
    }
    if (static_cast<uint8_t>(head[0]) == 0x80) return read_legacy(path, model_keys);
    if (head.size() >= 262 && std::memcmp(head.data() + 257, "ustar", 5) == 0) {
      throw FormatError("the tar-based format of torch < 0.4 is not supported");
    }
    head.resize(std::min<std::size_t>(head.size(), 8));
    throw FormatError(
        fmt::format("not a PyTorch .pth file (neither a zip archive nor a pickle stream): it starts with {}",
                    printable(head)));
  } catch (Error& e) {
    e.add_context(fmt::format("reading '{}'", path));
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    // LibTorch's zip reader and allocator report with c10::Error (and the odd std:: exception).
    FormatError error(exception_text(e));
    error.add_context(fmt::format("reading '{}'", path));
    throw error;
  }
}

}  // namespace neurobolt
