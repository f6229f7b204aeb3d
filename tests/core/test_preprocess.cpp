// preprocess_eeg on small synthetic recordings: channel mapping, interpolation of absent and bad
// channels (values equal to the spline weights times the resampled good channels), the zero and
// error policies, reading in channel groups, filtering, and volume triggers.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "data/h5_tables.hpp"
#include "dataset_fixtures.hpp"
#include "io/h5.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/preprocess.hpp"
#include "neurobolt/signal.hpp"
#include "test_support.hpp"

using namespace neurobolt;
using Catch::Matchers::Contains;
using neurobolt::test::TempDir;

namespace {

constexpr double kPi = 3.14159265358979323846;

// 12 EEG electrodes and an ECG at 250 Hz, 20 s: each channel a different mix of slow rhythms
// (well below the 100 Hz of the output's Nyquist frequency) plus an offset; ECG large spikes.
test::EegSpec twelve_channels() {
  test::EegSpec spec;
  spec.rate = 250.0;
  spec.duration = 20.0;
  spec.channels = {"Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "Cz", "Pz", "ECG"};
  spec.value = [](int64_t c, int64_t s) {
    const double t = static_cast<double>(s) / 250.0;
    if (c == 12) return static_cast<float>(s % 250 == 0 ? 2000.0 : -50.0);
    return static_cast<float>(5.0 * static_cast<double>(c) + 20.0 * std::sin(2 * kPi * (3.0 + c) * t + 0.3 * c) +
                              8.0 * std::cos(2 * kPi * 10.5 * t - 0.1 * c));
  };
  return spec;
}

EegPreprocessOptions options_for(std::vector<std::string> channels) {
  EegPreprocessOptions o;
  o.channels = std::move(channels);
  return o;
}

// Every channel of the file at 200 Hz, as preprocessing resamples it.
std::vector<float> resampled(const Recording& rec, int64_t channel) {
  const std::vector<float> x(rec.channel_data(channel), rec.channel_data(channel) + rec.num_samples);
  return signal::resample(x, rec.sample_rate, 200.0);
}

const std::vector<std::string> kGoodEeg{"Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "O1", "O2", "Cz", "Pz"};

}  // namespace

TEST_CASE("Absent and bad channels are interpolated: weights @ the resampled good channels", "[preprocess]") {
  TempDir dir;
  const auto path = (dir / "rec.vhdr").string();
  test::write_brainvision(path, twelve_channels());
  // Fz is absent, P4 is marked bad; the ECG is never a source.
  const auto options = options_for({"Fp1", "C3", "FZ", "Cz", "O2", "P4"});
  const PreprocessedEeg eeg = preprocess_eeg(path, {"P4"}, options);
  CHECK(eeg.report.interpolated == std::vector<std::string>{"FZ", "P4"});
  CHECK(eeg.report.zero_filled.empty());
  CHECK(eeg.report.interpolation_sources == kGoodEeg);
  CHECK(eeg.report.unmapped == std::vector<std::string>{"Fp2", "F3", "F4", "C4", "P3", "O1", "Pz", "ECG"});
  CHECK(eeg.source_rate == 250.0);
  CHECK(eeg.sample_rate == 200.0);
  REQUIRE(eeg.num_samples == 4000);
  REQUIRE(eeg.data.size() == 6u * 4000u);

  const Recording rec = read_recording(path);
  // Copied channels: exactly the resampled file channels.
  const std::vector<std::pair<int64_t, int64_t>> copied{{0, 0}, {1, 4}, {3, 10}, {4, 9}};
  for (const auto& [row, channel] : copied) {
    const auto expected = resampled(rec, channel);
    INFO("output row " << row);
    CHECK(std::equal(expected.begin(), expected.end(), eeg.data.begin() + row * 4000));
  }
  // Interpolated channels: the spline weights applied to every good EEG channel at 200 Hz.
  const ChannelInterpolation spline = standard_interpolation(kGoodEeg, {"Fz", "P4"});
  std::vector<std::vector<float>> sources;
  for (const auto& name : kGoodEeg) sources.push_back(resampled(rec, rec.find_channel(name)));
  double worst = 0.0, scale = 0.0;
  for (int64_t t = 0; t < 2; ++t) {
    const int64_t row = t == 0 ? 2 : 5;
    for (int64_t s = 0; s < 4000; ++s) {
      double expected = 0.0;
      for (std::size_t k = 0; k < sources.size(); ++k)
        expected += spline.weight(t, static_cast<int64_t>(k)) * sources[k][s];
      worst = std::max(worst, std::abs(expected - eeg.data[row * 4000 + s]));
      scale = std::max(scale, std::abs(expected));
    }
  }
  INFO("max |interpolated - weights @ good| = " << worst << " uV of " << scale);
  CHECK(worst < 2e-5 * scale);
  // The estimate lies among its neighbours' values, not at zero: P4 from P3/Pz/O2/C4.
  CHECK(scale > 10.0);
}

TEST_CASE("Zero and error policies; what cannot be interpolated is an error naming the channel", "[preprocess]") {
  TempDir dir;
  const auto path = (dir / "rec.vhdr").string();
  test::write_brainvision(path, twelve_channels());
  auto options = options_for({"Fp1", "FZ", "P4"});

  options.missing = MissingChannelPolicy::zero;
  const PreprocessedEeg zero = preprocess_eeg(path, {"P4"}, options);
  CHECK(zero.report.zero_filled == std::vector<std::string>{"FZ", "P4"});
  CHECK(zero.report.interpolated.empty());
  CHECK_THAT(fmt::format("{}", fmt::join(zero.report.warnings, "\n")), Contains("channels FZ, P4 zero-filled"));
  for (int64_t s = 0; s < zero.num_samples; ++s) {
    REQUIRE(zero.data[zero.num_samples + s] == 0.0f);
    REQUIRE(zero.data[2 * zero.num_samples + s] == 0.0f);
  }

  options.missing = MissingChannelPolicy::error;
  CHECK_THAT(test::error_of([&] { preprocess_eeg(path, {"P4"}, options); }),
             Contains("rec.vhdr") && Contains("2 required channels are missing: FZ, P4 ('P4' is marked bad)") &&
                 Contains("--missing-channels interpolate") && Contains("--missing-channels zero"));

  options.missing = MissingChannelPolicy::interpolate;
  options.channels = {"Fp1", "EXG1"};
  CHECK_THAT(test::error_of([&] { preprocess_eeg(path, {}, options); }),
             Contains("'EXG1'") && Contains("no position in the standard 10-05 system") &&
                 Contains("--missing-channels zero"));
  // Three good EEG channels are too few to interpolate from.
  options.channels = {"Fp1", "Fz"};
  CHECK_THAT(test::error_of([&] {
               preprocess_eeg(path, {"F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "Cz", "Pz"}, options);
             }),
             Contains("cannot interpolate Fz") && Contains("2 good EEG channels") && Contains("(Fp1, Fp2)") &&
                 Contains("at least 4"));
  // _channels.tsv types override the reader's: a MISC channel is no source.
  options.channels = {"Fp1", "Fz"};
  options.channel_types = {{"Pz", "MISC"}, {"Cz", "EEG"}};
  const PreprocessedEeg typed = preprocess_eeg(path, {}, options);
  CHECK(std::find(typed.report.interpolation_sources.begin(), typed.report.interpolation_sources.end(), "Pz") ==
        typed.report.interpolation_sources.end());
  CHECK(typed.report.interpolation_sources.size() == 11);  // 12 EEG electrodes less Pz

  CHECK(parse_missing_channel_policy("zero") == MissingChannelPolicy::zero);
  CHECK(std::string(to_string(MissingChannelPolicy::interpolate)) == "interpolate");
  CHECK_THAT(test::error_of([] { parse_missing_channel_policy("guess"); }),
             Contains("'guess'") && Contains("interpolate, zero or error"));
}

TEST_CASE("Reading in time blocks gives the same output as reading all at once, filters included", "[preprocess]") {
  TempDir dir;
  const auto path = (dir / "rec.vhdr").string();
  test::write_brainvision(path, twelve_channels());
  auto options = options_for({"Fp1", "C3", "Fz", "Cz", "O2", "P4"});
  options.highpass_hz = 0.5;
  options.notch_hz = 50.0;
  const PreprocessedEeg whole = preprocess_eeg(path, {"P4"}, options);
  // 11 channels are read (the good EEG channels: outputs and interpolation sources) at 250 Hz for
  // 4000 output samples: 1 output sample per block, 3 blocks of 1360, 2 blocks (3999 + 1).
  for (int64_t bytes : {int64_t{1}, int64_t{11 * 4 * 1700}, int64_t{11 * 4 * 4999}}) {
    options.max_read_bytes = bytes;
    INFO("max read bytes " << bytes);
    const PreprocessedEeg blocked = preprocess_eeg(path, {"P4"}, options);
    CHECK(blocked.data == whole.data);
  }
  options.max_read_bytes = 256LL << 20;

  // Filtering is linear, so the filtered interpolation equals the interpolation of the filtered
  // good channels (each filtered the same way).
  options.max_read_bytes = 256LL << 20;
  options.channels = kGoodEeg;
  options.channels.push_back("Fz");
  const PreprocessedEeg all = preprocess_eeg(path, {"P4"}, options);
  const ChannelInterpolation spline = standard_interpolation(kGoodEeg, {"Fz"});
  double worst = 0.0, scale = 0.0;
  const int64_t n = all.num_samples;
  for (int64_t s = 0; s < n; ++s) {
    double expected = 0.0;
    for (int64_t k = 0; k < 11; ++k) expected += spline.weight(0, k) * all.data[k * n + s];
    worst = std::max(worst, std::abs(expected - all.data[11 * n + s]));
    scale = std::max(scale, std::abs(expected));
  }
  INFO("max difference " << worst << " of " << scale);
  CHECK(worst < 1e-4 * scale);

  std::vector<std::string> stages;
  preprocess_eeg(path, {"P4"}, options, [&](double fraction, const std::string& stage) {
    CHECK(fraction >= 0.0);
    CHECK(fraction <= 1.0);
    if (stages.empty() || stages.back() != stage) stages.push_back(stage);
  });
  CHECK(stages == std::vector<std::string>{"reading", "filtering", "done"});
}

TEST_CASE("EegStream gives any piece of preprocess_eeg's output, with and without filters", "[preprocess]") {
  TempDir dir;
  const auto path = (dir / "rec.vhdr").string();
  test::write_brainvision(path, twelve_channels());
  ReadOptions header_only;
  header_only.header_only = true;
  const Recording header = read_recording(path, header_only);
  for (bool filters : {false, true}) {
    for (int64_t bytes : {int64_t{11 * 4 * 700}, int64_t{256} << 20}) {
      INFO((filters ? "filters" : "no filters") << ", max read bytes " << bytes);
      auto options = options_for({"Fp1", "C3", "Fz", "Cz", "O2", "P4", "T8"});
      options.missing = MissingChannelPolicy::interpolate;
      options.max_read_bytes = bytes;
      if (filters) {
        options.highpass_hz = 0.5;
        options.notch_hz = 50.0;
      }
      const EegChannelPlan plan = plan_eeg_channels(header, {"P4"}, options);
      const PreprocessedEeg whole = preprocess_eeg(header, plan, options);
      EegStream stream(header, plan, options);
      REQUIRE(stream.num_samples() == whole.num_samples);
      CHECK(stream.sample_rate() == 200.0);
      CHECK(stream.keeps_whole() == filters);
      CHECK(stream.report().interpolated == std::vector<std::string>{"Fz", "P4", "T8"});
      // 11 channels read at 250 Hz: the output samples whose input fits in `bytes`.
      CHECK(stream.block_samples() == bytes / (11 * 4) * 4 / 5);
      const int64_t n = whole.num_samples, C = 7;
      for (auto [first, count] : std::vector<std::pair<int64_t, int64_t>>{
               {0, n}, {0, 1}, {n - 1, 1}, {1234, 2000}, {100, 0}, {3000, 600}, {2999, 601}}) {
        INFO("samples " << first << " + " << count);
        std::vector<float> piece(static_cast<std::size_t>(C * count));
        stream.read(first, count, piece.data());
        for (int64_t c = 0; c < C; ++c)
          for (int64_t s = 0; s < count; ++s) REQUIRE(piece[c * count + s] == whole.data[c * n + first + s]);
      }
      std::vector<float> none;
      CHECK_THROWS_AS(stream.read(n - 10, 11, none.data()), Error);
    }
  }
}

TEST_CASE("Non-finite samples are errors naming the channel; the EEG channels with standard positions",
          "[preprocess]") {
  TempDir dir;
  auto spec = twelve_channels();
  spec.value = [](int64_t c, int64_t s) { return c == 5 && s == 1000 ? NAN : 1.0f; };
  test::write_brainvision(dir / "nan.vhdr", spec);
  // C4 is only a source of the interpolation, and still checked.
  CHECK_THAT(test::error_of([&] {
               preprocess_eeg((dir / "nan.vhdr").string(), {}, options_for({"Fp1", "Fz"}));
             }),
             Contains("channel 'C4' sample 1001") && Contains("NaN"));

  spec = twelve_channels();
  spec.channels = {"EEG FP1-REF", "T3", "ECG", "Status", "Fp1", "LPA", "EXG1", "cz", "VEOG", "O2", "Pz", "C3", "C4"};
  test::write_brainvision(dir / "names.vhdr", spec);
  ReadOptions header_only;
  header_only.header_only = true;
  const Recording header = read_recording((dir / "names.vhdr").string(), header_only);
  CHECK(standard_eeg_channels(header) == std::vector<std::string>{"Fp1", "T7", "Cz", "O2", "Pz", "C3", "C4"});
  CHECK(standard_eeg_channels(header, {{"O2", "EOG"}}) ==
        std::vector<std::string>{"Fp1", "T7", "Cz", "Pz", "C3", "C4"});
}

TEST_CASE("On a real 64-channel EDF, bad channels come out as MNE-Python's interpolate_bads makes them",
          "[preprocess][interpolate]") {
  const auto fixture = test::shared_dir() / "fixtures" / "mne_interp" / "interpolate_bads.h5";
  const auto edf = test::shared_dir() / "data" / "real" / "edf" / "test_edf_overlapping_annotations.edf";
  if (!std::filesystem::exists(fixture) || !std::filesystem::exists(edf)) {
    WARN("skipped: " << fixture << " or " << edf << " is absent");
    return;
  }
  const auto file = h5::File::open_read(fixture.string());
  for (const auto& group : file.list("/")) {
    if (group.rfind("bad_", 0) != 0) continue;
    INFO(group);
    const auto bads = data::read_strings(file, "/" + group + "/bads");
    const auto shape = file.info("/" + group + "/interpolated_uV").shape;
    std::vector<double> expected(static_cast<std::size_t>(shape.at(0) * shape.at(1)));
    file.read("/" + group + "/interpolated_uV", h5::Type::f64, expected.data());
    // The file spells its channels "Fc5.", "C3..": bad channels are named as _channels.tsv would.
    EegPreprocessOptions options = options_for(bads);
    options.sample_rate = 128.0;  // the file's rate: no resampling
    const PreprocessedEeg eeg = preprocess_eeg(edf.string(), bads, options);
    CHECK(eeg.report.interpolated == bads);
    CHECK(eeg.report.interpolation_sources.size() == 64 - bads.size());
    double worst = 0.0, scale = 0.0;
    for (int64_t b = 0; b < shape[0]; ++b) {
      for (int64_t s = 0; s < shape[1]; ++s) {
        const double mne = expected[b * shape[1] + s];
        worst = std::max(worst, std::abs(eeg.data[b * eeg.num_samples + s] - mne));
        scale = std::max(scale, std::abs(mne));
      }
    }
    INFO("max |ours - MNE| = " << worst << " uV of " << scale);
    CHECK(worst < 1e-6 * scale);  // float32 samples
  }
}

TEST_CASE("Volume triggers: annotations first, then events; defaults warn about other markers", "[preprocess]") {
  Recording header;
  header.source = "run.vhdr";
  header.sample_rate = 100.0;
  header.num_samples = 10000;
  header.annotations = {{1.0, 0, "Response/R128", "Response"},
                        {3.0, 0, "Response/R128", "Response"},
                        {2.0, 0, "Scanner/Scan Start", "Scanner"}};
  std::vector<std::string> warnings;
  const VolumeTriggers found = find_volume_triggers(header, {}, "", {}, warnings);
  CHECK(found.times == std::vector<double>{1.0, 3.0});
  CHECK(found.label == "R128");
  CHECK(found.source == "EEG annotations");
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Contains("'Scan Start' also occurs (once)"));

  warnings.clear();
  const std::vector<BidsEvent> events{{5.0, 0, "volume", ""}, {7.0, 0, "volume", ""}};
  const VolumeTriggers named = find_volume_triggers(header, events, "run_events.tsv", {"volume", "R128"}, warnings);
  CHECK(named.times == std::vector<double>{5.0, 7.0});
  CHECK(named.source == "events.tsv");
  CHECK(warnings.empty());

  CHECK_THAT(test::error_of([&] { find_volume_triggers(header, events, "run_events.tsv", {"T  9"}, warnings); }),
             Contains("run.vhdr") && Contains("tried 'T  9'") && Contains("'Response/R128' x2") &&
                 Contains("'volume' x2") && Contains("--trigger LABEL"));
  const std::vector<BidsEvent> late{{500.0, 0, "volume", ""}};
  CHECK_THAT(test::error_of([&] { find_volume_triggers(header, late, "run_events.tsv", {"volume"}, warnings); }),
             Contains("'run_events.tsv' row 1") && Contains("found 500 s"));
}

TEST_CASE("EegStreamPreprocessor: samples pushed in chunks of any size give preprocess_eeg's output bit for bit",
          "[preprocess][stream]") {
  TempDir dir;
  const auto path = (dir / "rec.vhdr").string();
  test::write_brainvision(path, twelve_channels());
  const Recording rec = read_recording(path);
  ReadOptions header_only;
  header_only.header_only = true;
  const Recording header = read_recording(path, header_only);
  auto options = options_for({"Fp1", "C3", "Fz", "Cz", "O2", "P4", "T8"});
  const EegChannelPlan plan = plan_eeg_channels(header, {"P4"}, options);
  const PreprocessedEeg whole = preprocess_eeg(header, plan, options);
  const int64_t n = whole.num_samples, C = 7, channels = rec.num_channels();
  for (int64_t chunk : {int64_t{1}, int64_t{7}, int64_t{250}, int64_t{1333}, rec.num_samples}) {
    INFO("chunks of " << chunk << " samples");
    EegStreamPreprocessor stream(header, plan, options, /*history=*/n);
    CHECK(stream.report().interpolated == std::vector<std::string>{"Fz", "P4", "T8"});
    int64_t last_available = 0;
    for (int64_t first = 0; first < rec.num_samples; first += chunk) {
      const int64_t count = std::min(chunk, rec.num_samples - first);
      std::vector<float> piece(static_cast<std::size_t>(channels * count));
      for (int64_t c = 0; c < channels; ++c)
        std::copy(rec.channel_data(c) + first, rec.channel_data(c) + first + count, piece.begin() + c * count);
      stream.push(piece.data(), count);
      REQUIRE(stream.available() >= last_available);
      // Outputs lag the inputs by about half the resampling filter (at 250 -> 200 Hz, < 0.1 s).
      if (first + count < rec.num_samples) REQUIRE(stream.available() * 5 / 4 >= stream.received() - 25);
      last_available = stream.available();
    }
    stream.finish();
    REQUIRE(stream.available() == n);
    std::vector<float> out(static_cast<std::size_t>(C * n));
    stream.read(0, n, out.data());
    for (int64_t c = 0; c < C; ++c)
      for (int64_t s = 0; s < n; ++s) REQUIRE(out[c * n + s] == whole.data[c * n + s]);
  }

  SECTION("a short history keeps the last samples; filters and non-finite input are refused") {
    EegStreamPreprocessor stream(header, plan, options, /*history=*/400);
    std::vector<float> all(static_cast<std::size_t>(channels * rec.num_samples));
    for (int64_t c = 0; c < channels; ++c)
      std::copy(rec.channel_data(c), rec.channel_data(c) + rec.num_samples, all.begin() + c * rec.num_samples);
    stream.push(all.data(), rec.num_samples);
    stream.finish();
    CHECK(stream.oldest() >= n - 800);
    CHECK(stream.oldest() <= n - 400);
    std::vector<float> tail(static_cast<std::size_t>(C * 400));
    stream.read(n - 400, 400, tail.data());
    CHECK(tail[399] == whole.data[n - 1]);
    CHECK_THROWS_AS(stream.read(0, 10, tail.data()), Error);
    CHECK_THROWS_AS(stream.push(all.data(), 1), ConfigError);

    auto filtered = options;
    filtered.highpass_hz = 0.5;
    CHECK_THROWS_WITH(EegStreamPreprocessor(header, plan, filtered, 400),
                      Contains("zero-phase filters (high-pass 0.5 Hz, notch off)"));
    EegStreamPreprocessor bad(header, plan, options, 400);
    std::vector<float> nan(static_cast<std::size_t>(channels * 3), 1.0f);
    nan[2] = std::nanf("");
    CHECK_THROWS_WITH(bad.push(nan.data(), 3), Contains("channel 'Fp1' has a non-finite value at sample 2"));
  }
}
