// Reading PyTorch .pth files without LibTorch: the zip archive (torch >= 1.6, through libzip) and
// the legacy pickle stream. The pickles are run by checkpoint/pickle.cpp; this file finds the
// state dict in what they build and copies the elements of its tensors out of their storages.
#include "checkpoint/pth_archive.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zip.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "neurobolt/error.hpp"

namespace neurobolt::pth {
namespace {

using pickle::Kind;
using pickle::StorageInfo;
using pickle::TensorInfo;
using pickle::Value;
using Bytes = std::shared_ptr<std::vector<uint8_t>>;

bool checked_mul(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
bool checked_add(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }

// The whole bytes of a root storage; kept until released.
class StorageSource {
 public:
  virtual ~StorageSource() = default;
  Bytes bytes(const StorageInfo& storage) {
    auto cached = cache_.find(storage.key);
    if (cached != cache_.end()) return cached->second;
    Bytes b = load(storage);
    cache_.emplace(storage.key, b);
    return b;
  }
  void release(const std::string& key) { cache_.erase(key); }

 protected:
  virtual Bytes load(const StorageInfo& storage) = 0;

 private:
  std::map<std::string, Bytes> cache_;
};

// ---------------------------------------------------------------------------------------------
// The zip archive, through libzip. Torch puts every record in one folder named after the file
// ("archive/data.pkl", "archive/data/0", ...); records are named here without that folder.

std::string zip_error_text(zip_error_t* error) {
  std::string text = zip_error_strerror(error);
  return text;
}

class ZipArchive {
 public:
  // Takes ownership of `source` (also when it throws).
  ZipArchive(zip_source_t* source, uint64_t archive_bytes) : archive_bytes_(archive_bytes) {
    zip_error_t error;
    zip_error_init(&error);
    archive_ = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (archive_ == nullptr) {
      zip_source_free(source);
      std::string text = zip_error_text(&error);
      zip_error_fini(&error);
      throw FormatError(fmt::format("not a readable PyTorch zip archive ({})", text));
    }
    zip_error_fini(&error);
    // A constructor that throws runs no destructor: the archive is discarded here then.
    try {
      list_records();
    } catch (...) {
      zip_discard(archive_);
      throw;
    }
  }
  ~ZipArchive() {
    if (archive_ != nullptr) zip_discard(archive_);
  }
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  bool has(const std::string& record) const { return records_.count(record) != 0; }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, index] : records_) out.push_back(name);
    return out;
  }

  // The record's bytes. With `expected` >= 0 its size must be exactly that (checked before
  // reading). Declared sizes are bounded by the archive's size (stored records) or by what
  // deflate can expand it to (compressed ones) before anything is allocated.
  Bytes read(const std::string& record, int64_t expected, const std::string& what) {
    const zip_uint64_t index = records_.at(record);
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(archive_, index, 0, &st) != 0 || (st.valid & ZIP_STAT_SIZE) == 0 ||
        (st.valid & ZIP_STAT_COMP_SIZE) == 0) {
      throw FormatError(fmt::format("{}: its zip entry cannot be read ({})", what, zip_strerror(archive_)));
    }
    if (expected >= 0 && st.size != static_cast<uint64_t>(expected)) {
      throw FormatError(fmt::format("{} has {} bytes, expected {}", what, st.size, expected));
    }
    const bool stored = (st.valid & ZIP_STAT_COMP_METHOD) != 0 && st.comp_method == ZIP_CM_STORE;
    // Deflate expands at most ~1032:1.
    const uint64_t limit = stored ? archive_bytes_ : std::min<uint64_t>(st.comp_size, archive_bytes_) * 1032 + 1024;
    if (st.size > limit) {
      throw FormatError(fmt::format("{}: the zip entry declares {} bytes, more than its {} compressed bytes in a "
                                    "{}-byte file can hold",
                                    what, st.size, st.comp_size, archive_bytes_));
    }
    auto out = std::make_shared<std::vector<uint8_t>>(static_cast<std::size_t>(st.size));
    zip_file_t* file = zip_fopen_index(archive_, index, 0);
    if (file == nullptr) {
      throw FormatError(fmt::format("{}: cannot open its zip entry ({})", what, zip_strerror(archive_)));
    }
    uint64_t done = 0;
    std::string failure;
    while (done < st.size) {
      const zip_int64_t n = zip_fread(file, out->data() + done, st.size - done);
      if (n < 0) {
        failure = zip_file_strerror(file);
        break;
      }
      if (n == 0) {
        failure = fmt::format("the entry ends after {} of its {} bytes", done, st.size);
        break;
      }
      done += static_cast<uint64_t>(n);
    }
    if (failure.empty()) {  // libzip checks the CRC once the entry has been read to its end
      uint8_t extra = 0;
      if (zip_fread(file, &extra, 1) < 0) failure = zip_file_strerror(file);
    }
    zip_fclose(file);
    if (!failure.empty()) throw FormatError(fmt::format("{}: {}", what, failure));
    return out;
  }

 private:
  void list_records() {
    const zip_int64_t count = zip_get_num_entries(archive_, 0);
    if (count <= 0) throw FormatError("not a readable PyTorch zip archive (it holds no records)");
    std::string folder;
    for (zip_int64_t i = 0; i < count; ++i) {
      const char* raw = zip_get_name(archive_, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
      if (raw == nullptr) continue;
      const std::string name(raw);
      if (i == 0) {
        const auto slash = name.find('/');
        if (slash == std::string::npos || slash == 0) {
          throw FormatError(fmt::format(
              "not a PyTorch zip archive: its first record '{}' is not inside a folder as torch.save writes",
              name.substr(0, 100)));
        }
        folder = name.substr(0, slash + 1);
      }
      if (name.size() > folder.size() && name.compare(0, folder.size(), folder) == 0) {
        records_.emplace(name.substr(folder.size()), static_cast<zip_uint64_t>(i));  // the first of duplicates
      }
    }
  }

  zip_t* archive_ = nullptr;
  uint64_t archive_bytes_;
  std::map<std::string, zip_uint64_t> records_;
};

class ZipSource final : public StorageSource {
 public:
  explicit ZipSource(ZipArchive& archive) : archive_(archive) {}

 protected:
  Bytes load(const StorageInfo& storage) override {
    const std::string record = "data/" + storage.key;
    if (!archive_.has(record)) throw FormatError(fmt::format("storage '{}' missing from the archive", record));
    int64_t expected = 0;
    if (!checked_mul(storage.numel, storage.element_size, expected)) {
      throw FormatError(fmt::format("storage '{}' declares {} elements of {}, more bytes than int64 holds", record,
                                    storage.numel, storage.type_name));
    }
    try {
      return archive_.read(record, expected, fmt::format("storage '{}'", record));
    } catch (FormatError& e) {
      e.add_context(fmt::format("{} elements of {}", storage.numel, storage.type_name));
      throw;
    }
  }

 private:
  ZipArchive& archive_;
};

class LegacySource final : public StorageSource {
 public:
  struct Location {
    std::size_t offset = 0;
    std::size_t size = 0;
    std::string error;  // non-empty: the storage could not be located, and why
  };

  LegacySource(const uint8_t* file, std::map<std::string, Location> where) : file_(file), where_(std::move(where)) {}

 protected:
  Bytes load(const StorageInfo& storage) override {
    auto it = where_.find(storage.key);
    if (it == where_.end()) {
      throw FormatError(fmt::format("storage '{}' is not in the file's list of storages", storage.key));
    }
    const Location& loc = it->second;
    if (!loc.error.empty()) throw FormatError(loc.error);
    // A copy, so that the data is aligned for its dtype (its size was checked against the file).
    return std::make_shared<std::vector<uint8_t>>(file_ + loc.offset, file_ + loc.offset + loc.size);
  }

 private:
  const uint8_t* file_;
  std::map<std::string, Location> where_;
};

std::string shape_text(const std::vector<int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ", ")); }

// Copies the elements of a strided view, row-major, into `out`.
void copy_strided(const uint8_t* base, int64_t element_size, const std::vector<int64_t>& sizes,
                  const std::vector<int64_t>& strides, int64_t offset, int64_t numel, uint8_t* out) {
  const std::size_t dims = sizes.size();
  bool contiguous = true;
  int64_t expected = 1;
  for (std::size_t d = dims; d-- > 0;) {
    if (sizes[d] != 1 && strides[d] != expected) contiguous = false;
    expected *= sizes[d];
  }
  if (contiguous) {
    std::memcpy(out, base + offset * element_size, static_cast<std::size_t>(numel * element_size));
    return;
  }
  // Rows of the last dimension, walked with an index over the others.
  const int64_t row = sizes[dims - 1];
  const int64_t row_stride = strides[dims - 1];
  std::vector<int64_t> index(dims - 1, 0);
  for (int64_t done = 0; done < numel; done += row) {
    int64_t at = offset;
    for (std::size_t d = 0; d + 1 < dims; ++d) at += index[d] * strides[d];
    if (row_stride == 1) {
      std::memcpy(out, base + at * element_size, static_cast<std::size_t>(row * element_size));
      out += row * element_size;
    } else {
      for (int64_t k = 0; k < row; ++k, out += element_size) {
        std::memcpy(out, base + (at + k * row_stride) * element_size, static_cast<std::size_t>(element_size));
      }
    }
    for (std::size_t d = dims - 1; d-- > 0;) {
      if (++index[d] < sizes[d]) break;
      index[d] = 0;
    }
  }
}

// A contiguous copy of the tensor a rebuild call described, after checking that its geometry
// fits inside its storage.
RawTensor materialize(const std::string& name, const TensorInfo& t, StorageSource& source) {
  if (!t.invalid.empty()) throw FormatError(t.invalid);
  const StorageInfo& s = *t.storage->storage;
  if (!s.invalid.empty()) throw FormatError(s.invalid);
  if (!t.dtype) throw FormatError(fmt::format("unsupported tensor type {}", t.dtype_name));
  RawTensor out;
  out.name = name;
  out.dtype = *t.dtype;
  out.sizes = t.sizes;
  const int64_t element_size = pickle::element_size(out.dtype);

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
  if (numel == 0) {
    out.data = std::make_shared<std::vector<uint8_t>>();
    return out;
  }

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

  const Bytes raw = source.bytes(s);
  const auto raw_size = static_cast<int64_t>(raw->size());
  int64_t begin = 0;
  int64_t available = raw_size;
  if (s.is_view) {
    int64_t end = 0;
    if (!checked_mul(s.view_offset, s.element_size, begin) || !checked_mul(s.numel, s.element_size, available) ||
        !checked_add(begin, available, end) || end > raw_size) {
      throw FormatError(fmt::format("storage view of '{}' (offset {}, {} elements) exceeds its {} bytes", s.key,
                                    s.view_offset, s.numel, raw_size));
    }
  }
  if (needed > available) {
    throw FormatError(fmt::format("{} needs {} bytes of {}, but storage '{}' holds {}", geometry(), needed,
                                  pickle::dtype_name(out.dtype), s.key, available));
  }
  // Zero strides let a view repeat its storage; a copy far larger than the data is not plausible.
  constexpr int64_t max_broadcast_bytes = int64_t{1} << 30;
  int64_t result_bytes = 0;
  if (!checked_mul(numel, element_size, result_bytes) ||
      (result_bytes > available && result_bytes > max_broadcast_bytes)) {
    throw FormatError(fmt::format("{} repeats {} bytes of storage '{}' into more than {} bytes", geometry(),
                                  available, s.key, max_broadcast_bytes));
  }
  out.data = std::make_shared<std::vector<uint8_t>>(static_cast<std::size_t>(result_bytes));
  std::vector<int64_t> sizes = t.sizes;
  std::vector<int64_t> strides = t.strides;
  if (sizes.empty()) {  // a 0-d tensor: one element
    sizes.push_back(1);
    strides.push_back(1);
  }
  copy_strided(raw->data() + begin, element_size, sizes, strides, t.offset, numel, out.data->data());
  return out;
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
RawContents extract(const Value* root, StorageSource& source, const std::vector<std::string>& model_keys) {
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

  RawContents out;
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
      out.tensors.push_back(materialize(name, info, source));
    } catch (Error& e) {
      e.add_context(fmt::format("tensor '{}{}'", prefix, name));
      throw;
    }
    if (info.storage != nullptr && --uses[info.storage->storage->key] == 0) source.release(info.storage->storage->key);
  }
  return out;
}

RawContents read_zip(zip_source_t* zip_source, uint64_t archive_bytes, const std::vector<std::string>& model_keys) {
  ZipArchive archive(zip_source, archive_bytes);
  if (!archive.has("data.pkl")) {
    std::vector<std::string> names = archive.names();
    if (names.size() > 10) {
      auto more = names.size() - 10;
      names.resize(10);
      names.push_back(fmt::format("... {} more", more));
    }
    throw FormatError(fmt::format("the zip archive has no data.pkl (records: {})", fmt::join(names, ", ")));
  }
  if (archive.has("byteorder")) {
    const Bytes order = archive.read("byteorder", -1, "record 'byteorder'");
    if (std::string(order->begin(), order->end()) == "big") {
      throw FormatError("the file was written on a big-endian machine, which is not supported");
    }
  }
  const Bytes pkl = archive.read("data.pkl", -1, "record 'data.pkl'");
  pickle::Context context;
  std::size_t pos = 0;
  const Value* root = nullptr;
  try {
    root = pickle::unpickle(context, pkl->data(), pkl->size(), pos);
  } catch (Error& e) {
    e.add_context("data.pkl");
    throw;
  }
  ZipSource source(archive);
  return extract(root, source, model_keys);
}

// The legacy stream: magic number, protocol version, system info, the object, the list of
// storage keys (pickles), then each storage in that order as an int64 element count + bytes.
RawContents read_legacy(const uint8_t* file, std::size_t file_size, const std::vector<std::string>& model_keys) {
  pickle::Context context;
  std::size_t pos = 0;
  auto next_pickle = [&](const char* what) {
    try {
      return pickle::unpickle(context, file, file_size, pos);
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
    const std::size_t left = file_size - pos;
    int64_t count = 0;
    int64_t nbytes = 0;
    if (it == context.storages.end()) {
      loc.error = fmt::format("storage '{}' is listed but never referenced", key);
    } else if (it->second->storage->element_size == 0) {
      loc.error = fmt::format("storage '{}' has the unsupported type {}", key, it->second->storage->type_name);
    } else if (left < 8) {
      loc.error = fmt::format("truncated: storage '{}' should start at offset {}, but the file has {} bytes", key,
                              pos, file_size);
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

std::string printable_head(const uint8_t* data, std::size_t size) {
  std::string hex;
  std::string text;
  for (std::size_t k = 0; k < size; ++k) {
    const uint8_t c = data[k];
    hex += fmt::format("{}{:02x}", hex.empty() ? "" : " ", c);
    text += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
  }
  return fmt::format("{} ('{}')", hex, text);
}

enum class Layout { zip, legacy };

// Which format the first bytes say; FormatError when neither.
Layout detect(const uint8_t* head, std::size_t size) {
  if (size == 0) throw FormatError("the file is empty");
  if (size >= 4 && head[0] == 'P' && head[1] == 'K' &&
      ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6))) {
    return Layout::zip;
  }
  if (head[0] == 0x80) return Layout::legacy;
  if (size >= 262 && std::memcmp(head + 257, "ustar", 5) == 0) {
    throw FormatError("the tar-based format of torch < 0.4 is not supported");
  }
  throw FormatError(fmt::format("not a PyTorch .pth file (neither a zip archive nor a pickle stream): it starts with {}",
                                printable_head(head, std::min<std::size_t>(size, 8))));
}

std::vector<uint8_t> whole_file(const std::string& path, uint64_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  std::vector<uint8_t> bytes(static_cast<std::size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    throw IoError(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
  }
  return bytes;
}

}  // namespace

RawContents read_file(const std::string& path, const std::vector<std::string>& model_keys) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    throw IoError(fmt::format("cannot open '{}': {}", path, ec ? ec.message() : "no such file"));
  }
  if (std::filesystem::is_directory(status)) throw IoError(fmt::format("cannot read '{}': it is a directory", path));
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw IoError(fmt::format("cannot read '{}': {}", path, ec.message()));

  std::vector<uint8_t> head(512);
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw IoError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
  }
  try {
    if (detect(head.data(), head.size()) == Layout::legacy) {
      const std::vector<uint8_t> file = whole_file(path, size);
      return read_legacy(file.data(), file.size(), model_keys);
    }
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* source = zip_source_file_create(path.c_str(), 0, -1, &error);
    if (source == nullptr) {
      std::string text = zip_error_text(&error);
      zip_error_fini(&error);
      throw IoError(fmt::format("cannot open '{}': {}", path, text));
    }
    zip_error_fini(&error);
    return read_zip(source, size, model_keys);
  } catch (IoError&) {
    throw;
  } catch (Error& e) {
    e.add_context(fmt::format("reading '{}'", path));
    throw;
  }
}

RawContents read_bytes(const uint8_t* data, std::size_t size, const std::string& name,
                       const std::vector<std::string>& model_keys) {
  try {
    if (detect(data, size) == Layout::legacy) return read_legacy(data, size, model_keys);
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* source = zip_source_buffer_create(data, size, 0, &error);
    if (source == nullptr) {
      std::string text = zip_error_text(&error);
      zip_error_fini(&error);
      throw FormatError(fmt::format("cannot read the zip archive ({})", text));
    }
    zip_error_fini(&error);
    return read_zip(source, size, model_keys);
  } catch (Error& e) {
    e.add_context(fmt::format("reading '{}'", name));
    throw;
  }
}

}  // namespace neurobolt::pth
