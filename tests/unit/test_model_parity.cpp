// Parity with the reference implementation: the reference's own checkpoint, imported through
// read_pth/import_pth, must reproduce every intermediate tensor the reference computed.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>

#include "io/h5.hpp"
#include "neurobolt/channels.hpp"
#include "neurobolt/checkpoint.hpp"
#include "neurobolt/error.hpp"
#include "test_support.hpp"

using namespace neurobolt;

namespace {

const auto kFixtureDir = test::shared_dir() / "fixtures" / "neurobolt_ref";

torch::Tensor read_tensor(const h5::File& file, const std::string& name, torch::ScalarType dtype = torch::kFloat) {
  const auto info = file.info(name);
  auto t = torch::empty(info.shape, torch::TensorOptions().dtype(dtype));
  file.read(name, dtype == torch::kDouble ? h5::Type::f64 : (dtype == torch::kLong ? h5::Type::i64 : h5::Type::f32),
            t.data_ptr());
  return t;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

struct Reference {
  NeuroBOLT model{nullptr};
  h5::File io = h5::File::open_read((kFixtureDir / "neurobolt_r4_perturbed_io.h5").string());
  ImportResult imported;
  Reference() {
    imported = import_pth((kFixtureDir / "neurobolt_r4_perturbed.pth").string(), ImportOptions{});
    model = imported.model;
    model->eval();
  }
};

Reference& reference() {
  static Reference ref;
  return ref;
}

constexpr double kTolerance = 1e-5;

}  // namespace

TEST_CASE("the reference checkpoint imports strictly into the base config", "[parity][model]") {
  auto& ref = reference();
  CHECK(ref.imported.report.complete());
  CHECK(ref.imported.report.loaded.size() == 294);
  CHECK(ref.imported.found_under.empty());
  CHECK(ref.model->config().num_rois() == 4);
  CHECK(ref.model->config().channels == neurobolt_paper_channels());
  // The importer took the model's channel rows from the same vocabulary the reference used.
  auto rows = read_tensor(ref.io, "input_chans", torch::kLong);
  CHECK(torch::equal(rows, ref.model->position_rows));
}

TEST_CASE("every intermediate of a forward pass matches the reference (float32, eval)", "[parity][model]") {
  auto& ref = reference();
  torch::NoGradGuard no_grad;
  // The fixture input is already divided by 100; the model takes microvolts.
  auto x_uv = read_tensor(ref.io, "x_flat") * 100.0;
  std::map<std::string, double> errors;
  auto output = ref.model->forward(x_uv, [&](std::string_view name, const torch::Tensor& value) {
    const std::string key(name);
    if (ref.io.exists("/" + key)) errors[key] = max_abs_diff(value, read_tensor(ref.io, key));
  });
  // 12 blocks + patch embed, tokens, ts/mss features, mss tokens in/out, head_in, output.
  REQUIRE(errors.size() == 20);
  for (const auto& [name, error] : errors) {
    INFO(name << " max abs difference " << error);
    CHECK(error <= kTolerance);
  }
  CHECK(max_abs_diff(output, read_tensor(ref.io, "output")) <= kTolerance);
}

TEST_CASE("temporal branch stages match the reference on the exact scaled input", "[parity][model]") {
  auto& ref = reference();
  torch::NoGradGuard no_grad;
  auto x = read_tensor(ref.io, "x_flat");
  std::map<std::string, double> errors;
  ref.model->temporal_features(x, [&](std::string_view name, const torch::Tensor& value) {
    errors[std::string(name)] = max_abs_diff(value, read_tensor(ref.io, std::string(name)));
  });
  REQUIRE(errors.size() == 15);
  for (const auto& [name, error] : errors) {
    INFO(name << " max abs difference " << error);
    CHECK(error <= kTolerance);
  }
}

TEST_CASE("spectral branch stages of channel 0 match the reference", "[parity][model]") {
  auto& ref = reference();
  torch::NoGradGuard no_grad;
  auto x = read_tensor(ref.io, "x_flat");
  auto& mss = *ref.model->mss_module;
  for (int64_t n = 0; n < 4; ++n) {
    INFO("scale " << n);
    auto mags = mss.magnitudes(x, n);  // [B, C, frames, bins]
    // The reference stores [batch, freq, frame] for channel 0. Magnitudes reach the hundreds and
    // FFT libraries round differently (LibTorch 2.x's pocketfft differs from the reference's by
    // one float32 ulp there, 2^-15 at 256-512): the bound is 1e-5 or two ulps of the largest
    // magnitude, whichever is larger.
    const auto mags_ref = read_tensor(ref.io, fmt::format("mss_ch0_stft_mag_s{}", n));
    const auto largest = mags_ref.abs().max().item<float>();
    const double two_ulps = 2.0 * (std::nextafter(largest, std::numeric_limits<float>::infinity()) - largest);
    INFO("largest magnitude " << largest);
    CHECK(max_abs_diff(mags.select(1, 0).transpose(1, 2), mags_ref) <= std::max(kTolerance, two_ulps));
    auto freq = mss.frequency_embedding(mags, n);
    // A float32 sum over up to 401 bins of magnitudes in the hundreds: its rounding error scales
    // with the values, and the order of the sum depends on the BLAS kernel (OpenBLAS's AVX-512
    // SkylakeX sgemm gives 2.1e-5 at scale 3, its Haswell kernel < 1e-5), so the bound is relative
    // to the largest value (still 1e-5 for values up to 1).
    const auto freq_ref = read_tensor(ref.io, fmt::format("mss_ch0_freq_emb_s{}", n));
    const double freq_scale = std::max(1.0, freq_ref.abs().max().item<double>());
    INFO("largest value " << freq_scale);
    CHECK(max_abs_diff(freq.select(1, 0), freq_ref) <= kTolerance * freq_scale);
    auto frames = mss.frame_embedding(freq, n);
    CHECK(max_abs_diff(frames.select(1, 0), read_tensor(ref.io, fmt::format("mss_ch0_win_emb_s{}", n))) <= kTolerance);
  }
  auto tokens = mss.tokens(x);
  CHECK(max_abs_diff(tokens.narrow(1, 0, 32), read_tensor(ref.io, "mss_ch0_token_emb")) <= kTolerance);
  CHECK(max_abs_diff(tokens, read_tensor(ref.io, "mss_tokens_in")) <= kTolerance);
  CHECK(max_abs_diff(mss.forward(x), read_tensor(ref.io, "mss_feature")) <= kTolerance);
}

TEST_CASE("float32 results are within 1e-4 of the float64 reference, float64 within 1e-9", "[parity][model]") {
  auto& ref = reference();
  torch::NoGradGuard no_grad;
  auto x = read_tensor(ref.io, "x_flat", torch::kDouble);
  auto f32 = ref.model->forward(x.to(torch::kFloat) * 100.0);
  CHECK(max_abs_diff(f32, read_tensor(ref.io, "output_f64", torch::kDouble)) <= 1e-4);

  // A float64 copy of the same weights against the reference's float64 run.
  auto model64 = NeuroBOLT(ref.model->config());
  load_state_dict(*model64, state_dict(*ref.model), true);
  model64->to(torch::kDouble);
  model64->eval();
  auto features = model64->features(x * 100.0);
  CHECK(max_abs_diff(features.temporal, read_tensor(ref.io, "ts_feature_f64", torch::kDouble)) <= 1e-9);
  CHECK(max_abs_diff(features.spectral, read_tensor(ref.io, "mss_feature_f64", torch::kDouble)) <= 1e-9);
  CHECK(max_abs_diff(model64->forward(x * 100.0), read_tensor(ref.io, "output_f64", torch::kDouble)) <= 1e-9);
}

TEST_CASE("input channels are matched by name, in any order", "[model]") {
  auto& ref = reference();
  torch::NoGradGuard no_grad;
  auto x = read_tensor(ref.io, "x_flat") * 100.0;
  auto expected = ref.model->forward(x);

  auto names = ref.model->config().channels;
  std::vector<int64_t> order(names.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(order.size() - 1 - i);
  std::vector<std::string> shuffled;
  for (auto i : order) shuffled.push_back(names[i] == "FP1" ? "Fp1" : names[i]);  // case does not matter
  // An extra channel the model does not use is ignored.
  auto input = torch::cat({x.index_select(1, torch::tensor(order)), torch::zeros({3, 1, 3200})}, 1);
  shuffled.push_back("ECG");
  CHECK(max_abs_diff(ref.model->forward(input, shuffled), expected) == 0.0);

  shuffled.erase(shuffled.begin());  // drops TP10
  auto missing = input.narrow(1, 1, input.size(1) - 1);
  CHECK_THROWS_WITH(ref.model->forward(missing, shuffled), Catch::Contains("TP10") && Catch::Contains("lacks"));
}

// Not part of the default run: prints every stage's max abs error for reports.
//   neurobolt_tests "[.parity-report]"
TEST_CASE("parity report", "[.parity-report]") {
  auto& ref = reference();
  torch::NoGradGuard no_grad;
  auto x_uv = read_tensor(ref.io, "x_flat") * 100.0;
  ref.model->forward(x_uv, [&](std::string_view name, const torch::Tensor& value) {
    const std::string key(name);
    if (ref.io.exists("/" + key)) {
      std::cout << fmt::format("{:16s} max |ours - reference| = {:.3g}\n", key, max_abs_diff(value, read_tensor(ref.io, key)));
    }
  });
  auto x = read_tensor(ref.io, "x_flat");
  auto& mss = *ref.model->mss_module;
  for (int64_t n = 0; n < 4; ++n) {
    auto mags = mss.magnitudes(x, n);
    std::cout << fmt::format("mss_ch0_stft_mag_s{} max |ours - reference| = {:.3g}\n", n,
                             max_abs_diff(mags.select(1, 0).transpose(1, 2),
                                          read_tensor(ref.io, fmt::format("mss_ch0_stft_mag_s{}", n))));
  }
  auto x64 = read_tensor(ref.io, "x_flat", torch::kDouble);
  std::cout << fmt::format("output (float32) vs output_f64: {:.3g}\n",
                           max_abs_diff(ref.model->forward(x64.to(torch::kFloat) * 100.0),
                                        read_tensor(ref.io, "output_f64", torch::kDouble)));
}
