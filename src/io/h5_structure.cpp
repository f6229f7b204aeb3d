#include "io/h5_structure.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <set>
#include <utility>

#include "io/h5_heap.hpp"
#include "neurobolt/error.hpp"

// Field layouts below follow the HDF5 File Format Specification version 3.0 (superblock versions
// 0-3, object header versions 1 and 2, message types by number) as HDF5 1.10 decodes them.
namespace neurobolt::h5::detail {
namespace {

constexpr uint64_t kUndefined = UINT64_MAX;  // an undefined address: all bits set
// The largest object header chunk we read into memory. HDF5 writes chunks of a few hundred bytes
// to a few KiB (a message holds at most 64 KiB); this bounds a damaged size long before it could
// hurt, whatever the file's size.
constexpr uint64_t kMaxChunk = 64ull << 20;
// Block and node sizes of fractal heaps and v2 B-trees are bounded by the file's size, but not
// below this: HDF5's defaults (64 KiB direct blocks) exceed the size of a small file.
constexpr uint64_t kMinBlockBound = 4ull << 20;
constexpr int kMaxTypeDepth = 16;
constexpr uint64_t kMaxVlenFields = 65536 / 16;  // variable-length values (16 bytes each) in one message
constexpr std::size_t kMaxChunksPerHeader = 100000;

// Message types (format spec IV.A.2).
enum : unsigned {
  kDataspace = 0x01,
  kLinkInfo = 0x02,
  kFillOld = 0x04,
  kFill = 0x05,
  kLink = 0x06,
  kLayout = 0x08,
  kAttribute = 0x0C,
  kContinuation = 0x10,
  kSymbolTable = 0x11,
  kAttributeInfo = 0x15,
};

// Thrown by Cursor when a field runs past its message; turned into a FormatError by the caller,
// which knows what the message was.
struct Short {};

// Reads fields from a span of bytes, never past its end.
class Cursor {
 public:
  Cursor(const unsigned char* p, std::size_t n) : p_(p), n_(n) {}
  uint64_t take(std::size_t bytes) {
    need(bytes);
    const uint64_t v = little_endian(p_ + at_, static_cast<int>(bytes));
    at_ += bytes;
    return v;
  }
  const unsigned char* skip(uint64_t bytes) {
    need(bytes);
    const unsigned char* p = p_ + at_;
    at_ += static_cast<std::size_t>(bytes);
    return p;
  }
  // Up to and including the terminating NUL.
  std::string text() {
    const void* end = std::memchr(p_ + at_, 0, n_ - at_);
    if (end == nullptr) throw Short{};
    const auto len = static_cast<std::size_t>(static_cast<const unsigned char*>(end) - (p_ + at_));
    std::string s(reinterpret_cast<const char*>(p_ + at_), len);
    at_ += len + 1;
    return s;
  }
  void align(std::size_t from, std::size_t to) {  // pad what was read since `from` to a multiple of `to`
    const std::size_t used = at_ - from;
    skip((to - used % to) % to);
  }
  std::size_t at() const { return at_; }
  std::size_t left() const { return n_ - at_; }
  const unsigned char* here() const { return p_ + at_; }

 private:
  void need(uint64_t bytes) const {
    if (bytes > n_ - at_) throw Short{};
  }
  const unsigned char* p_;
  std::size_t n_;
  std::size_t at_ = 0;
};

// Where the variable-length values lie in one element of a datatype: their offsets, and the
// bytes of one item of each (what HDF5 allocates per count).
struct VlenField {
  uint64_t offset;
  uint64_t item_bytes;
};

// Decodes a datatype message (spec IV.A.2.d) from `c`, appending its variable-length fields at
// `offset` to `out`; returns the size of one element.
uint64_t decode_type(Cursor& c, uint64_t offset, std::vector<VlenField>* out, int depth) {
  if (depth > kMaxTypeDepth) throw FormatError("a datatype nested deeper than 16 levels");
  const unsigned first = static_cast<unsigned>(c.take(1));
  const unsigned cls = first & 0x0F, version = first >> 4;
  const uint64_t bits = c.take(3);
  const uint64_t size = c.take(4);
  switch (cls) {
    case 0: c.skip(4); break;   // fixed-point: bit offset, precision
    case 1: c.skip(12); break;  // floating-point
    case 2: c.skip(2); break;   // time
    case 3: break;              // string (fixed length)
    case 4: c.skip(4); break;   // bitfield
    case 5: c.skip(bits & 0xFF); break;  // opaque: its tag, padded
    case 6: {                   // compound
      const uint64_t members = bits & 0xFFFF;
      for (uint64_t m = 0; m < members; ++m) {
        const std::size_t from = c.at();
        c.text();
        uint64_t member_offset = 0;
        if (version >= 3) {
          const std::size_t width = size < (1u << 8) ? 1 : size < (1u << 16) ? 2 : size < (1u << 24) ? 3 : 4;
          member_offset = c.take(width);
        } else {
          c.align(from, 8);
          member_offset = c.take(4);
          if (version == 1) c.skip(1 + 3 + 4 + 4 + 16);  // dimensionality, reserved, permutation, reserved, sizes
        }
        if (member_offset > size) throw FormatError(fmt::format("a compound member at byte {} of {}", member_offset, size));
        decode_type(c, offset + member_offset, out, depth + 1);
      }
      break;
    }
    case 7: break;  // reference
    case 8: {       // enumeration: base type, names, values
      const uint64_t members = bits & 0xFFFF;
      const uint64_t base = decode_type(c, offset, nullptr, depth + 1);
      for (uint64_t m = 0; m < members; ++m) {
        const std::size_t from = c.at();
        c.text();
        if (version < 3) c.align(from, 8);
      }
      if (members != 0 && base > c.left() / members) throw Short{};
      c.skip(members * base);
      break;
    }
    case 9: {  // variable-length: sequence or string (bits 0-3: 0 sequence, 1 string)
      const uint64_t base = decode_type(c, 0, nullptr, depth + 1);
      if (out != nullptr) out->push_back({offset, (bits & 0x0F) == 1 ? 1 : base});
      break;
    }
    case 10: {  // array
      const uint64_t rank = c.take(1);
      if (version < 3) c.skip(3);
      uint64_t count = 1;
      for (uint64_t d = 0; d < rank; ++d) {
        const uint64_t n = c.take(4);
        if (n != 0 && count > size / n) throw FormatError(fmt::format("an array type larger than its {} bytes", size));
        count *= n;
      }
      if (version < 3) c.skip(4 * rank);  // permutation
      std::vector<VlenField> inner;
      const uint64_t base = decode_type(c, 0, &inner, depth + 1);
      if (out != nullptr && !inner.empty()) {
        if (base == 0 || count > size / base) throw FormatError(fmt::format("an array type larger than its {} bytes", size));
        // An attribute's data lies in its message (at most 64 KiB): no element holds more values.
        if (count > kMaxVlenFields / inner.size()) {
          throw FormatError(fmt::format("an array of {} variable-length values (a message holds at most {})", count * inner.size(),
                                        kMaxVlenFields));
        }
        for (uint64_t i = 0; i < count; ++i) {
          for (const auto& f : inner) out->push_back({offset + i * base + f.offset, f.item_bytes});
        }
      }
      break;
    }
    default: throw FormatError(fmt::format("a datatype of unknown class {}", cls));
  }
  return size;
}

// The number of elements a dataspace message (spec IV.A.2.b) describes.
uint64_t decode_space(Cursor& c) {
  const uint64_t version = c.take(1);
  const uint64_t rank = c.take(1);
  const uint64_t flags = c.take(1);
  uint64_t type = 1;  // simple
  if (version == 1) {
    c.skip(5);
    if (rank == 0) type = 0;  // version 1 has no type: rank 0 is a scalar
  } else if (version == 2) {
    type = c.take(1);
  } else {
    throw FormatError(fmt::format("a dataspace of version {}", version));
  }
  if (rank > 32) throw FormatError(fmt::format("a dataspace of rank {} (HDF5 allows 32)", rank));
  if (type == 2) return 0;  // null
  uint64_t n = 1;
  for (uint64_t d = 0; d < rank; ++d) {
    const uint64_t dim = c.take(8);
    n = __builtin_mul_overflow(n, dim, &n) ? UINT64_MAX : n;
  }
  (void)flags;  // maximum dimensions and permutations follow; not needed
  return n;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

struct StructureCheck::Impl {
  std::string path;
  std::unique_ptr<std::FILE, FileCloser> file;
  uint64_t size = 0;
  uint64_t base = 0;  // where the superblock starts: file addresses count from there
  uint64_t root = kUndefined;
  std::map<uint64_t, bool> headers;  // checked object headers (relative address) -> holds a dataset layout
  std::map<uint64_t, bool> groups;   // ... -> is a group
  std::map<uint64_t, Collection> collections;
  std::set<uint64_t> heaps;  // local heaps, fractal heaps and B-tree headers already checked
  uint64_t current = kUndefined;  // the object header being checked

  [[noreturn]] void fail(const std::string& object, const std::string& what) const {
    throw FormatError(fmt::format("'{}': HDF5 object '{}': {}", path, object, what));
  }

  // The bytes [rel, rel + n) of the file, addresses relative to the superblock; false if they
  // are not all in the file.
  bool read(uint64_t rel, uint64_t n, std::vector<unsigned char>& out) {
    if (rel == kUndefined || rel > size || base > size - rel || n > size - base - rel) return false;
    out.resize(static_cast<std::size_t>(n));
    return std::fseek(file.get(), static_cast<long>(base + rel), SEEK_SET) == 0 &&
           std::fread(out.data(), 1, out.size(), file.get()) == out.size();
  }
  // Up to n bytes at rel (fewer at the end of the file).
  std::vector<unsigned char> read_some(uint64_t rel, uint64_t n) {
    std::vector<unsigned char> out;
    if (rel == kUndefined || rel >= size || base >= size - rel) return out;
    read(rel, std::min(n, size - base - rel), out);
    return out;
  }
  bool in_file(uint64_t rel, uint64_t n) const {
    return rel != kUndefined && rel <= size && base <= size - rel && n <= size - base - rel;
  }
  uint64_t block_bound() const { return std::max(size, kMinBlockBound); }

  void read_superblock();
  void check_header(uint64_t rel, const std::string& object);
  void check_messages(const std::vector<unsigned char>& chunk, std::size_t from, std::size_t to, int version,
                      bool order, const std::string& object, std::deque<std::pair<uint64_t, uint64_t>>& continuations);
  void check_message(unsigned type, unsigned flags, Cursor c, const std::string& object,
                     std::deque<std::pair<uint64_t, uint64_t>>& continuations);
  void check_attribute(Cursor c, const std::string& object);
  void check_heap_value(uint64_t count, uint64_t address, uint64_t index, uint64_t item_bytes,
                        const std::string& object, const std::string& attribute);
  // The `bytes` bytes at rel, which must begin with `signature`; fails naming `what` otherwise.
  std::vector<unsigned char> read_signed(uint64_t rel, uint64_t bytes, const char* signature, const char* what,
                                         const std::string& object);
  void check_local_heap(uint64_t rel, const std::string& object);
  void check_dense_storage(Cursor& c, std::size_t index_bytes, const std::string& object);
  void check_fractal_heap(uint64_t rel, const std::string& object);
  void check_btree2(uint64_t rel, const std::string& object);
};

void StructureCheck::Impl::read_superblock() {
  static const unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  // HDF5 looks at offset 0, then 512, 1024, 2048, ... (a user block before it).
  bool found = false;
  for (uint64_t at = 0; at < size; at = at == 0 ? 512 : at * 2) {
    base = at;
    const auto head = read_some(0, 8);
    if (head.size() == 8 && std::memcmp(head.data(), kSignature, 8) == 0) {
      found = true;
      break;
    }
  }
  if (!found) throw FormatError(fmt::format("'{}': not an HDF5 file (no superblock signature)", path));
  const auto sb = read_some(0, 128);
  const auto field = [&](const char* name, const std::string& expected, const std::string& got) {
    throw FormatError(fmt::format("'{}': HDF5 superblock at offset {}: {}: expected {}, found {}", path, base, name,
                                  expected, got));
  };
  // Every version's fixed part is longer than 16 bytes; the sizes of addresses are within them.
  if (sb.size() < 16) field("size", "a whole superblock", fmt::format("{} bytes to the end of the file", sb.size()));
  const unsigned version = sb[8];
  if (version > 3) field("version", "0 to 3", std::to_string(version));
  const unsigned offsets = version <= 1 ? sb[13] : sb[9], lengths = version <= 1 ? sb[14] : sb[10];
  if (offsets != 8 || lengths != 8) {
    field("sizes of addresses and lengths", "8 and 8 bytes (what HDF5 writes)", fmt::format("{} and {}", offsets, lengths));
  }
  std::vector<uint64_t> headers_to_check;
  if (version <= 1) {
    const std::size_t addresses = version == 1 ? 28 : 24;  // then base, free space, end of file, driver, root entry
    if (sb.size() < addresses + 4 * 8 + 16) field("size", "a whole superblock", fmt::format("{} bytes", sb.size()));
    if (little_endian(&sb[16], 2) == 0 || little_endian(&sb[18], 2) == 0) field("B-tree K", "at least 1", "0");
    const uint64_t driver = little_endian(&sb[addresses + 24], 8);
    root = little_endian(&sb[addresses + 32 + 8], 8);  // the root entry: link name offset, then the header
    if (driver != kUndefined) {
      // The driver information block: version, 3 reserved, its size (4), the driver's name (8).
      std::vector<unsigned char> info;
      if (!read(driver, 16, info) || !in_file(driver, 16 + little_endian(&info[4], 4))) {
        field("driver information block", "a block inside the file", fmt::format("address {}", driver));
      }
    }
  } else {
    if (sb.size() < 48) field("size", "a whole superblock", fmt::format("{} bytes", sb.size()));
    const uint64_t extension = little_endian(&sb[20], 8);
    root = little_endian(&sb[36], 8);
    if (extension != kUndefined) check_header(extension, "(superblock extension)");
  }
  if (!in_file(root, 16)) field("root group address", "an address inside the file", std::to_string(root));
  check_header(root, "/");
}

void StructureCheck::Impl::check_header(uint64_t rel, const std::string& object) {
  if (headers.count(rel) != 0) return;
  headers[rel] = false;
  groups[rel] = false;
  current = rel;
  const auto prefix = read_some(rel, 48);
  std::deque<std::pair<uint64_t, uint64_t>> continuations;
  std::vector<unsigned char> chunk;
  int version = 0;
  bool order = false;
  if (prefix.size() >= 16 && prefix[0] == 1) {
    // Version 1: version, reserved, message count (2), reference count (4), chunk size (4),
    // padding to 8; the messages follow.
    version = 1;
    const uint64_t bytes = little_endian(&prefix[8], 4);
    if (bytes > kMaxChunk || !read(rel + 16, bytes, chunk)) {
      fail(object, fmt::format("an object header whose first chunk of {} bytes at offset {} lies beyond the end of "
                               "the {}-byte file (or exceeds 64 MiB)",
                               bytes, base + rel + 16, size));
    }
    check_messages(chunk, 0, chunk.size(), 1, false, object, continuations);
  } else if (prefix.size() >= 8 && std::memcmp(prefix.data(), "OHDR", 4) == 0 && prefix[4] == 2) {
    // Version 2: "OHDR", version, flags, times (16 bytes if flags bit 5), attribute phase change
    // values (4 bytes if bit 4), then the first chunk's size in 1 << (flags & 3) bytes.
    version = 2;
    const unsigned flags = prefix[5];
    std::size_t at = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
    const std::size_t width = std::size_t{1} << (flags & 3);
    order = (flags & 0x04) != 0;
    if (prefix.size() < at + width) fail(object, "an object header cut off by the end of the file");
    const uint64_t bytes = little_endian(&prefix[at], static_cast<int>(width));
    at += width;
    if (bytes > kMaxChunk || !read(rel + at, bytes + 4, chunk)) {  // the messages, then a checksum
      fail(object, fmt::format("an object header whose first chunk of {} bytes at offset {} lies beyond the end of "
                               "the {}-byte file (or exceeds 64 MiB)",
                               bytes, base + rel + at, size));
    }
    check_messages(chunk, 0, static_cast<std::size_t>(bytes), 2, order, object, continuations);
  } else {
    fail(object, fmt::format("expected an object header (version 1, or 'OHDR' version 2) at offset {}, found {}",
                             base + rel, prefix.empty() ? "the end of the file" : "other bytes"));
  }
  std::set<uint64_t> seen;
  while (!continuations.empty()) {
    const auto [at, length] = continuations.front();
    continuations.pop_front();
    if (!seen.insert(at).second) continue;
    if (seen.size() > kMaxChunksPerHeader) fail(object, "an object header of more than 100000 chunks");
    if (length > kMaxChunk || !read(at, length, chunk)) {
      fail(object, fmt::format("a continuation chunk of {} bytes at offset {} beyond the end of the {}-byte file (or "
                               "over 64 MiB)",
                               length, at == kUndefined ? at : base + at, size));
    }
    if (version == 1) {
      check_messages(chunk, 0, chunk.size(), 1, false, object, continuations);
    } else {
      if (chunk.size() < 8 || std::memcmp(chunk.data(), "OCHK", 4) != 0) {
        fail(object, fmt::format("expected a continuation chunk ('OCHK') at offset {}, found other bytes", base + at));
      }
      check_messages(chunk, 4, chunk.size() - 4, 2, order, object, continuations);
    }
  }
}

void StructureCheck::Impl::check_messages(const std::vector<unsigned char>& chunk, std::size_t from, std::size_t to,
                                          int version, bool order,
                                          const std::string& object,
                                          std::deque<std::pair<uint64_t, uint64_t>>& continuations) {
  // Version 1 messages: type (2), size (2), flags (1), reserved (3). Version 2: type (1), size
  // (2), flags (1), creation order (2) if the header tracks it. The data follows.
  const std::size_t head = version == 1 ? 8 : (order ? 6 : 4);
  std::size_t at = from;
  while (to - at >= head) {
    const unsigned type = static_cast<unsigned>(little_endian(&chunk[at], version == 1 ? 2 : 1));
    const std::size_t size_at = at + (version == 1 ? 2 : 1);
    const uint64_t bytes = little_endian(&chunk[size_at], 2);
    const unsigned flags = chunk[size_at + 2];
    if (bytes > to - at - head) {
      fail(object, fmt::format("an object header message (type {}) of {} bytes at offset {} of a chunk with {} bytes "
                               "left",
                               type, bytes, at, to - at - head));
    }
    try {
      check_message(type, flags, Cursor(&chunk[at + head], static_cast<std::size_t>(bytes)), object, continuations);
    } catch (const Short&) {
      fail(object, fmt::format("an object header message (type {}) whose fields run past its {} bytes", type, bytes));
    }
    at += head + static_cast<std::size_t>(bytes);
  }
}

void StructureCheck::Impl::check_message(unsigned type, unsigned flags, Cursor c, const std::string& object,
                                         std::deque<std::pair<uint64_t, uint64_t>>& continuations) {
  if (flags & 0x02) return;  // a shared message: a reference to one stored elsewhere
  switch (type) {
    case kContinuation: {
      const uint64_t at = c.take(8), length = c.take(8);
      continuations.emplace_back(at, length);
      break;
    }
    case kSymbolTable: {  // v1 B-tree address, local heap address
      groups[current] = true;
      c.take(8);
      check_local_heap(c.take(8), object);
      break;
    }
    // Link info and attribute info: version, flags, [the largest creation index: 8 bytes for
    // links, 2 for attributes, if flags bit 0], fractal heap, name B-tree, [order B-tree if bit 1].
    case kLinkInfo:
      groups[current] = true;
      check_dense_storage(c, 8, object);
      break;
    case kAttributeInfo: check_dense_storage(c, 2, object); break;
    case kLink: {
      // Version 1, flags, [type], [creation order (8)], [character set], the name's length in
      // 1 << (flags & 3) bytes, the name; then a hard link's address or a soft or external
      // link's length (2) and value. HDF5 allocates the lengths before it checks them.
      groups[current] = true;
      c.take(1);
      const uint64_t link_flags = c.take(1);
      uint64_t link_type = 0;
      if (link_flags & 0x08) link_type = c.take(1);
      if (link_flags & 0x04) c.take(8);
      if (link_flags & 0x10) c.take(1);
      const uint64_t name = c.take(std::size_t{1} << (link_flags & 3));
      if (name == 0 || name > c.left()) {
        fail(object, fmt::format("a link whose name of {} bytes exceeds its message ({} bytes left)", name, c.left()));
      }
      c.skip(name);
      if (link_type != 0) {
        const uint64_t value = c.take(2);
        if (value > c.left()) fail(object, fmt::format("a link value of {} bytes in a message with {} left", value, c.left()));
      }
      break;
    }
    case kFillOld: {  // size (4), value
      const uint64_t bytes = c.take(4);
      if (bytes > c.left()) fail(object, fmt::format("a fill value of {} bytes in a message with {} left", bytes, c.left()));
      break;
    }
    case kFill: {
      // Versions 1-2: allocation time, write time, defined (1 each), [size (4), value if defined].
      // Version 3: flags (bit 5: a value follows), [size (4), value].
      const uint64_t version = c.take(1);
      bool has_value = false;
      if (version == 1 || version == 2) {
        c.take(1);
        c.take(1);
        has_value = c.take(1) != 0;
      } else if (version == 3) {
        has_value = (c.take(1) & 0x20) != 0;
      } else {
        fail(object, fmt::format("a fill value message of version {}", version));
      }
      if (has_value) {
        const uint64_t bytes = c.take(4);
        if (bytes != UINT32_MAX && bytes > c.left()) {  // version 1-2 may say "undefined" with all bits set
          fail(object, fmt::format("a fill value of {} bytes in a message with {} left", bytes, c.left()));
        }
      }
      break;
    }
    case kAttribute: check_attribute(c, object); break;
    case kLayout: headers[current] = true; break;
    default: break;
  }
}

void StructureCheck::Impl::check_attribute(Cursor c, const std::string& object) {
  // Version 1: version, reserved, name size (2), datatype size (2), dataspace size (2), then the
  // name, datatype and dataspace each padded to 8 bytes. Version 2: flags instead of reserved
  // (bits 0-1: shared datatype or dataspace), no padding. Version 3: version 2 plus an encoding
  // byte after the sizes. The data follows: elements x the datatype's size.
  const uint64_t version = c.take(1);
  if (version < 1 || version > 3) fail(object, fmt::format("an attribute message of version {}", version));
  const uint64_t flags = c.take(1);
  const uint64_t name_bytes = c.take(2), type_bytes = c.take(2), space_bytes = c.take(2);
  if (version == 3) c.take(1);
  const auto padded = [&](uint64_t n) { return version == 1 ? (n + 7) / 8 * 8 : n; };
  const unsigned char* name_at = c.skip(padded(name_bytes));
  const std::string name(reinterpret_cast<const char*>(name_at), strnlen(reinterpret_cast<const char*>(name_at), name_bytes));
  Cursor type(c.skip(padded(type_bytes)), static_cast<std::size_t>(type_bytes));
  Cursor space(c.skip(padded(space_bytes)), static_cast<std::size_t>(space_bytes));
  if (flags & 3) return;  // a shared datatype or dataspace: stored elsewhere
  std::vector<VlenField> vlen;
  uint64_t element = 0, count = 0;
  try {
    element = decode_type(type, 0, &vlen, 0);
    count = decode_space(space);
  } catch (const Short&) {
    fail(object, fmt::format("attribute '{}': a datatype or dataspace that runs past its declared size", name));
  } catch (const FormatError& e) {
    fail(object, fmt::format("attribute '{}': {}", name, e.message()));
  }
  // HDF5 allocates elements x size and copies that much from the message.
  if (element != 0 && count > c.left() / element) {
    fail(object, fmt::format("attribute '{}': expected at most {} bytes of data (what its message holds), found {} "
                             "values of {} bytes",
                             name, c.left(), count, element));
  }
  for (const auto& field : vlen) {
    if (field.offset > element || element - field.offset < 16) {
      fail(object, fmt::format("attribute '{}': a variable-length value at byte {} of a {}-byte element", name,
                               field.offset, element));
    }
  }
  const unsigned char* data = c.here();
  for (uint64_t i = 0; i < count && !vlen.empty(); ++i) {
    for (const auto& field : vlen) {
      // A variable-length value on disk: its count (4), the heap collection's address (8) and the
      // object's index (4).
      const unsigned char* p = data + i * element + field.offset;
      check_heap_value(little_endian(p, 4), little_endian(p + 4, 8), little_endian(p + 12, 4), field.item_bytes,
                       object, name);
    }
  }
}

void StructureCheck::Impl::check_heap_value(uint64_t count, uint64_t address, uint64_t index, uint64_t item_bytes,
                                            const std::string& object, const std::string& attribute) {
  if (count == 0) return;  // empty: HDF5 reads nothing
  auto it = collections.find(address);
  if (it == collections.end()) {
    Collection c;
    if (address == kUndefined || address > size - base) {
      c.damage = fmt::format("an address beyond the end of the file ({})", address);
    } else {
      c = read_collection(file.get(), base + address, size);
    }
    it = collections.emplace(address, std::move(c)).first;
  }
  const auto& collection = it->second;
  if (!collection.damage.empty()) {
    fail(object, fmt::format("attribute '{}': expected a variable-length value in a global heap collection at {}, "
                             "found {}",
                             attribute, address, collection.damage));
  }
  const auto found = collection.objects.find(static_cast<uint32_t>(index));
  if (index > UINT32_MAX || found == collection.objects.end()) {
    fail(object, fmt::format("attribute '{}': expected a variable-length value in object {} of the global heap "
                             "collection at {}, found no such object",
                             attribute, index, address));
  }
  // HDF5 allocates count x item bytes, then copies the whole object into it.
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(count, item_bytes, &bytes) || bytes != found->second) {
    fail(object, fmt::format("attribute '{}': a variable-length value of {} items of {} bytes, expected {} bytes (its "
                             "heap object)",
                             attribute, count, item_bytes, found->second));
  }
}

std::vector<unsigned char> StructureCheck::Impl::read_signed(uint64_t rel, uint64_t bytes, const char* signature,
                                                             const char* what, const std::string& object) {
  std::vector<unsigned char> h;
  if (!read(rel, bytes, h) || std::memcmp(h.data(), signature, 4) != 0) {
    fail(object, fmt::format("expected {} ('{}') at offset {}, found {}", what, signature, base + rel,
                             in_file(rel, bytes) ? "other bytes" : "the end of the file"));
  }
  return h;
}

void StructureCheck::Impl::check_dense_storage(Cursor& c, std::size_t index_bytes, const std::string& object) {
  c.take(1);
  const uint64_t flags = c.take(1);
  if (flags & 1) c.take(index_bytes);
  check_fractal_heap(c.take(8), object);
  check_btree2(c.take(8), object);
  if (flags & 2) check_btree2(c.take(8), object);
}

void StructureCheck::Impl::check_local_heap(uint64_t rel, const std::string& object) {
  if (rel == kUndefined || !heaps.insert(rel).second) return;
  // "HEAP", version 0, 3 reserved, the data segment's size (8), the free list's offset (8), the
  // data segment's address (8).
  const auto h = read_signed(rel, 32, "HEAP", "a group's local heap", object);
  const uint64_t bytes = little_endian(&h[8], 8), data = little_endian(&h[24], 8);
  if (!in_file(data, bytes)) {
    fail(object, fmt::format("a local heap of {} bytes at address {}, beyond the end of the {}-byte file", bytes, data,
                             size));
  }
}

void StructureCheck::Impl::check_fractal_heap(uint64_t rel, const std::string& object) {
  if (rel == kUndefined || !heaps.insert(rel).second) return;
  // "FRHP", version, heap ID length (2), filter info length (2), flags (1), largest managed object
  // (4), twelve 8-byte fields (huge object bookkeeping, free space, counts), table width (2),
  // starting block size (8), largest direct block size (8), largest heap size in bits (2),
  // starting rows of the root indirect block (2), root block address (8), current rows (2).
  const auto h = read_signed(rel, 146, "FRHP", "a fractal heap header", object);
  const std::size_t table = 14 + 12 * 8;
  const uint64_t width = little_endian(&h[table], 2);
  const uint64_t start_block = little_endian(&h[table + 2], 8);
  const uint64_t max_block = little_endian(&h[table + 10], 8);
  const uint64_t max_bits = little_endian(&h[table + 18], 2);
  const uint64_t rows = little_endian(&h[table + 30], 2);
  const uint64_t huge_tree = little_endian(&h[14 + 8], 8);
  const uint64_t bound = block_bound();
  if (width == 0 || start_block == 0 || start_block > bound || max_block > bound || max_block < start_block ||
      max_bits > 64 || rows > 64 || width * rows * 8 > bound) {
    fail(object, fmt::format("a fractal heap (offset {}) of table width {}, blocks of {} to {} bytes, {} rows: "
                             "expected blocks of at most {} bytes and a table that fits the file",
                             base + rel, width, start_block, max_block, rows, bound));
  }
  check_btree2(huge_tree, object);
}

void StructureCheck::Impl::check_btree2(uint64_t rel, const std::string& object) {
  if (rel == kUndefined || !heaps.insert(rel).second) return;
  // "BTHD", version 0, type, node size (4), record size (2), depth (2), split and merge percent,
  // root node address (8), records in the root (2), all records (8), checksum.
  const auto h = read_signed(rel, 38, "BTHD", "a v2 B-tree header", object);
  const uint64_t node = little_endian(&h[6], 4), record = little_endian(&h[10], 2), depth = little_endian(&h[12], 2);
  if (node == 0 || node > block_bound() || record == 0 || record > node || depth > 64) {
    fail(object, fmt::format("a v2 B-tree (offset {}) of {}-byte nodes, {}-byte records, depth {}: expected nodes of "
                             "at most {} bytes holding records, depth at most 64",
                             base + rel, node, record, depth, block_bound()));
  }
}

StructureCheck::StructureCheck(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->file.reset(std::fopen(path.c_str(), "rb"));
  std::error_code ec;
  impl_->size = std::filesystem::file_size(path, ec);
  if (!impl_->file || ec) throw IoError(fmt::format("cannot open '{}' for reading", path));
  impl_->read_superblock();
}

StructureCheck::~StructureCheck() = default;

bool StructureCheck::is_object(uint64_t address) const { return impl_->headers.count(address) != 0; }

std::vector<std::string> StructureCheck::walk(hid_t file) {
  struct Link {
    std::string name;
    uint64_t address;
  };
  std::vector<std::string> datasets;
  std::deque<std::pair<std::string, uint64_t>> pending{{"/", impl_->root}};
  std::set<uint64_t> listed;
  while (!pending.empty()) {
    const auto [group, address] = pending.front();
    pending.pop_front();
    if (!listed.insert(address).second) continue;
    std::vector<Link> links;
    const auto collect = [](hid_t, const char* name, const H5L_info_t* info, void* data) -> herr_t {
      if (info->type == H5L_TYPE_HARD) static_cast<std::vector<Link>*>(data)->push_back({name, info->u.address});
      return 0;
    };
    hsize_t index = 0;
    if (H5Literate_by_name(file, group.c_str(), H5_INDEX_NAME, H5_ITER_NATIVE, &index, collect, &links, H5P_DEFAULT) < 0) {
      throw FormatError(fmt::format("'{}': HDF5 group '{}': its links cannot be listed (damaged)", impl_->path, group));
    }
    for (const auto& link : links) {
      const std::string path = group == "/" ? "/" + link.name : group + "/" + link.name;
      if (impl_->headers.count(link.address) != 0) continue;  // another link to an object already checked
      impl_->check_header(link.address, path);
      if (impl_->headers[link.address]) datasets.push_back(path);
      // A group: its header holds a symbol table, link info or links (check_message marks it).
      if (impl_->groups[link.address]) pending.emplace_back(path, link.address);
    }
  }
  return datasets;
}

}  // namespace neurobolt::h5::detail
