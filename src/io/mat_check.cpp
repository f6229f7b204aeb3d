#include "io/mat_check.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "io/h5.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::io {
namespace {

// Data types and array classes of the MAT-file v5 format (MathWorks, "MAT-File Format").
enum : uint32_t {
  miINT8 = 1, miUINT8 = 2, miINT16 = 3, miUINT16 = 4, miINT32 = 5, miUINT32 = 6, miSINGLE = 7, miDOUBLE = 9,
  miINT64 = 12, miUINT64 = 13, miMATRIX = 14, miCOMPRESSED = 15, miUTF8 = 16, miUTF16 = 17, miUTF32 = 18
};
enum : uint32_t { mxCELL = 1, mxSTRUCT = 2, mxOBJECT = 3, mxCHAR = 4, mxSPARSE = 5, mxDOUBLE = 6, mxUINT64 = 15 };
constexpr uint32_t kComplexFlag = 0x0800;
constexpr uint64_t kMaxInflation = 1032;
constexpr int kMaxDepth = 64;  // structs in cells in structs ...; matio recurses as deep

uint64_t value_bytes(uint32_t type) {
  switch (type) {
    case miINT8: case miUINT8: case miUTF8: return 1;
    case miINT16: case miUINT16: case miUTF16: return 2;
    case miINT32: case miUINT32: case miSINGLE: case miUTF32: return 4;
    case miDOUBLE: case miINT64: case miUINT64: return 8;
    default: return 0;
  }
}

FILE* open_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw IoError(fmt::format("cannot open '{}' for reading", path));
  return f;
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// The bytes of one top-level variable: read from the file, or inflated from it.
class Stream {
 public:
  Stream(FILE* file, int64_t offset, uint64_t size, bool compressed) : file_(file), left_(size), compressed_(compressed) {
    std::fseek(file_, static_cast<long>(offset), SEEK_SET);
    if (compressed_) {
      std::memset(&z_, 0, sizeof z_);
      if (inflateInit(&z_) != Z_OK) throw std::bad_alloc();
      in_.resize(64 << 10);
    }
  }
  ~Stream() {
    if (compressed_) inflateEnd(&z_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // False when the bytes end (or the compressed stream is damaged) before n.
  bool read(void* out, uint64_t n) {
    if (!compressed_) {
      if (n > left_ || std::fread(out, 1, n, file_) != n) return false;
      left_ -= n;
      return true;
    }
    z_.next_out = static_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(n);
    while (z_.avail_out > 0) {
      if (z_.avail_in == 0) {
        const std::size_t want = static_cast<std::size_t>(std::min<uint64_t>(left_, in_.size()));
        if (want == 0 || std::fread(in_.data(), 1, want, file_) != want) return false;
        left_ -= want;
        z_.next_in = in_.data();
        z_.avail_in = static_cast<uInt>(want);
      }
      const int status = inflate(&z_, Z_NO_FLUSH);
      if (status == Z_STREAM_END && z_.avail_out > 0) return false;
      if (status != Z_OK && status != Z_STREAM_END) return false;
    }
    return true;
  }

  bool skip(uint64_t n) {
    if (!compressed_) {
      if (n > left_ || std::fseek(file_, static_cast<long>(n), SEEK_CUR) != 0) return false;
      left_ -= n;
      return true;
    }
    std::vector<unsigned char> scratch(static_cast<std::size_t>(std::min<uint64_t>(n, 64 << 10)));
    while (n > 0) {
      const uint64_t step = std::min<uint64_t>(n, scratch.size());
      if (!read(scratch.data(), step)) return false;
      n -= step;
    }
    return true;
  }

 private:
  FILE* file_;
  uint64_t left_;
  bool compressed_;
  z_stream z_{};
  std::vector<unsigned char> in_;
};

struct Tag {
  uint32_t type = 0;
  uint64_t bytes = 0;   // of the data
  uint64_t stored = 0;  // tag and data with padding: what the element takes in its parent
  bool small = false;           // data packed into the tag
  unsigned char packed[4] = {};  // those bytes, as in the file
};

class Checker {
 public:
  Checker(const std::string& path, bool swap) : path_(path), swap_(swap) {}

  // Starts the checks of the index-th top-level element (named in messages until its name is read).
  void begin(int index) { what_ = fmt::format("variable {}", index); }
  // Its miMATRIX of `size` bytes (after the tag) from `stream`.
  void check_variable(Stream& stream, uint64_t size) { matrix(stream, size, 0); }

  [[noreturn]] void fail(const std::string& field, const std::string& expected, const std::string& found) const {
    fail_field(path_, fmt::format("{}, {}", what_, field), expected, found);
  }

  uint32_t u32(const unsigned char* p) const {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swap_ ? __builtin_bswap32(v) : v;
  }

  // A tag within `room` bytes of its parent.
  Tag tag(Stream& s, uint64_t room, const char* field) {
    if (room < 8) fail(field, "an 8-byte tag", fmt::format("{} bytes left", room));
    unsigned char raw[8];
    if (!s.read(raw, 8)) fail(field, "an 8-byte tag", "the end of the data");
    Tag t;
    const uint32_t first = u32(raw);
    if (first >> 16) {
      t.small = true;
      t.type = first & 0xffff;
      t.bytes = first >> 16;
      std::memcpy(t.packed, raw + 4, 4);
      t.stored = 8;
      if (t.bytes > 4) fail(field, "at most 4 bytes in a small data element", std::to_string(t.bytes));
    } else {
      t.type = first;
      t.bytes = u32(raw + 4);
      t.stored = 8 + ((t.bytes + 7) / 8) * 8;
      // The last element of a variable may omit its padding.
      if (t.bytes + 8 > room) fail(field, fmt::format("at most {} bytes", room - 8), fmt::format("{} bytes", t.bytes));
      t.stored = std::min(t.stored, room);
    }
    return t;
  }

  // The data of a tag read so far: skips it.
  void skip_data(Stream& s, const Tag& t, const char* field) {
    if (!t.small && !s.skip(t.stored - 8)) fail(field, fmt::format("{} bytes", t.bytes), "the end of the data");
  }

  // Reads the data of a non-small tag (a few bytes: flags, dims, names).
  std::vector<unsigned char> data(Stream& s, const Tag& t, const char* field) {
    if (t.small) return std::vector<unsigned char>(t.packed, t.packed + t.bytes);
    std::vector<unsigned char> out(t.bytes);
    if (!s.read(out.data(), t.bytes) || !s.skip(t.stored - 8 - t.bytes)) {
      fail(field, fmt::format("{} bytes", t.bytes), "the end of the data");
    }
    return out;
  }

  void matrix(Stream& s, uint64_t size, int depth) {
    if (depth > kMaxDepth) fail("nesting", fmt::format("at most {} levels of cells and structs", kMaxDepth), "more");
    if (size == 0) return;  // an empty array
    uint64_t left = size;
    auto take = [&](const Tag& t) { left -= t.stored; };

    const Tag flags_tag = tag(s, left, "array flags");
    if (flags_tag.type != miUINT32 || flags_tag.bytes != 8) {
      fail("array flags", "8 bytes of miUINT32", fmt::format("{} bytes of type {}", flags_tag.bytes, flags_tag.type));
    }
    const auto flags = data(s, flags_tag, "array flags");
    take(flags_tag);
    const uint32_t cls = u32(flags.data()) & 0xff;
    const bool complex = (u32(flags.data()) & kComplexFlag) != 0;

    const Tag dims_tag = tag(s, left, "dimensions");
    if (dims_tag.type != miINT32 || dims_tag.bytes < 8 || dims_tag.bytes % 4 != 0) {
      fail("dimensions", "at least 2 of miINT32", fmt::format("{} bytes of type {}", dims_tag.bytes, dims_tag.type));
    }
    const auto dims = data(s, dims_tag, "dimensions");
    take(dims_tag);
    uint64_t elements = 1;
    for (std::size_t i = 0; i < dims.size(); i += 4) {
      const int32_t d = static_cast<int32_t>(u32(dims.data() + i));
      if (d < 0) fail("dimensions", "sizes >= 0", std::to_string(d));
      if (__builtin_mul_overflow(elements, static_cast<uint64_t>(d), &elements)) {
        fail("dimensions", "an element count that fits in 64 bits", "more");
      }
    }

    const Tag name_tag = tag(s, left, "name");
    if (name_tag.type != miINT8) fail("name", "miINT8", fmt::format("type {}", name_tag.type));
    if (depth == 0) {
      const auto name = data(s, name_tag, "name");
      what_ = fmt::format("variable '{}'", printable(std::string(name.begin(), name.end())));
    } else {
      skip_data(s, name_tag, "name");
    }
    take(name_tag);

    if (cls == mxCELL || cls == mxSTRUCT || cls == mxOBJECT) {
      uint64_t fields = 1;
      if (cls == mxOBJECT) {
        const Tag class_name = tag(s, left, "class name");
        skip_data(s, class_name, "class name");
        take(class_name);
      }
      if (cls != mxCELL) {
        const Tag length_tag = tag(s, left, "field name length");
        const auto length_bytes = data(s, length_tag, "field name length");
        take(length_tag);
        if (length_tag.type != miINT32 || length_bytes.size() != 4) {
          fail("field name length", "one miINT32", fmt::format("{} bytes of type {}", length_tag.bytes, length_tag.type));
        }
        const uint32_t length = u32(length_bytes.data());
        const Tag names = tag(s, left, "field names");
        if (names.type != miINT8 || (length == 0 && names.bytes != 0) || (length != 0 && names.bytes % length != 0)) {
          fail("field names", fmt::format("miINT8 names of {} bytes each", length),
               fmt::format("{} bytes of type {}", names.bytes, names.type));
        }
        fields = length == 0 ? 0 : names.bytes / length;
        skip_data(s, names, "field names");
        take(names);
      }
      // Each value is an element of at least a tag: what matio allocates per value is bounded
      // by the bytes there.
      uint64_t values = 0;
      if (__builtin_mul_overflow(elements, fields, &values) || values > left / 8) {
        fail(cls == mxCELL ? "cells" : "fields",
             fmt::format("at most {} values in {} bytes", left / 8, left),
             fmt::format("{} elements x {} fields", elements, fields));
      }
      for (uint64_t v = 0; v < values; ++v) {
        const Tag child = tag(s, left, "element");
        if (child.type != miMATRIX || child.small) fail("element", "a miMATRIX", fmt::format("type {}", child.type));
        matrix(s, child.bytes, depth + 1);
        if (!s.skip(child.stored - 8 - child.bytes)) fail("element", "its padding", "the end of the data");
        take(child);
      }
    } else if ((cls == mxCHAR || (cls >= mxDOUBLE && cls <= mxUINT64))) {
      for (int part = 0; part < (complex ? 2 : 1); ++part) {
        const char* field = part == 0 ? "real part" : "imaginary part";
        const Tag values = tag(s, left, field);
        const uint64_t each = value_bytes(values.type);
        uint64_t needed = 0;
        if (each == 0) fail(field, "a numeric data type", fmt::format("type {}", values.type));
        if (__builtin_mul_overflow(elements, each, &needed) || needed > values.bytes) {
          fail(field, fmt::format("{} values of {} bytes", elements, each), fmt::format("{} bytes", values.bytes));
        }
        skip_data(s, values, field);
        take(values);
      }
    } else if (cls == mxSPARSE) {
      // ir, jc and values: matio sizes them by their tags, which lie within the element.
      while (left >= 8) {
        const Tag part = tag(s, left, "sparse part");
        skip_data(s, part, "sparse part");
        take(part);
      }
    }
    // What is left (function handles, opaque objects, padding) is skipped.
    if (!s.skip(left)) fail("data", fmt::format("{} more bytes", left), "the end of the data");
  }

 private:
  const std::string& path_;
  bool swap_;
  std::string what_;
};

// A v7.3 file is HDF5: opening it checks its structure from its bytes (object headers, heaps,
// attributes, object references, which matio follows for cells and structs) and every dataset's
// extent and stored size (h5::File::open_read), before matio reads any of it.
void check_hdf5_structure(const std::string& path) {
  // matio reads attributes of variable-length strings (field names); HDF5 trusts the heap.
  h5::check_all_heap_collections(path);
  h5::File::open_read(path);
}

}  // namespace

void check_mat_structure(const std::string& path) {
  const int64_t size = regular_file_size(path);
  std::unique_ptr<FILE, FileCloser> file(open_file(path));
  unsigned char header[128];
  if (size < 128 || std::fread(header, 1, 128, file.get()) != 128) {
    fail_format(path, fmt::format("not a MATLAB v5, v7 or v7.3 .mat file (a 128-byte header; the file has {} bytes)", size));
  }
  const bool swap = header[126] == 'M' && header[127] == 'I';
  if (!swap && !(header[126] == 'I' && header[127] == 'M')) {
    fail_field(path, "header", "a MATLAB v5, v7 or v7.3 .mat file (endian indicator 'IM' or 'MI')",
               "another file (MATLAB v4 or older, or not MATLAB)");
  }
  const unsigned version = swap ? (header[124] << 8 | header[125]) : (header[125] << 8 | header[124]);
  if (version == 0x0200) {  // v7.3: HDF5, every dataset of which matio may read
    file.reset();
    check_hdf5_structure(path);
    return;
  }
  if (version != 0x0100) fail_field(path, "header version", "0x0100 (v5, v7) or 0x0200 (v7.3)", fmt::format("{:#06x}", version));

  Checker checker(path, swap);
  int64_t offset = 128;
  for (int index = 1; offset + 8 <= size; ++index) {
    unsigned char raw[8];
    std::fseek(file.get(), static_cast<long>(offset), SEEK_SET);
    if (std::fread(raw, 1, 8, file.get()) != 8) break;
    const uint32_t type = checker.u32(raw);
    const uint64_t bytes = checker.u32(raw + 4);
    const int64_t data = offset + 8;
    if (bytes > static_cast<uint64_t>(size - data)) {
      fail_field(path, fmt::format("variable {}", index), fmt::format("at most {} bytes (the rest of the file)", size - data),
                 fmt::format("{} bytes", bytes));
    }
    if (type == miCOMPRESSED) {
      Stream stream(file.get(), data, bytes, true);
      checker.begin(index);
      unsigned char inner[8];
      if (!stream.read(inner, 8)) checker.fail("compressed data", "a zlib stream holding a tag", "a damaged stream");
      const uint32_t inner_type = checker.u32(inner);
      const uint64_t inner_bytes = checker.u32(inner + 4);
      if (inner_type != miMATRIX) checker.fail("compressed data", "a miMATRIX", fmt::format("type {}", inner_type));
      if (inner_bytes > bytes * kMaxInflation) {
        checker.fail("compressed data", fmt::format("at most {} bytes (1032 x {} compressed)", bytes * kMaxInflation, bytes),
                     fmt::format("{} bytes", inner_bytes));
      }
      checker.check_variable(stream, inner_bytes);
    } else if (type == miMATRIX) {
      Stream stream(file.get(), data, bytes, false);
      checker.begin(index);
      checker.check_variable(stream, bytes);
    }
    offset = data + static_cast<int64_t>(type == miCOMPRESSED ? bytes : (bytes + 7) / 8 * 8);
  }
}

}  // namespace neurobolt::io
