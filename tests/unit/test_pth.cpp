// Reading .pth files: the fixtures of tests/data/pth (made by make_fixtures.py with torch 1.13),
// the reference checkpoint in shared/, and broken inputs made here.
#include <caffe2/serialize/inline_container.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
// After torch: glog (used by Debian's LibTorch) also defines CHECK.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "neurobolt/error.hpp"
#include "neurobolt/pth.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using neurobolt::PthContents;
using neurobolt::read_pth;

namespace {

fs::path fixture(const std::string& name) { return neurobolt::test::test_data_dir() / "pth" / name; }

const nlohmann::json& expected() {
  static const nlohmann::json json = [] {
    std::ifstream in(fixture("expected.json"));
    REQUIRE(in);
    return nlohmann::json::parse(in);
  }();
  return json;
}

std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return "float32";
    case torch::kDouble: return "float64";
    case torch::kHalf: return "float16";
    case torch::kBFloat16: return "bfloat16";
    case torch::kLong: return "int64";
    case torch::kInt: return "int32";
    case torch::kShort: return "int16";
    case torch::kChar: return "int8";
    case torch::kByte: return "uint8";
    case torch::kBool: return "bool";
    default: return c10::toString(t);
  }
}

std::vector<int64_t> shape_of(const torch::Tensor& t) { return t.sizes().vec(); }

const torch::Tensor& tensor_named(const PthContents& c, const std::string& name) {
  for (const auto& [n, t] : c.tensors) {
    if (n == name) return t;
  }
  FAIL("no tensor named " << name);
  throw std::logic_error("unreachable");
}

// Checks what read_pth found in `file` against expected.json: names in order, dtypes, shapes,
// sums, sums of squares and first values.
PthContents check_fixture(const std::string& file) {
  INFO("fixture " << file);
  const auto& want = expected().at(file);
  PthContents got = read_pth(fixture(file).string());
  CHECK(got.found_under == want.at("found_under").get<std::string>());
  CHECK(got.skipped == want.at("skipped").get<std::vector<std::string>>());
  const auto& tensors = want.at("tensors");
  REQUIRE(got.tensors.size() == tensors.size());
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    const auto& w = tensors[k];
    const auto& [name, t] = got.tensors[k];
    INFO("tensor " << name);
    CHECK(name == w.at("name").get<std::string>());
    CHECK(dtype_name(t.scalar_type()) == w.at("dtype").get<std::string>());
    CHECK(shape_of(t) == w.at("shape").get<std::vector<int64_t>>());
    CHECK(t.is_contiguous());
    CHECK_FALSE(t.requires_grad());
    torch::Tensor flat = t.reshape({-1}).to(torch::kDouble);
    CHECK(flat.sum().item<double>() == Approx(w.at("sum").get<double>()).epsilon(1e-12).margin(1e-12));
    CHECK((flat * flat).sum().item<double>() == Approx(w.at("sumsq").get<double>()).epsilon(1e-12).margin(1e-12));
    auto first = w.at("first").get<std::vector<double>>();
    REQUIRE(flat.numel() >= static_cast<int64_t>(first.size()));
    for (std::size_t i = 0; i < first.size(); ++i) {
      CHECK(flat[static_cast<int64_t>(i)].item<double>() == first[i]);
    }
  }
  return got;
}

// The error read_pth throws for `path`, which must be a FormatError.
std::string format_error(const fs::path& path,
                         const std::vector<std::string>& model_keys = {"model", "module", "state_dict"}) {
  try {
    read_pth(path.string(), model_keys);
  } catch (const neurobolt::FormatError& e) {
    CHECK(e.kind() == neurobolt::ErrorKind::format);
    return e.what();
  }
  FAIL("no FormatError for " << path);
  return "";
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out);
}

using Records = std::vector<std::pair<std::string, std::string>>;

// The records of a torch zip archive, without "version" (the writer adds its own).
Records zip_records(const fs::path& path) {
  caffe2::serialize::PyTorchStreamReader reader(path.string());
  Records out;
  for (const auto& name : reader.getAllRecords()) {
    if (name == "version" || name == ".data/version") continue;
    auto [data, size] = reader.getRecord(name);
    out.emplace_back(name, std::string(static_cast<const char*>(data.get()), size));
  }
  return out;
}

void write_zip(const fs::path& path, const Records& records) {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  for (const auto& [name, data] : records) writer.writeRecord(name, data.data(), data.size());
  writer.writeEndOfFile();
}

// Builds protocol-2 pickles by hand, for inputs torch would never write.
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
  Pickle& integer(int32_t v) {
    bytes += 'J';
    for (int k = 0; k < 4; ++k) bytes += static_cast<char>((static_cast<uint32_t>(v) >> (8 * k)) & 0xff);
    return *this;
  }
  Pickle& ints(const std::vector<int32_t>& v) {
    op('(');
    for (int32_t x : v) integer(x);
    return op('t');
  }
  Pickle& global(const std::string& module, const std::string& name) {
    bytes += 'c' + module + '\n' + name + '\n';
    return *this;
  }
};

// {'w': <tensor>}: _rebuild_tensor_v2 over storage data/0 ('FloatStorage', `numel` elements).
std::string tensor_pickle(int32_t numel, int32_t offset, const std::vector<int32_t>& size,
                          const std::vector<int32_t>& stride) {
  Pickle p;
  p.op('}').str("w").global("torch._utils", "_rebuild_tensor_v2").op('(');
  p.op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(numel).op('t').op('Q');
  p.integer(offset).ints(size).ints(stride).op('\x89');
  p.global("collections", "OrderedDict").op(')').op('R');
  p.op('t').op('R').op('s').op('.');
  return p.bytes;
}

std::string float_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace

TEST_CASE("read_pth reads a plain dict: dtypes, 0-d, views, shared storage", "[pth]") {
  PthContents c = check_fixture("plain_dict.pth");
  CHECK(tensor_named(c, "scalar").dim() == 0);
  CHECK(tensor_named(c, "scalar").item<float>() == 3.25f);
  CHECK(torch::equal(tensor_named(c, "shared_a"), torch::tensor({1.0f, 1.5f, 2.0f, 2.5f})));
  CHECK(torch::equal(tensor_named(c, "shared_b"), torch::tensor({2.5f, 3.0f, 3.5f, 4.0f, 4.5f}).view({5, 1})));
  CHECK(torch::equal(tensor_named(c, "expanded"), torch::tensor({1.0f, -2.0f, 3.0f}).expand({2, 3})));
  CHECK(tensor_named(c, "empty").numel() == 0);
  CHECK(torch::equal(tensor_named(c, "mask"), torch::tensor({true, false, true})));
  CHECK(tensor_named(c, "int32")[2].item<int32_t>() == 2147483647);
  CHECK(tensor_named(c, "int8")[0].item<int8_t>() == -128);
  CHECK(tensor_named(c, "uint8")[2].item<uint8_t>() == 255);
  // Each tensor owns its data: writing one leaves the tensor that shared its storage alone.
  tensor_named(c, "shared_a").fill_(0);
  CHECK(tensor_named(c, "shared_b")[0][0].item<float>() == 2.5f);
}

TEST_CASE("read_pth reads protocol-4 pickles", "[pth]") {
  PthContents p4 = check_fixture("protocol4.pth");
  PthContents p2 = read_pth(fixture("plain_dict.pth").string());
  REQUIRE(p4.tensors.size() == p2.tensors.size());
  for (std::size_t k = 0; k < p2.tensors.size(); ++k) CHECK(torch::equal(p4.tensors[k].second, p2.tensors[k].second));
}

TEST_CASE("read_pth reads a module's OrderedDict state dict", "[pth]") {
  PthContents c = check_fixture("ordered_dict.pth");
  CHECK(c.found_under.empty());
  CHECK(c.skipped.empty());
  CHECK(torch::equal(tensor_named(c, "index"), torch::arange(5, torch::kLong)));
}

TEST_CASE("read_pth finds the model in a training checkpoint and lists what it skipped", "[pth]") {
  PthContents c = check_fixture("training_checkpoint.pth");
  CHECK(c.found_under == "model");
  REQUIRE(c.skipped.size() >= 4);
  CHECK(c.skipped[0] == "optimizer (dict)");
  CHECK(c.skipped[1] == "epoch (int)");
  CHECK(c.skipped[2] == "args (argparse.Namespace)");
  CHECK(c.skipped[3] == "scaler (dict)");

  SECTION("the first matching model key wins") {
    PthContents m = read_pth(fixture("training_checkpoint.pth").string(), {"state_dict", "model"});
    CHECK(m.found_under == "model");
    CHECK(m.tensors.size() == 6);
  }
  SECTION("no model key: the error lists the top-level keys") {
    std::string message = format_error(fixture("training_checkpoint.pth"), {"net"});
    CHECK_THAT(message, Contains("training_checkpoint.pth") && Contains("no state dict") && Contains("[net]") &&
                            Contains("model (collections.OrderedDict)") && Contains("optimizer (dict)") &&
                            Contains("args (argparse.Namespace)"));
  }
  SECTION("storages the state dict does not use are not read") {
    // torch.save numbers storages in pickling order: the model's six come first.
    neurobolt::test::TempDir dir;
    Records records;
    for (auto& [name, data] : zip_records(fixture("training_checkpoint.pth"))) {
      bool model_storage = name.rfind("data/", 0) != 0 || std::stoi(name.substr(5)) < 6;
      if (model_storage) records.emplace_back(name, std::move(data));
    }
    write_zip(dir / "model_only.pth", records);
    PthContents m = read_pth((dir / "model_only.pth").string());
    REQUIRE(m.tensors.size() == c.tensors.size());
    for (std::size_t k = 0; k < m.tensors.size(); ++k) CHECK(torch::equal(m.tensors[k].second, c.tensors[k].second));
  }
}

TEST_CASE("read_pth reads the legacy (pre-1.6) stream format", "[pth]") {
  PthContents c = check_fixture("legacy_format.pth");
  CHECK(torch::equal(tensor_named(c, "fc_weight_t"), tensor_named(c, "fc.weight").t()));
  CHECK(torch::equal(tensor_named(c, "index"), torch::arange(5, torch::kLong)));
}

TEST_CASE("read_pth reads a LaBraM-like checkpoint with prefixed names", "[pth]") {
  PthContents c = check_fixture("labram_like.pth");
  CHECK(c.found_under == "model");
  CHECK(c.tensors[0].first == "student.cls_token");
  CHECK(c.tensors[3].first == "lm_head.weight");
}

TEST_CASE("read_pth skips non-tensor entries inside the state dict", "[pth]") {
  PthContents c = check_fixture("mixed_state.pth");
  CHECK(c.found_under == "state_dict");
  const std::vector<std::string> skipped{"meta (dict)", "state_dict.a.note (str)", "state_dict.a.extra (NoneType)",
                                         "state_dict.b.config (dict)"};
  CHECK(c.skipped == skipped);
}

TEST_CASE("read_pth reads the reference NeuroBOLT checkpoint", "[pth]") {
  const fs::path dir = neurobolt::test::shared_dir() / "fixtures" / "neurobolt_ref";
  if (!fs::exists(dir / "neurobolt_r4_perturbed.pth")) {
    WARN("skipped: " << dir << " is absent");
    return;
  }
  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
  };
  std::vector<Entry> want;
  std::ifstream list(dir / "state_dict_keys.txt");
  REQUIRE(list);
  for (std::string line; std::getline(list, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Entry e;
    std::string shape;
    std::getline(fields, e.name, '\t');
    std::getline(fields, e.dtype, '\t');
    std::getline(fields, shape, '\t');
    e.shape = nlohmann::json::parse(shape).get<std::vector<int64_t>>();
    want.push_back(std::move(e));
  }
  REQUIRE(want.size() == 294);

  PthContents c = read_pth((dir / "neurobolt_r4_perturbed.pth").string());
  CHECK(c.found_under.empty());
  CHECK(c.skipped.empty());
  REQUIRE(c.tensors.size() == want.size());
  for (std::size_t k = 0; k < want.size(); ++k) {
    INFO("entry " << k << ": " << want[k].name);
    CHECK(c.tensors[k].first == want[k].name);
    CHECK(dtype_name(c.tensors[k].second.scalar_type()) == want[k].dtype);
    CHECK(shape_of(c.tensors[k].second) == want[k].shape);
  }
  CHECK(torch::equal(tensor_named(c, "mss_module.index"), torch::arange(26, torch::kLong)));
  CHECK(torch::isfinite(tensor_named(c, "head.weight")).all().item<bool>());
}

TEST_CASE("read_pth reports missing files as I/O errors", "[pth]") {
  neurobolt::test::TempDir dir;
  const fs::path missing = dir / "missing.pth";
  try {
    read_pth(missing.string());
    FAIL("no error");
  } catch (const neurobolt::IoError& e) {
    CHECK_THAT(e.what(), Contains("missing.pth"));
  }
  CHECK_THROWS_AS(read_pth(dir.path().string()), neurobolt::IoError);
}

TEST_CASE("read_pth rejects files that are not .pth files", "[pth]") {
  neurobolt::test::TempDir dir;
  write_bytes(dir / "empty.pth", "");
  CHECK_THAT(format_error(dir / "empty.pth"), Contains("empty.pth") && Contains("empty"));

  write_bytes(dir / "notes.pth", "# just some text\nnot a checkpoint\n");
  CHECK_THAT(format_error(dir / "notes.pth"),
             Contains("notes.pth") && Contains("not a PyTorch .pth file") && Contains("# just s"));

  write_bytes(dir / "plain.pkl", std::string("\x80\x02}q\x00.", 6));
  CHECK_THAT(format_error(dir / "plain.pkl"), Contains("plain.pkl") && Contains("magic number"));

  write_bytes(dir / "fake.zip", "PK\x03\x04 and nothing else");
  CHECK_THAT(format_error(dir / "fake.zip"), Contains("fake.zip") && Contains("zip"));

  CHECK_THAT(format_error(fixture("no_state_dict.pth")),
             Contains("no_state_dict.pth") && Contains("no state dict") && Contains("epoch (int)") &&
                 Contains("weights (list)") && Contains("name (str)"));
  CHECK_THAT(format_error(fixture("list_top.pth")), Contains("list_top.pth") && Contains("holds a list"));
}

TEST_CASE("read_pth reports broken zip archives", "[pth]") {
  neurobolt::test::TempDir dir;
  const Records records = zip_records(fixture("plain_dict.pth"));

  SECTION("no data.pkl") {
    write_zip(dir / "nopkl.pth", {{"something", "else"}});
    CHECK_THAT(format_error(dir / "nopkl.pth"),
               Contains("nopkl.pth") && Contains("no data.pkl") && Contains("something"));
  }
  SECTION("an unknown opcode") {
    write_zip(dir / "badop.pth", {{"data.pkl", std::string("\x80\x02}\xff.", 5)}});
    CHECK_THAT(format_error(dir / "badop.pth"),
               Contains("badop.pth") && Contains("data.pkl") && Contains("pickle opcode 0xff at offset 3 unknown"));
  }
  SECTION("a pickle cut short") {
    const std::string& pkl = records.front().second;
    REQUIRE(records.front().first == "data.pkl");
    write_zip(dir / "cut.pth", {{"data.pkl", pkl.substr(0, pkl.size() / 2)}});
    CHECK_THAT(format_error(dir / "cut.pth"), Contains("cut.pth") && Contains("truncated"));
  }
  SECTION("a storage missing") {
    write_zip(dir / "nodata.pth", {records.front()});
    CHECK_THAT(format_error(dir / "nodata.pth"),
               Contains("nodata.pth") && Contains("tensor 'weight'") && Contains("storage 'data/0' missing"));
  }
  SECTION("a storage of the wrong size") {
    Records shorter = records;
    for (auto& [name, data] : shorter) {
      if (name == "data/0") data.resize(data.size() - 4);
    }
    write_zip(dir / "short.pth", shorter);
    CHECK_THAT(format_error(dir / "short.pth"),
               Contains("short.pth") && Contains("data/0") && Contains("bytes, expected"));
  }
  SECTION("the file cut anywhere") {
    const std::string bytes = file_bytes(fixture("plain_dict.pth"));
    for (std::size_t n = 1; n < bytes.size(); n += 97) {
      INFO("cut at " << n);
      write_bytes(dir / "cut.pth", bytes.substr(0, n));
      CHECK_THAT(format_error(dir / "cut.pth"), Contains("cut.pth"));
    }
  }
}

TEST_CASE("read_pth checks tensor geometry against the storage", "[pth]") {
  neurobolt::test::TempDir dir;
  const fs::path path = dir / "crafted.pth";
  const std::string four = float_bytes({1, 2, 3, 4});

  write_zip(path, {{"data.pkl", tensor_pickle(4, 1, {3}, {1})}, {"data/0", four}});
  PthContents ok = read_pth(path.string());
  REQUIRE(ok.tensors.size() == 1);
  CHECK(torch::equal(ok.tensors[0].second, torch::tensor({2.0f, 3.0f, 4.0f})));

  write_zip(path, {{"data.pkl", tensor_pickle(4, 1, {2, 2}, {1, 1})}, {"data/0", four}});
  CHECK(torch::equal(read_pth(path.string()).tensors[0].second, torch::tensor({2.0f, 3.0f, 3.0f, 4.0f}).view({2, 2})));

  write_zip(path, {{"data.pkl", tensor_pickle(4, 2, {3}, {1})}, {"data/0", four}});
  CHECK_THAT(format_error(path), Contains("crafted.pth") && Contains("tensor 'w'") && Contains("needs 20 bytes") &&
                                     Contains("holds 16"));

  write_zip(path, {{"data.pkl", tensor_pickle(4, 0, {2, 2}, {2, -1})}, {"data/0", four}});
  CHECK_THAT(format_error(path), Contains("invalid geometry"));

  write_zip(path, {{"data.pkl", tensor_pickle(4, -1, {2}, {1})}, {"data/0", four}});
  CHECK_THAT(format_error(path), Contains("invalid geometry"));

  const int32_t big = 0x7fffffff;
  write_zip(path, {{"data.pkl", tensor_pickle(4, 0, {big, big, big}, {1, 1, 1})}, {"data/0", four}});
  CHECK_THAT(format_error(path), Contains("tensor 'w'"));

  // Zero strides may repeat data (torch saves expanded tensors so), but not into gigabytes.
  write_zip(path, {{"data.pkl", tensor_pickle(4, 0, {65536, 65536}, {0, 0})}, {"data/0", four}});
  CHECK_THAT(format_error(path), Contains("tensor 'w'") && Contains("repeats 16 bytes"));

  write_zip(path, {{"data.pkl", tensor_pickle(4, 0, {4}, {1})}, {"data/0", float_bytes({1, 2, 3})}});
  CHECK_THAT(format_error(path), Contains("data/0") && Contains("has 12 bytes, expected 16"));
}

TEST_CASE("read_pth reads torch 2.x tensors rebuilt from untyped storage and a dtype", "[pth]") {
  // _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype)
  neurobolt::test::TempDir dir;
  Pickle p;
  p.op('}').str("h").global("torch._utils", "_rebuild_tensor_v3").op('(');
  p.op('(').str("storage").global("torch", "UntypedStorage").str("0").str("cpu").integer(8).op('t').op('Q');
  p.integer(1).ints({3}).ints({1}).op('\x89').op('}').global("torch", "float16").op('t').op('R').op('s').op('.');
  torch::Tensor half = torch::tensor({0.5f, -1.0f, 2.0f, 8.0f}).to(torch::kHalf);
  std::string data(static_cast<const char*>(half.data_ptr()), 8);
  write_zip(dir / "v3.pth", {{"data.pkl", p.bytes}, {"data/0", data}});
  PthContents c = read_pth((dir / "v3.pth").string());
  REQUIRE(c.tensors.size() == 1);
  CHECK(c.tensors[0].second.scalar_type() == torch::kHalf);
  CHECK(torch::equal(c.tensors[0].second, half.slice(0, 1)));
}

TEST_CASE("read_pth reports broken legacy files", "[pth]") {
  neurobolt::test::TempDir dir;
  const std::string bytes = file_bytes(fixture("legacy_format.pth"));
  const fs::path path = dir / "legacy.pth";

  write_bytes(path, bytes.substr(0, bytes.size() - 3));
  CHECK_THAT(format_error(path), Contains("legacy.pth") && Contains("truncated: storage"));

  write_bytes(path, bytes.substr(0, 40));
  CHECK_THAT(format_error(path), Contains("legacy.pth") && Contains("pickle truncated"));

  // Every cut must give a FormatError (the last storage is always needed).
  for (std::size_t n = 1; n < bytes.size(); ++n) {
    INFO("cut at " << n);
    write_bytes(path, bytes.substr(0, n));
    CHECK_THAT(format_error(path), Contains("legacy.pth"));
  }
}

TEST_CASE("read_pth survives corrupted bytes", "[pth]") {
  // Every byte flipped in turn: the reader either succeeds or throws a neurobolt::Error.
  neurobolt::test::TempDir dir;
  auto try_read = [](const fs::path& path) {
    try {
      read_pth(path.string());
    } catch (const neurobolt::Error&) {
    }
  };
  SECTION("legacy stream") {
    const std::string bytes = file_bytes(fixture("legacy_format.pth"));
    for (std::size_t k = 0; k < bytes.size(); ++k) {
      std::string broken = bytes;
      broken[k] = static_cast<char>(broken[k] ^ 0x5a);
      write_bytes(dir / "flip.pth", broken);
      INFO("byte " << k);
      CHECK_NOTHROW(try_read(dir / "flip.pth"));
    }
  }
  SECTION("zip data.pkl") {
    Records records = zip_records(fixture("training_checkpoint.pth"));
    REQUIRE(records.front().first == "data.pkl");
    const std::string pkl = records.front().second;
    for (std::size_t k = 0; k < pkl.size(); ++k) {
      for (char mask : {'\x01', '\x80'}) {
        records.front().second = pkl;
        records.front().second[k] = static_cast<char>(pkl[k] ^ mask);
        write_zip(dir / "flip.pth", records);
        INFO("byte " << k);
        CHECK_NOTHROW(try_read(dir / "flip.pth"));
      }
    }
  }
}
