// Spherical-spline interpolation against MNE-Python 1.3's interpolate_bads on a real 64-channel
// recording (../shared/fixtures/mne_interp/interpolate_bads.h5; its README gives the call).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "data/h5_tables.hpp"
#include "io/h5.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/interpolate.hpp"
#include "test_support.hpp"

using namespace neurobolt;
using Catch::Matchers::Contains;

namespace {

std::filesystem::path fixture_path() { return test::shared_dir() / "fixtures" / "mne_interp" / "interpolate_bads.h5"; }

std::vector<double> read_f64(const h5::File& file, const std::string& name) {
  std::vector<double> v(static_cast<std::size_t>(file.info(name).numel()));
  file.read(name, h5::Type::f64, v.data());
  return v;
}

struct BadSet {
  std::string group;
  std::vector<std::string> bads;
  std::vector<int64_t> goods;        // rows of data_uV
  std::vector<double> weights;       // [bads, goods]
  std::vector<double> interpolated;  // [bads, samples]
};

struct Fixture {
  std::vector<std::string> names;
  std::vector<double> data;       // [64, samples]
  std::vector<double> positions;  // [64, 3], metres
  int64_t samples = 0;
  std::vector<BadSet> sets;
};

Fixture read_fixture() {
  const auto file = h5::File::open_read(fixture_path().string());
  Fixture f;
  f.names = data::read_strings(file, "/ch_names");
  f.data = read_f64(file, "/data_uV");
  f.positions = read_f64(file, "/positions_m");
  f.samples = file.info("/data_uV").shape.at(1);
  for (const auto& group : file.list("/")) {
    if (group.rfind("bad_", 0) != 0) continue;
    BadSet s;
    s.group = group;
    s.bads = data::read_strings(file, "/" + group + "/bads");
    s.goods.resize(static_cast<std::size_t>(file.info("/" + group + "/good_indices").numel()));
    file.read("/" + group + "/good_indices", h5::Type::i64, s.goods.data());
    s.weights = read_f64(file, "/" + group + "/weights");
    s.interpolated = read_f64(file, "/" + group + "/interpolated_uV");
    f.sets.push_back(std::move(s));
  }
  return f;
}

struct Agreement {
  double max_abs = 0.0;
  double max_rel = 0.0;  // |a - b| / max |b| of the whole array
};

Agreement compare(const std::vector<double>& ours, const std::vector<double>& reference) {
  REQUIRE(ours.size() == reference.size());
  Agreement a;
  double scale = 0.0;
  for (double v : reference) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < ours.size(); ++i) a.max_abs = std::max(a.max_abs, std::abs(ours[i] - reference[i]));
  a.max_rel = a.max_abs / scale;
  return a;
}

int64_t index_of(const std::vector<std::string>& names, const std::string& name) {
  const auto it = std::find(names.begin(), names.end(), name);
  REQUIRE(it != names.end());
  return it - names.begin();
}

}  // namespace

TEST_CASE("Standard 10-05 positions in MNE's head frame equal MNE's set_montage positions", "[interpolate]") {
  if (!std::filesystem::exists(fixture_path())) {
    WARN("skipped: " << fixture_path() << " is absent");
    return;
  }
  const Fixture f = read_fixture();
  REQUIRE(f.names.size() == 64);
  double worst = 0.0;
  for (std::size_t c = 0; c < f.names.size(); ++c) {
    const ElectrodePosition p = standard_head_position(f.names[c]);
    worst = std::max({worst, std::abs(p.x / 1000 - f.positions[c * 3]), std::abs(p.y / 1000 - f.positions[c * 3 + 1]),
                      std::abs(p.z / 1000 - f.positions[c * 3 + 2])});
  }
  INFO("max position difference " << worst << " m");
  CHECK(worst < 1e-15);
}

TEST_CASE("Spherical-spline weights and signals match MNE's interpolate_bads for every bad set", "[interpolate]") {
  if (!std::filesystem::exists(fixture_path())) {
    WARN("skipped: " << fixture_path() << " is absent");
    return;
  }
  const Fixture f = read_fixture();
  REQUIRE(f.sets.size() == 4);
  for (const auto& set : f.sets) {
    INFO(set.group);
    const auto G = static_cast<int64_t>(set.goods.size());
    const auto B = static_cast<int64_t>(set.bads.size());
    REQUIRE(static_cast<int64_t>(set.weights.size()) == B * G);

    // The matrix from MNE's own positions: the spline algebra alone.
    std::vector<ElectrodePosition> from, to;
    std::vector<std::string> good_names;
    for (auto g : set.goods) {
      from.push_back({f.positions[g * 3], f.positions[g * 3 + 1], f.positions[g * 3 + 2]});
      good_names.push_back(f.names[g]);
    }
    for (const auto& b : set.bads) {
      const int64_t i = index_of(f.names, b);
      to.push_back({f.positions[i * 3], f.positions[i * 3 + 1], f.positions[i * 3 + 2]});
    }
    const auto algebra = compare(spherical_spline_matrix(from, to, {0.0, 0.0, 0.04}), set.weights);
    INFO("weights from MNE's positions: max abs " << algebra.max_abs << ", max rel " << algebra.max_rel);
    CHECK(algebra.max_rel < 1e-9);

    // From the names alone: our montage, head frame and origin.
    const ChannelInterpolation interpolation = standard_interpolation(good_names, set.bads);
    CHECK(interpolation.sources == good_names);
    CHECK(interpolation.targets == set.bads);
    const auto weights = compare(interpolation.weights, set.weights);
    INFO("weights from names: max abs " << weights.max_abs << ", max rel " << weights.max_rel);
    CHECK(weights.max_rel < 1e-9);
    for (int64_t b = 0; b < B; ++b) {
      double sum = 0.0;
      for (int64_t g = 0; g < G; ++g) sum += interpolation.weight(b, g);
      CHECK(sum == Approx(1.0).margin(1e-9));  // a constant potential is kept
    }

    // Signals: weights @ good data in float64, and apply() on float32 data.
    std::vector<double> exact(static_cast<std::size_t>(B * f.samples), 0.0);
    std::vector<float> good_data(static_cast<std::size_t>(G * f.samples));
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t s = 0; s < f.samples; ++s) {
        const double x = f.data[set.goods[g] * f.samples + s];
        good_data[g * f.samples + s] = static_cast<float>(x);
        for (int64_t b = 0; b < B; ++b) exact[b * f.samples + s] += interpolation.weight(b, g) * x;
      }
    }
    const auto signals = compare(exact, set.interpolated);
    INFO("signals (float64): max abs " << signals.max_abs << " uV, max rel " << signals.max_rel);
    CHECK(signals.max_rel < 1e-9);
    const std::vector<float> applied = interpolation.apply(good_data.data(), f.samples);
    const auto from_float = compare(std::vector<double>(applied.begin(), applied.end()), set.interpolated);
    INFO("signals (float32 input): max abs " << from_float.max_abs << " uV, max rel " << from_float.max_rel);
    CHECK(from_float.max_rel < 1e-6);
  }
}

TEST_CASE("Spherical splines: errors name the channel; a source position reproduces its own signal", "[interpolate]") {
  CHECK_THAT(test::error_of([] {
               standard_interpolation({"Cz", "Pz", "ECG"}, {"C3"});
             }),
             Contains("'ECG'") && Contains("no position in the standard 10-05 system"));
  CHECK_THAT(test::error_of([] { standard_interpolation({"Cz", "Pz", "Fz"}, {"Nz"}); }), Contains("'Nz'"));
  CHECK_THAT(test::error_of([] { standard_interpolation({}, {"C3"}); }), Contains("C3") && Contains("no channel"));
  CHECK_THAT(test::error_of([] {
               spherical_spline_matrix({{0, 0, 1}, {0, 0, 0}}, {{1, 0, 0}});
             }),
             Contains("source position 1"));
  CHECK_THAT(test::error_of([] {
               spherical_spline_matrix({{0, 0, 1}}, {{1, 0, 0}}, {}, {4, 50, -1.0});
             }),
             Contains("alpha"));
  CHECK(has_standard_position("EEG FP1-REF"));
  CHECK(has_standard_position("T3"));
  CHECK_FALSE(has_standard_position("LPA"));
  CHECK_FALSE(has_standard_position("ECG"));

  // Without regularisation the spline passes through its nodes: asking for a source's own
  // position gives that source's weight 1.
  const std::vector<std::string> sources{"Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "Cz", "Pz"};
  SphericalSplineOptions exact;
  exact.alpha = 0.0;
  const auto own = standard_interpolation(sources, {"C4"}, exact);
  for (int64_t s = 0; s < static_cast<int64_t>(sources.size()); ++s) {
    CHECK(own.weight(0, s) == Approx(sources[s] == "C4" ? 1.0 : 0.0).margin(1e-8));
  }
}
