// The .pth reader (torch-free, checkpoint/pth_archive.cpp) on hostile files: pickles that would run
// code in Python are refused naming the global, and sizes a file declares are checked against
// the bytes it has before anything is allocated.
#include <zip.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint/pth_archive.hpp"
#include "neurobolt/error.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using neurobolt::test::TempDir;

namespace {

const std::vector<std::string> kKeys = {"model", "module", "state_dict"};

// Protocol-2 pickles built by hand.
struct Pickle {
  std::string bytes = "\x80\x02";
  Pickle& op(char c) {
    bytes += c;
    return *this;
  }
  Pickle& str(const std::string& s) {
    bytes += 'X';
    for (int k = 0; k < 4; ++k) bytes += static_cast<char>((s.size() >> (8 * k)) & 0xff);
    bytes += s;
    return *this;
  }
  Pickle& integer(int64_t v) {
    if (v >= 0 && v < (int64_t{1} << 31)) {
      bytes += 'J';
      for (int k = 0; k < 4; ++k) bytes += static_cast<char>((v >> (8 * k)) & 0xff);
    } else {  // LONG1 with 8 bytes
      bytes += '\x8a';
      bytes += '\x08';
      for (int k = 0; k < 8; ++k) bytes += static_cast<char>((static_cast<uint64_t>(v) >> (8 * k)) & 0xff);
    }
    return *this;
  }
  Pickle& ints(const std::vector<int64_t>& v) {
    op('(');
    for (int64_t x : v) integer(x);
    return op('t');
  }
  Pickle& global(const std::string& module, const std::string& name) {
    bytes += 'c' + module + '\n' + name + '\n';
    return *this;
  }
  // key -> float tensor over storage `storage_key` of `numel` elements, contiguous `size`.
  Pickle& tensor_item(const std::string& key, const std::string& storage_key, int64_t numel,
                      const std::vector<int64_t>& size) {
    std::vector<int64_t> stride(size.size(), 1);
    for (std::size_t d = size.size(); d-- > 1;) stride[d - 1] = stride[d] * size[d];
    str(key).global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", "FloatStorage").str(storage_key).str("cpu").integer(numel).op('t').op('Q');
    integer(0).ints(size).ints(stride).op('\x89');
    global("collections", "OrderedDict").op(')').op('R');
    return op('t').op('R').op('s');
  }
};

// A zip archive as torch.save writes it: every record under "archive/", stored.
void write_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& records) {
  int error = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  REQUIRE(z != nullptr);
  for (const auto& [name, data] : records) {
    zip_source_t* source = zip_source_buffer(z, data.data(), data.size(), 0);
    REQUIRE(source != nullptr);
    const zip_int64_t index = zip_file_add(z, ("archive/" + name).c_str(), source, ZIP_FL_ENC_UTF_8);
    REQUIRE(index >= 0);
    REQUIRE(zip_set_file_compression(z, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0) == 0);
  }
  REQUIRE(zip_close(z) == 0);
}

std::string floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

std::string error_reading(const fs::path& path) {
  try {
    neurobolt::pth::read_file(path.string(), kKeys);
  } catch (const neurobolt::FormatError& e) {
    return e.what();
  }
  FAIL("no FormatError for " << path);
  return "";
}

std::string error_reading_bytes(const std::string& bytes) {
  try {
    neurobolt::pth::read_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem.pth", kKeys);
  } catch (const neurobolt::FormatError& e) {
    return e.what();
  }
  FAIL("no FormatError");
  return "";
}

// The legacy stream around one main pickle, with its storages' (count, bytes).
std::string legacy_file(const std::string& main_pickle, const std::vector<std::pair<std::string, std::string>>& storages,
                        const std::vector<int64_t>& counts) {
  Pickle magic;
  magic.bytes += "\x8a\x0a";
  magic.bytes += std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
  magic.op('.');
  Pickle protocol;
  protocol.integer(1001).op('.');
  Pickle info;
  info.op('}').op('.');
  Pickle keys;
  keys.op('(');
  for (const auto& [key, data] : storages) keys.str(key);
  keys.op('l').op('.');
  std::string out = magic.bytes + protocol.bytes + info.bytes + main_pickle + keys.bytes;
  for (std::size_t k = 0; k < storages.size(); ++k) {
    const auto count = static_cast<uint64_t>(counts[k]);
    for (int b = 0; b < 8; ++b) out += static_cast<char>((count >> (8 * b)) & 0xff);
    out += storages[k].second;
  }
  return out;
}

}  // namespace

TEST_CASE("pth: a clean state dict reads, also from memory", "[pth][core]") {
  TempDir dir;
  Pickle p;
  p.op('}').tensor_item("w", "0", 4, {2, 2}).op('.');
  write_zip(dir / "ok.pth", {{"data.pkl", p.bytes}, {"data/0", floats({1, 2, 3, 4})}, {"version", "3\n"}});
  const auto contents = neurobolt::pth::read_file((dir / "ok.pth").string(), kKeys);
  REQUIRE(contents.tensors.size() == 1);
  CHECK(contents.tensors[0].name == "w");
  CHECK(contents.tensors[0].sizes == std::vector<int64_t>{2, 2});
  REQUIRE(contents.tensors[0].data->size() == 16);
  float values[4];
  std::memcpy(values, contents.tensors[0].data->data(), 16);
  CHECK(values[3] == 4.0f);

  const std::string bytes = neurobolt::test::read_bytes(dir / "ok.pth");
  const auto again = neurobolt::pth::read_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "m",
                                                kKeys);
  CHECK(*again.tensors[0].data == *contents.tensors[0].data);
}

TEST_CASE("pth: pickles that name code are refused, naming the global", "[pth][core]") {
  TempDir dir;
  // What Python's pickle writes for an object whose __reduce__ returns (os.system, ("...",)).
  struct Case {
    std::string module, name, shown;
  };
  const std::vector<Case> cases = {
      {"posix", "system", "posix.system"},     {"os", "system", "os.system"},
      {"nt", "system", "nt.system"},           {"builtins", "eval", "builtins.eval"},
      {"__builtin__", "eval", "builtins.eval"}, {"builtins", "exec", "builtins.exec"},
      {"builtins", "getattr", "builtins.getattr"}, {"subprocess", "Popen", "subprocess.Popen"},
      {"builtins", "__import__", "builtins.__import__"}, {"torch", "load", "torch.load"},
  };
  for (const Case& c : cases) {
    INFO(c.shown);
    Pickle p;
    p.global(c.module, c.name).str("touch /tmp/neurobolt-pwned").op('\x85').op('R').op('.');
    write_zip(dir / "evil.pth", {{"data.pkl", p.bytes}, {"version", "3\n"}});
    const std::string message = error_reading(dir / "evil.pth");
    CHECK_THAT(message, Contains("evil.pth") && Contains("data.pkl") && Contains("'" + c.shown + "'") &&
                            Contains("refused") && Contains("nothing in the file was run") &&
                            Contains("opcode GLOBAL at offset 2"));
  }
  CHECK_FALSE(fs::exists("/tmp/neurobolt-pwned"));

  SECTION("through STACK_GLOBAL (protocol 4) and INST") {
    Pickle stack;
    stack.bytes = "\x80\x04";
    stack.str("builtins").str("exec").op('\x93').str("print(1)").op('\x85').op('R').op('.');
    CHECK_THAT(error_reading_bytes(legacy_file(stack.bytes, {}, {})),
               Contains("'builtins.exec'") && Contains("opcode STACK_GLOBAL"));
    Pickle inst;
    inst.op('(').str("id").bytes += "ios\nsystem\n";
    inst.op('.');
    CHECK_THAT(error_reading_bytes(legacy_file(inst.bytes, {}, {})), Contains("'os.system'") && Contains("INST"));
  }
  SECTION("next to a good state dict (a class of the training script)") {
    Pickle p;
    p.op('}').str("model").op('}').tensor_item("w", "0", 2, {2}).str("config");
    p.global("__main__", "TrainConfig").op(')').op('\x81').op('s').op('.');
    write_zip(dir / "script.pth", {{"data.pkl", p.bytes}, {"data/0", floats({1, 2})}});
    CHECK_THAT(error_reading(dir / "script.pth"),
               Contains("'__main__.TrainConfig'") && Contains("torch.save(model.state_dict(), PATH)"));
  }
  SECTION("in the legacy stream") {
    Pickle p;
    p.global("posix", "system").str("id").op('\x85').op('R').op('.');
    CHECK_THAT(error_reading_bytes(legacy_file(p.bytes, {}, {})),
               Contains("'posix.system'") && Contains("legacy format, main pickle"));
  }
  SECTION("control bytes in a global's name are escaped") {
    Pickle p;
    p.global("os\x01", "sys\x1btem").op(')').op('R').op('.');
    CHECK_THAT(error_reading_bytes(legacy_file(p.bytes, {}, {})), Contains("'os\\x01.sys\\x1btem'"));
  }
}

TEST_CASE("pth: declared sizes are checked before anything is allocated", "[pth][core]") {
  TempDir dir;
  SECTION("a 1 TB tensor over a 16-byte storage (zip)") {
    Pickle p;
    p.op('}').tensor_item("w", "0", 250'000'000'000, {500'000, 500'000}).op('.');
    write_zip(dir / "huge.pth", {{"data.pkl", p.bytes}, {"data/0", floats({1, 2, 3, 4})}});
    CHECK_THAT(error_reading(dir / "huge.pth"),
               Contains("huge.pth") && Contains("tensor 'w'") && Contains("storage 'data/0' has 16 bytes") &&
                   Contains("expected 1000000000000") && Contains("250000000000 elements of torch.FloatStorage"));
  }
  SECTION("a tensor whose geometry reaches past its storage") {
    Pickle p;
    p.op('}').tensor_item("w", "0", 4, {1'000'000, 1'000'000}).op('.');
    write_zip(dir / "geometry.pth", {{"data.pkl", p.bytes}, {"data/0", floats({1, 2, 3, 4})}});
    CHECK_THAT(error_reading(dir / "geometry.pth"),
               Contains("size [1000000, 1000000]") && Contains("needs 4000000000000 bytes of float32") &&
                   Contains("holds 16"));
  }
  SECTION("a legacy storage claiming 2^40 elements in a small file") {
    Pickle p;
    p.op('}').tensor_item("w", "k", int64_t{1} << 40, {1}).op('.');
    const std::string file = legacy_file(p.bytes, {{"k", floats({1})}}, {int64_t{1} << 40});
    CHECK_THAT(error_reading_bytes(file), Contains("tensor 'w'") && Contains("truncated: storage 'k' needs 4398046511104 bytes"));
  }
  SECTION("a pickle that would build millions of objects") {
    Pickle p;
    p.op('(');
    p.bytes += std::string(3'000'000, ']');  // EMPTY_LIST
    p.op('l').op('.');
    CHECK_THAT(error_reading_bytes(legacy_file(p.bytes, {}, {})),
               Contains("the pickle builds more than 2000000 objects"));
  }
  SECTION("a pickle string longer than the file") {
    Pickle p;
    p.bytes += "X\xff\xff\xff\x7f";
    CHECK_THAT(error_reading_bytes(legacy_file(p.bytes, {}, {})),
               Contains("announces 2147483647 bytes") && Contains("left"));
  }
  SECTION("a zip entry whose header claims more than the file holds") {
    Pickle p;
    p.op('}').tensor_item("w", "0", 4, {4}).op('.');
    write_zip(dir / "claim.pth", {{"data.pkl", p.bytes}, {"data/0", floats({1, 2, 3, 4})}});
    std::string bytes = neurobolt::test::read_bytes(dir / "claim.pth");
    // The uncompressed size of every central-directory entry (offset 24 of "PK\1\2") set to 3 GB.
    for (std::size_t at = bytes.find("PK\x01\x02"); at != std::string::npos; at = bytes.find("PK\x01\x02", at + 4)) {
      const uint32_t claim = 3'000'000'000u;
      for (int b = 0; b < 4; ++b) bytes[at + 24 + b] = static_cast<char>((claim >> (8 * b)) & 0xff);
    }
    const std::string message = error_reading_bytes(bytes);
    CHECK_THAT(message, Contains("mem.pth"));
    INFO(message);
    CHECK((message.find("zip") != std::string::npos || message.find("bytes") != std::string::npos));
  }
}
