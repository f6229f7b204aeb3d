// The HDF5 structure check (src/io/h5_structure.cpp): every file we open for reading is walked
// from its bytes before HDF5 trusts its sizes. Each case writes a valid file with HDF5, damages
// one field the way fuzzing did, and expects a FormatError naming the object and what was found
// (HDF5 itself would allocate gigabytes or crash on these files).
#include <hdf5.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <string>

#include "io/h5.hpp"
#include "neurobolt/error.hpp"
#include "test_support.hpp"

using neurobolt::test::error_of;
using neurobolt::test::TempDir;
namespace h5 = neurobolt::h5;

namespace {

std::string load(const std::string& path) { return neurobolt::test::read_bytes(path); }

void save(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  std::fclose(f);
}

void put_le(std::string& bytes, std::size_t at, uint64_t value, int width) {
  REQUIRE(at + static_cast<std::size_t>(width) <= bytes.size());
  for (int i = 0; i < width; ++i) bytes[at + static_cast<std::size_t>(i)] = static_cast<char>(value >> (8 * i) & 0xFF);
}

uint64_t get_le(const std::string& bytes, std::size_t at, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(i)]);
  return v;
}

// Writes a file with a group "/g" holding a variable-length string attribute "names" (two
// strings), a chunked, deflated dataset "/g/x" and, with `references`, a dataset "/refs" of one
// object reference to "/g/x". `new_format`: HDF5 1.8 object headers ("OHDR"), else version 1.
void write_file(const std::string& path, bool new_format, bool references = false) {
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (new_format) H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  REQUIRE(f >= 0);
  const hid_t g = H5Gcreate2(f, "/g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t str = H5Tcopy(H5T_C_S1);
  H5Tset_size(str, H5T_VARIABLE);
  const hsize_t two = 2;
  const hid_t names_space = H5Screate_simple(1, &two, nullptr);
  const hid_t attr = H5Acreate2(g, "names", str, names_space, H5P_DEFAULT, H5P_DEFAULT);
  const char* names[2] = {"alpha", "beta-channel"};
  REQUIRE(H5Awrite(attr, str, names) >= 0);
  const hsize_t dims[2] = {8, 4}, chunk[2] = {2, 4};
  const hid_t space = H5Screate_simple(2, dims, nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 2, chunk);
  H5Pset_deflate(dcpl, 4);
  const hid_t ds = H5Dcreate2(g, "x", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  float values[32];
  for (int i = 0; i < 32; ++i) values[i] = static_cast<float>(i) * 0.5f;
  REQUIRE(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0);
  if (references) {
    hobj_ref_t ref = 0;
    REQUIRE(H5Rcreate(&ref, f, "/g/x", H5R_OBJECT, -1) >= 0);
    const hsize_t one = 1;
    const hid_t ref_space = H5Screate_simple(1, &one, nullptr);
    const hid_t refs = H5Dcreate2(f, "/refs", H5T_STD_REF_OBJ, ref_space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(H5Dwrite(refs, H5T_STD_REF_OBJ, H5S_ALL, H5S_ALL, H5P_DEFAULT, &ref) >= 0);
    H5Dclose(refs);
    H5Sclose(ref_space);
  }
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Aclose(attr);
  H5Sclose(names_space);
  H5Tclose(str);
  H5Gclose(g);
  H5Fclose(f);
  H5Pclose(fapl);
}

// The address of an object's header, as HDF5 reports it.
uint64_t header_address(const std::string& path, const char* object) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  H5O_info_t info;
  REQUIRE(H5Oget_info_by_name(f, object, &info, H5P_DEFAULT) >= 0);
  H5Fclose(f);
  return info.addr;
}

std::string open_error(const std::string& path) {
  return error_of([&] { h5::File::open_read(path); });
}

}  // namespace

TEST_CASE("HDF5 files of both object header formats pass the structure check and read back", "[io][h5]") {
  TempDir dir;
  for (bool new_format : {false, true}) {
    INFO("new format " << new_format);
    const auto path = (dir / "ok.h5").string();
    write_file(path, new_format, true);
    const auto file = h5::File::open_read(path);
    const auto info = file.info("/g/x");
    REQUIRE(info.shape == std::vector<int64_t>{8, 4});
    std::vector<float> x(32);
    file.read("/g/x", h5::Type::f32, x.data());
    CHECK(x[31] == 15.5f);
  }
}

TEST_CASE("An object header whose chunk size exceeds the file is refused before HDF5 allocates it", "[io][h5]") {
  TempDir dir;
  const auto path = (dir / "bad.h5").string();
  SECTION("version 1 header") {
    write_file(path, false);
    const uint64_t at = header_address(path, "/g/x");
    std::string bytes = load(path);
    REQUIRE(bytes[at] == 1);
    put_le(bytes, at + 8, 0xFFFFFF00u, 4);  // the first chunk's size: 4 GiB
    save(path, bytes);
    const auto error = open_error(path);
    CHECK_THAT(error, Catch::Contains("bad.h5") && Catch::Contains("HDF5 object '/g/x'") &&
                          Catch::Contains("first chunk of 4294967040 bytes") && Catch::Contains("beyond the end"));
  }
  SECTION("version 2 header") {
    write_file(path, true);
    const uint64_t at = header_address(path, "/g/x");
    std::string bytes = load(path);
    REQUIRE(bytes.compare(at, 4, "OHDR") == 0);
    const unsigned flags = static_cast<unsigned char>(bytes[at + 5]);
    const std::size_t size_at = at + 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
    const int width = 1 << (flags & 3);
    put_le(bytes, size_at, width >= 2 ? 0xFF00u : 0xF0u, width);
    save(path, bytes);
    CHECK_THAT(open_error(path), Catch::Contains("HDF5 object '/g/x'") && Catch::Contains("first chunk of"));
  }
}

TEST_CASE("A variable-length attribute pointing to a missing heap object is refused (HDF5 1.10 crashes)",
          "[io][h5]") {
  TempDir dir;
  const auto path = (dir / "bad.h5").string();
  write_file(path, false);
  std::string bytes = load(path);
  // The attribute's first value on disk: its length (5), the collection's address, then the
  // object's index (4 bytes).
  const std::size_t collection = bytes.find("GCOL");
  REQUIRE(collection != std::string::npos);
  std::string value(12, '\0');
  put_le(value, 0, 5, 4);
  put_le(value, 4, collection, 8);
  const std::size_t at = bytes.find(value);
  REQUIRE(at != std::string::npos);
  SECTION("no such object") {
    put_le(bytes, at + 12, 40000, 4);
    save(path, bytes);
    CHECK_THAT(open_error(path), Catch::Contains("HDF5 object '/g'") && Catch::Contains("attribute 'names'") &&
                                     Catch::Contains("object 40000") && Catch::Contains("found no such object"));
  }
  SECTION("a length other than the object's") {
    put_le(bytes, at, 4000000, 4);
    save(path, bytes);
    CHECK_THAT(open_error(path), Catch::Contains("attribute 'names'") && Catch::Contains("4000000 items of 1 bytes") &&
                                     Catch::Contains("expected 5 bytes"));
  }
}

TEST_CASE("An attribute whose extent exceeds its message is refused (HDF5 would allocate and over-read)",
          "[io][h5]") {
  TempDir dir;
  const auto path = (dir / "bad.h5").string();
  write_file(path, false);
  std::string bytes = load(path);
  // Version 1 dataspace of the attribute: version 1, rank 1, flags (1: maximum dimensions
  // follow), 5 reserved, then 2 (8 bytes).
  const std::string space("\x01\x01\x01\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00", 16);
  const std::size_t at = bytes.find(space);
  REQUIRE(at != std::string::npos);
  put_le(bytes, at + 8, 1ull << 40, 8);
  save(path, bytes);
  CHECK_THAT(open_error(path), Catch::Contains("attribute 'names'") && Catch::Contains("1099511627776 values of 16 bytes"));
}

TEST_CASE("A chunked dataset whose chunks claim more bytes than the file holds is refused", "[io][h5]") {
  TempDir dir;
  const auto path = (dir / "bad.h5").string();
  write_file(path, false);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t ds = H5Dopen2(f, "/g/x", H5P_DEFAULT);
  const hsize_t stored = H5Dget_storage_size(ds);
  H5Dclose(ds);
  H5Fclose(f);
  std::string bytes = load(path);
  // The chunk B-tree's keys: each chunk's stored size (4), filter mask (4), offsets (8 each, and
  // one for the element). The first chunk's key: size, mask 0, offsets 0, 0, 0.
  bool patched = false;
  for (std::size_t at = bytes.find("TREE"); at != std::string::npos && !patched; at = bytes.find("TREE", at + 1)) {
    const std::size_t key = at + 8 + 2 * 8;  // signature, type, level, entries, two siblings
    const uint64_t size = get_le(bytes, key, 4);
    if (bytes[at + 4] == 1 && size > 0 && size < stored && get_le(bytes, key + 4, 4) == 0) {
      put_le(bytes, key, 0x7FFFFFFFu, 4);
      patched = true;
    }
  }
  REQUIRE(patched);
  save(path, bytes);
  CHECK_THAT(open_error(path), Catch::Contains("dataset '/g/x'") && Catch::Contains("expected its stored data within"));
}

TEST_CASE("An object reference to an address where no object is is refused (matio follows them)", "[io][h5]") {
  TempDir dir;
  const auto path = (dir / "bad.h5").string();
  write_file(path, false, true);
  const uint64_t target = header_address(path, "/g/x");
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t refs = H5Dopen2(f, "/refs", H5P_DEFAULT);
  const haddr_t at = H5Dget_offset(refs);  // contiguous: the one reference is there
  H5Dclose(refs);
  H5Fclose(f);
  std::string bytes = load(path);
  REQUIRE(get_le(bytes, at, 8) == target);
  put_le(bytes, at, target + 24, 8);
  save(path, bytes);
  CHECK_THAT(open_error(path), Catch::Contains("dataset '/refs' reference 0") &&
                                   Catch::Contains(std::to_string(target + 24)) && Catch::Contains("where there is none"));
}

TEST_CASE("A superblock with unusual address sizes or a root outside the file is refused", "[io][h5]") {
  TempDir dir;
  const auto path = (dir / "bad.h5").string();
  write_file(path, false);
  const std::string good = load(path);
  std::string bytes = good;
  bytes[13] = 4;  // version 0: size of offsets
  save(path, bytes);
  CHECK_THAT(open_error(path), Catch::Contains("superblock") && Catch::Contains("8 and 8 bytes") &&
                                   Catch::Contains("found 4 and 8"));
  bytes = good;
  put_le(bytes, 24 + 32 + 8, 1ull << 40, 8);  // the root group's object header address
  save(path, bytes);
  CHECK_THAT(open_error(path), Catch::Contains("root group address"));
}
