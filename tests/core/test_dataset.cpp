#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

#include "data/h5_tables.hpp"
#include "dataset_fixtures.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/interpolate.hpp"
#include "neurobolt/signal.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using namespace neurobolt;
using neurobolt::test::BidsRun;
using neurobolt::test::TempDir;

namespace {

constexpr double kPi = 3.14159265358979323846;

PrepareOptions tiny_options() {
  PrepareOptions o;
  o.channels = {"FP1", "FP2", "C3", "C4", "T7", "T8", "O1", "O2"};
  o.bids.derivatives = {"derivatives/roi"};
  o.fmri_lowpass_hz.reset();
  o.demean_windows = false;
  return o;
}

// 30 volumes, TR 2 s, triggers from 3 s, 64 s of EEG at `rate`: volumes 0-6 have no full window.
BidsRun basic_run(double rate = 200.0) {
  BidsRun run;
  run.eeg.rate = rate;
  run.eeg.duration = 64.0;
  run.eeg.markers = test::volume_triggers(rate, 3.0, 2.0, 30);
  return run;
}

template <typename E = Error>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "no error";
}

bool only_output_left(const fs::path& folder, const std::set<std::string>& expected) {
  std::set<std::string> found;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.is_regular_file()) found.insert(e.path().filename().string());
  return found == expected;
}

int64_t window_end(const DatasetReader& reader, int64_t i) {
  return std::llround(reader.onset_of(i) * reader.sample_rate());
}

}  // namespace

TEST_CASE("Windows pair with the 16 s before each volume's trigger, to the sample", "[data]") {
  TempDir dir;
  // Channel 0 carries markers at chosen samples; the others are constant (their index).
  const std::vector<int64_t> markers{1400, 4600, 10001, 12399};
  auto run = basic_run();
  run.eeg.value = [&](int64_t c, int64_t s) {
    if (c > 0) return static_cast<float>(c);
    return std::find(markers.begin(), markers.end(), s) != markers.end() ? 1000.0f : 0.0f;
  };
  test::write_bids_run(dir / "bids", run);
  std::vector<RunReport> reports;
  PrepareCallbacks callbacks;
  callbacks.run_done = [&](const RunReport& r) { reports.push_back(r); };
  const auto result = prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), tiny_options(), callbacks);

  REQUIRE(result.runs.size() == 1);
  REQUIRE(reports.size() == 1);
  const auto& report = result.runs[0];
  CHECK(report.num_volumes == 30);
  CHECK(report.num_windows == 23);
  CHECK(report.skipped_before_start == 7);
  CHECK(report.onset_source == "trigger 'R128' (EEG annotations)");
  CHECK_THAT(report.summary(16.0), Contains("sub-01_task-rest_run-1: 30 volumes, 23 windows (7 skipped: no full 16 s window)"));

  DatasetReader reader((dir / "out.h5").string());
  REQUIRE(reader.num_windows() == 23);
  CHECK(reader.num_channels() == 8);
  CHECK(reader.window_samples() == 3200);
  CHECK(reader.sample_rate() == 200.0);
  CHECK(reader.channel_names() == tiny_options().channels);
  CHECK(reader.roi_names() == std::vector<std::string>{"V1", "PCC"});
  std::vector<int64_t> all(23);
  std::iota(all.begin(), all.end(), 0);
  const Batch batch = reader.read_batch(all);
  int64_t hits = 0;
  for (int64_t i = 0; i < 23; ++i) {
    const int64_t v = reader.volume_of(i);
    CHECK(v == i + 7);
    CHECK(reader.onset_of(i) == Approx(3.0 + 2.0 * v));
    const int64_t end = window_end(reader, i);
    const int64_t first = end - 3200;
    const float* ch0 = batch.windows.data() + i * 8 * 3200;
    double sum = 0;
    for (int64_t s = 0; s < 3200; ++s) sum += ch0[s];
    int64_t inside = 0;
    for (auto p : markers) {
      if (p >= first && p < end) {
        ++inside;
        CHECK(ch0[p - first] == 1000.0f);
      }
    }
    hits += inside;
    CHECK(sum == 1000.0 * inside);
    for (int64_t c = 1; c < 8; ++c) CHECK(ch0[c * 3200 + 1234] == static_cast<float>(c));
    CHECK(batch.targets_raw[i * 2 + 0] == static_cast<float>(v));
    CHECK(batch.targets_raw[i * 2 + 1] == static_cast<float>(v + 0.5));
  }
  // The half-open boundaries: sample 1400 opens volume 10's window (end 4600); 4600 is not in it.
  CHECK(window_end(reader, 3) == 4600);
  CHECK(batch.windows[3 * 8 * 3200 + 0] == 1000.0f);
  CHECK(batch.windows[3 * 8 * 3200 + 3199] == 0.0f);
  CHECK(hits > 0);
}

TEST_CASE("Resampling from 250, 1000 and 5000 Hz keeps the time axis", "[data]") {
  for (double rate : {250.0, 1000.0, 5000.0}) {
    DYNAMIC_SECTION("from " << rate << " Hz") {
      TempDir dir;
      auto run = basic_run(rate);
      run.eeg.value = [rate](int64_t c, int64_t s) {
        const double t = static_cast<double>(s) / rate;
        if (c == 2) return static_cast<float>(50.0 * std::sin(2 * kPi * 10.0 * t));
        if (c == 0) return static_cast<float>(100.0 * std::exp(-0.5 * std::pow((t - 20.0) / 0.02, 2)));
        return 0.0f;
      };
      test::write_bids_run(dir / "bids", run);
      prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), tiny_options());
      DatasetReader reader((dir / "out.h5").string());
      REQUIRE(reader.num_windows() == 23);
      for (int64_t i : {0, 5, 22}) {
        const auto batch = reader.read_batch({i});
        const int64_t first = window_end(reader, i) - 3200;
        double worst = 0;
        for (int64_t s = 0; s < 3200; ++s) {
          const double t = static_cast<double>(first + s) / 200.0;
          worst = std::max(worst, std::abs(batch.windows[2 * 3200 + s] - 50.0 * std::sin(2 * kPi * 10.0 * t)));
        }
        CHECK(worst < 0.5);
        // The pulse at 20 s peaks at window sample 4000 - first when inside.
        if (first <= 4000 && 4000 < first + 3200) {
          const float* ch0 = batch.windows.data();
          CHECK(std::max_element(ch0, ch0 + 3200) - ch0 == 4000 - first);
        }
      }
    }
  }
}

TEST_CASE("A missing trigger is interpolated with a warning naming its time", "[data]") {
  TempDir dir;
  auto run = basic_run();
  run.eeg.markers.erase(run.eeg.markers.begin() + 12);  // the trigger at 27 s
  test::write_bids_run(dir / "bids", run);
  const auto result = prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), tiny_options());
  const auto& report = result.runs.at(0);
  CHECK(report.interpolated_triggers == 1);
  CHECK(report.num_windows == 23);
  CHECK_THAT(fmt::format("{}", fmt::join(report.warnings, "\n")), Contains("1 missing trigger interpolated at 27.000 s"));
  CHECK_THAT(report.summary(16), Contains("1 missing trigger interpolated"));
  DatasetReader reader((dir / "out.h5").string());
  for (int64_t i = 0; i < reader.num_windows(); ++i) CHECK(reader.onset_of(i) == Approx(3.0 + 2.0 * (i + 7)));
}

TEST_CASE("Trigger rules: duplicates, irregular intervals, long gaps, dummy scans, counts", "[data]") {
  const OnsetOptions defaults;
  auto what = std::string("'x.vhdr': 'R128' triggers");
  std::vector<double> t;
  for (int k = 0; k < 10; ++k) t.push_back(1.0 + 2.0 * k);

  auto duplicated = t;
  duplicated.push_back(5.01);
  const auto dedup = onsets_from_triggers(duplicated, 2.0, 10, defaults, what);
  CHECK(dedup.duplicates == 1);
  CHECK(dedup.onsets == t);

  auto irregular = t;
  irregular[4] += 0.5;
  CHECK_THAT(error_of<FormatError>([&] { onsets_from_triggers(irregular, 2.0, 10, defaults, what); }),
             Contains("irregular interval of 2.500 s between the triggers at 7.000 s and 9.500 s"));

  CHECK_THAT(error_of<ConfigError>([&] { onsets_from_triggers(t, 2.5, 10, defaults, what); }),
             Contains("triggers come every 2.000 s (median interval) but the repetition time is 2.5 s"));

  std::vector<double> gap{1, 3, 5, 15, 17};
  CHECK_THAT(error_of<FormatError>([&] { onsets_from_triggers(gap, 2.0, 9, defaults, what); }),
             Contains("10.000 s (5 TRs) without a trigger between 5.000 s and 15.000 s"));
  // A corrupt trigger time far in the future is printed short, not as its 300 digits.
  std::vector<double> far{1, 3, 5, 1e300};
  const auto far_error = error_of<FormatError>([&] { onsets_from_triggers(far, 2.0, 4, defaults, what); });
  CHECK_THAT(far_error, Contains("irregular interval of 1e+300 s between the triggers at 5.000 s and 1e+300 s"));
  CHECK(far_error.size() < 300);

  OnsetOptions lenient;
  lenient.max_missing_triggers = 4;
  const auto repaired = onsets_from_triggers(gap, 2.0, 9, lenient, what);
  CHECK(repaired.interpolated == 4);
  CHECK(repaired.onsets == std::vector<double>{1, 3, 5, 7, 9, 11, 13, 15, 17});

  const std::string too_many = error_of<ConfigError>([&] { onsets_from_triggers(t, 2.0, 7, defaults, what); });
  CHECK_THAT(too_many, Contains("10 volume triggers") && Contains("the target table has 7 rows"));
  CHECK_THAT(too_many, Contains("--dummy-scans 3"));
  CHECK_THAT(error_of<ConfigError>([&] { onsets_from_triggers(t, 2.0, 12, defaults, what); }),
             Contains("10 volume triggers (10 found) but the target table has 12 rows"));
  OnsetOptions dummies;
  dummies.dummy_scans = 3;
  const auto dropped = onsets_from_triggers(t, 2.0, 7, dummies, what);
  CHECK(dropped.onsets.front() == 7.0);
  CHECK(dropped.dummies_dropped == 3);

  CHECK(trigger_label_matches("R128", "Response/R128"));
  CHECK(trigger_label_matches("scan start", "Scanner/Scan Start"));
  CHECK(trigger_label_matches("T  1", " T  1 "));
  CHECK_FALSE(trigger_label_matches("R128", "Response/R12"));
}

TEST_CASE("A trigger count that contradicts the target table names both numbers", "[data]") {
  TempDir dir;
  auto run = basic_run();
  run.volumes = 33;
  test::write_bids_run(dir / "bids", run);
  const std::string message = error_of<ConfigError>(
      [&] { prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), tiny_options()); });
  CHECK_THAT(message, Contains("sub-01_task-rest_run-1_eeg.vhdr") && Contains("30 volume triggers") &&
                          Contains("33 rows"));
  CHECK_THAT(message, Contains("preparing run sub-01_task-rest_run-1"));
  CHECK_FALSE(fs::exists(dir / "out.h5"));
}

TEST_CASE("Without triggers, onsets come from the first-volume offset", "[data]") {
  TempDir dir;
  auto run = basic_run();
  run.eeg.markers.clear();
  test::write_bids_run(dir / "bids", run);
  CHECK_THAT(error_of<ConfigError>([&] { prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), tiny_options()); }),
             Contains("no volume trigger found") && Contains("--first-volume-offset"));
  auto options = tiny_options();
  options.first_volume_offset = 3.0;
  const auto result = prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), options);
  CHECK(result.runs.at(0).num_windows == 23);
  CHECK(result.runs.at(0).onset_source == "offset 3 s + k * TR");
  DatasetReader reader((dir / "out.h5").string());
  CHECK(reader.onset_of(0) == Approx(17.0));

  // An offset that puts the last volumes after the end of the EEG: skipped and counted.
  options.first_volume_offset = 10.0;
  options.force = true;
  const auto late = prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), options);
  CHECK(late.runs.at(0).skipped_before_start == 3);
  CHECK(late.runs.at(0).skipped_after_end == 2);  // onsets 66 and 68 s; 64 s ends exactly at the end
  CHECK(late.runs.at(0).num_windows == 25);
  CHECK_THAT(fmt::format("{}", fmt::join(late.runs.at(0).warnings, "\n")),
             Contains("2 volumes after the end of the EEG (64.000 s) skipped"));
}

TEST_CASE("Triggers from the BIDS events.tsv when the EEG file has none; bad channels count as missing", "[data]") {
  TempDir dir;
  auto run = basic_run();
  run.eeg.markers.clear();
  test::write_bids_run(dir / "bids", run);
  const auto events = dir / "bids/sub-01/eeg/sub-01_task-rest_run-1_events.tsv";
  std::string table = "onset\tduration\ttrial_type\tvalue\n";
  for (int k = 0; k < 30; ++k) table += fmt::format("{}\t0\tScan Start\tn/a\n", 3 + 2 * k);
  test::write_text(events, table);
  const auto result = prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), tiny_options());
  CHECK(result.runs.at(0).onset_source == "trigger 'Scan Start' (events.tsv)");
  CHECK(result.runs.at(0).num_windows == 23);

  test::write_text(events, table + "70\t0\tScan Start\tn/a\n");
  CHECK_THAT(error_of<FormatError>([&] { prepare_bids((dir / "bids").string(), (dir / "late.h5").string(), tiny_options()); }),
             Contains("_events.tsv' row 31: trigger 'Scan Start' onset: expected 0 to 64 s") && Contains("found 70 s"));

  test::write_text(events, table);
  test::write_text(dir / "bids/sub-01/eeg/sub-01_task-rest_run-1_channels.tsv",
                   "name\ttype\tunits\tstatus\nFp1\tEEG\tuV\tgood\nO2\tEEG\tuV\tbad\n");
  const auto repaired = prepare_bids((dir / "bids").string(), (dir / "repaired.h5").string(), tiny_options());
  CHECK(repaired.runs.at(0).interpolated_channels == std::vector<std::string>{"O2"});
  CHECK(repaired.runs.at(0).missing_channels.empty());
  auto strict = tiny_options();
  strict.missing_channels = MissingChannelPolicy::error;
  CHECK_THAT(error_of<ConfigError>([&] { prepare_bids((dir / "bids").string(), (dir / "bad.h5").string(), strict); }),
             Contains("missing: O2 ('O2' is marked bad)"));
}

TEST_CASE("Channels map by canonical name (T3 -> T7); a missing one is interpolated, zero-filled or an error",
          "[data]") {
  TempDir dir;
  test::EegSpec spec;
  spec.rate = 250;
  spec.duration = 64;
  spec.channels = {"EEG FP1-REF", "Fp2", "C3", "C4", "T3", "T4", "O1", "O2", "ECG"};
  spec.value = [](int64_t c, int64_t) { return static_cast<float>(10 * c); };
  spec.markers = test::volume_triggers(250, 3.0, 2.0, 30);
  test::write_edf(dir / "run.edf", spec);
  test::write_targets(dir / "run_timeseries.tsv", {"V1"}, 30, 2.0, [](int64_t v, int64_t) { return double(v); });
  ExplicitRun input{(dir / "run.edf").string(), (dir / "run_timeseries.tsv").string(), 2.0, "", ""};
  const auto result = prepare_files({input}, (dir / "out.h5").string(), tiny_options());
  CHECK(result.runs.at(0).unmapped_channels == std::vector<std::string>{"ECG"});
  CHECK(result.runs.at(0).interpolated_channels.empty());
  CHECK(result.runs.at(0).subject == "run");
  DatasetReader reader((dir / "out.h5").string());
  const auto batch = reader.read_batch({4});
  for (int64_t c = 0; c < 8; ++c) CHECK(batch.windows[c * 3200 + 1600] == Approx(10.0 * c).margin(0.1));

  // O2 replaced by Pz: by default O2 is interpolated from the 8 EEG channels (not the ECG).
  spec.channels = {"Fp1", "Fp2", "C3", "C4", "T7", "T8", "O1", "Pz", "ECG"};
  test::write_edf(dir / "run.edf", spec);
  const auto interpolated = prepare_files({input}, (dir / "interpolated.h5").string(), tiny_options());
  CHECK(interpolated.runs.at(0).interpolated_channels == std::vector<std::string>{"O2"});
  CHECK(interpolated.runs.at(0).missing_channels.empty());
  CHECK_THAT(interpolated.runs.at(0).summary(16.0), Contains("interpolated: O2"));
  const auto spline = standard_interpolation({"Fp1", "Fp2", "C3", "C4", "T7", "T8", "O1", "Pz"}, {"O2"});
  double expected = 0.0;
  for (int64_t k = 0; k < 8; ++k) expected += spline.weight(0, k) * 10.0 * static_cast<double>(k);
  DatasetReader repaired((dir / "interpolated.h5").string());
  const auto r = repaired.read_batch({0});
  // Channel c holds g (10 c + e) at one sample: resampling 250 -> 200 Hz scales a constant by its
  // output phase's tap sum g (within 1e-3 of 1), and the EDF reader adds a tiny offset e. Weights
  // summing to 1 keep both, so O2 = g (weights @ 10 c + e), with g and g e read from Fp1 and Fp2.
  const double offset = r.windows[0 * 3200 + 100];
  const double phase_gain = (r.windows[1 * 3200 + 100] - offset) / 10.0;
  CHECK(phase_gain == Approx(1.0).margin(1e-2));
  CHECK(r.windows[7 * 3200 + 100] == Approx(expected * phase_gain + offset).margin(1e-4));
  CHECK(r.windows[7 * 3200 + 100] > 0.0f);
  const auto repaired_file = h5::File::open_read((dir / "interpolated.h5").string());
  CHECK(data::read_strings(repaired_file, "/runs/interpolated_channels") == std::vector<std::string>{"[\"O2\"]"});
  CHECK(data::read_strings(repaired_file, "/runs/missing_channels") == std::vector<std::string>{"[]"});
  CHECK_THAT(repaired.parameters_json(), Contains("\"missing_channels\": \"interpolate\""));

  auto options = tiny_options();
  options.missing_channels = MissingChannelPolicy::error;
  const std::string message =
      error_of<ConfigError>([&] { prepare_files({input}, (dir / "missing.h5").string(), options); });
  CHECK_THAT(message, Contains("run.edf") && Contains("1 required channel is missing: O2") &&
                          Contains("--missing-channels zero"));
  options.missing_channels = MissingChannelPolicy::zero;
  const auto filled = prepare_files({input}, (dir / "filled.h5").string(), options);
  CHECK(filled.runs.at(0).missing_channels == std::vector<std::string>{"O2"});
  CHECK(filled.runs.at(0).interpolated_channels.empty());
  DatasetReader zero((dir / "filled.h5").string());
  const auto b = zero.read_batch({0, 1});
  for (int64_t s = 0; s < 3200; ++s) REQUIRE(b.windows[7 * 3200 + s] == 0.0f);
  CHECK(b.windows[6 * 3200 + 5] == Approx(60.0).margin(0.1));
  const auto file = h5::File::open_read((dir / "filled.h5").string());
  CHECK(data::read_strings(file, "/runs/missing_channels") == std::vector<std::string>{"[\"O2\"]"});
  CHECK(data::read_strings(file, "/runs/interpolated_channels") == std::vector<std::string>{"[]"});
  CHECK_THAT(zero.parameters_json(), Contains("\"missing_channels\": \"zero\""));
}

TEST_CASE("Without channels, prepare takes the EEG channels with a standard position that every run has", "[data]") {
  TempDir dir;
  auto first = basic_run();
  first.eeg.channels = {"FP1", "Fp2", "ECG", "C3", "T3", "Status", "O1", "Cz", "EXG1", "Pz"};
  first.eeg.value = [](int64_t c, int64_t) { return static_cast<float>(c); };
  test::write_bids_run(dir / "bids", first);
  auto second = basic_run();
  second.sub = "02";
  second.eeg.channels = {"Pz", "Cz", "O1", "T7", "C3", "Fp1", "ECG", "Oz", "P3"};
  test::write_bids_run(dir / "bids", second);
  // Cz is marked bad in the second run: still a channel of the data, interpolated there.
  test::write_text(dir / "bids/sub-02/eeg/sub-02_task-rest_run-1_channels.tsv",
                   "name\ttype\tunits\tstatus\nCz\tEEG\tuV\tbad\nP3\tMISC\tuV\tgood\n");
  auto options = tiny_options();
  options.channels.clear();
  const auto result = prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), options);
  const std::vector<std::string> expected{"Fp1", "C3", "T7", "O1", "Cz", "Pz"};
  DatasetReader reader((dir / "out.h5").string());
  CHECK(reader.channel_names() == expected);
  CHECK(reader.num_channels() == 6);
  REQUIRE(result.runs.size() == 2);
  CHECK(result.runs[0].interpolated_channels.empty());
  CHECK(result.runs[1].interpolated_channels == std::vector<std::string>{"Cz"});
  REQUIRE(result.warnings.size() == 1);
  CHECK_THAT(result.warnings[0],
             Contains("1 EEG channel left out, not in every run: Fp2 (not in sub-02_task-rest_run-1)"));
  CHECK_THAT(reader.parameters_json(), Contains("\"channels_from_data\": true"));
  // The first run's values, in the first run's order: FP1 was channel 0, Pz channel 9.
  const auto batch = reader.read_batch({0});
  CHECK(batch.windows[0 * 3200 + 10] == Approx(0.0).margin(1e-4));
  CHECK(batch.windows[5 * 3200 + 10] == Approx(9.0).margin(1e-4));

  auto none = basic_run();
  none.sub = "03";
  none.eeg.channels = {"ECG", "EXG1"};
  TempDir other;
  test::write_bids_run(other / "bids", none);
  const std::string none_message =
      error_of<ConfigError>([&] { prepare_bids((other / "bids").string(), (other / "o.h5").string(), options); });
  CHECK_THAT(none_message, Contains("no EEG channel with a standard 10-05 position") && Contains("--channels"));
}

TEST_CASE("Intra-run split: chronological 80/10/10 with the reference's gap", "[data]") {
  SplitSpec spec;
  // The reference for 293 windows at TR 2 s: train [0,234), val [244,263), test [273,293).
  const auto labels = intra_run_split(293, 2.0, 16.0, spec);
  auto count = [&](Split s) { return std::count(labels.begin(), labels.end(), s); };
  CHECK(count(Split::train) == 234);
  CHECK(count(Split::val) == 19);
  CHECK(count(Split::test) == 20);
  CHECK(labels[233] == Split::train);
  CHECK(labels[234] == Split::excluded);
  CHECK(labels[243] == Split::excluded);
  CHECK(labels[244] == Split::val);
  CHECK(labels[262] == Split::val);
  CHECK(labels[263] == Split::excluded);
  CHECK(labels[273] == Split::test);
  // TR 0.72 s: gap ceil(20 / 0.72) = 28 windows.
  const auto fast = intra_run_split(1000, 0.72, 16.0, spec);
  CHECK(std::find(fast.begin(), fast.end(), Split::val) - fast.begin() == 800 + 28);
  // A 30 s window makes the gap ceil(30 / 2) = 15.
  const auto wide = intra_run_split(293, 2.0, 30.0, spec);
  CHECK(std::find(wide.begin(), wide.end(), Split::val) - wide.begin() == 234 + 15);
}

TEST_CASE("Intra-run split in a prepared file; z-score statistics come from the training windows only", "[data]") {
  TempDir dir;
  BidsRun run;
  run.volumes = 150;
  run.eeg.duration = 310;
  run.eeg.markers = test::volume_triggers(200, 3.0, 2.0, 150);
  run.target = [](int64_t v, int64_t r) { return r == 0 ? std::sin(0.1 * v) + 0.01 * v : 3.0 * v; };
  run.eeg.value = [](int64_t c, int64_t s) { return static_cast<float>(20.0 + c + 5.0 * std::sin(0.01 * s)); };
  test::write_bids_run(dir / "bids", run);
  auto options = tiny_options();
  options.fmri_lowpass_hz = 0.15;
  options.demean_windows = true;
  const auto result = prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), options);
  DatasetReader reader((dir / "out.h5").string());
  const int64_t n = reader.num_windows();
  REQUIRE(n == 143);
  CHECK(reader.split_mode() == SplitMode::intra_run);
  CHECK(reader.num_windows(Split::train) == 114);  // int(0.8 * 143)
  CHECK(reader.num_windows(Split::val) == 4);      // [124, 128)
  CHECK(reader.num_windows(Split::test) == 5);     // [138, 143)
  CHECK(result.windows_per_split == std::array<int64_t, 3>{114, 4, 5});
  CHECK(result.excluded_windows == 20);
  // Chronological: every train volume precedes every val volume by more than the gap, and so on.
  const auto& train = reader.indices(Split::train);
  const auto& val = reader.indices(Split::val);
  const auto& held_out = reader.indices(Split::test);
  CHECK(reader.volume_of(val.front()) - reader.volume_of(train.back()) == 11);
  CHECK(reader.volume_of(held_out.front()) - reader.volume_of(val.back()) == 11);

  // The low-pass is scipy's filtfilt(butter(5, 0.15, fs=1/TR)) over the whole run.
  std::vector<double> series;
  for (int v = 0; v < 150; ++v) series.push_back(std::sin(0.1 * v) + 0.01 * v);
  const auto f = signal::butter(5, 0.15, 0.5, signal::FilterType::lowpass);
  const auto filtered = signal::filtfilt(f.b, f.a, series);
  std::vector<int64_t> all(n);
  std::iota(all.begin(), all.end(), 0);
  const auto batch = reader.read_batch(all);
  for (int64_t i = 0; i < n; i += 17) CHECK(batch.targets_raw[i * 2] == Approx(filtered[reader.volume_of(i)]).epsilon(1e-6));

  // Statistics over the training windows, not the whole run.
  for (int r = 0; r < 2; ++r) {
    std::vector<double> x;
    for (auto i : train) x.push_back(batch.targets_raw[i * 2 + r]);
    const auto ms = signal::mean_std(x);
    CHECK(reader.normalisation().mean[r] == Approx(ms.mean).epsilon(1e-6));
    CHECK(reader.normalisation().std[r] == Approx(ms.std).epsilon(1e-6));
  }
  CHECK(reader.normalisation().mean[1] == Approx(3.0 * (7 + 120) / 2.0).epsilon(1e-3));  // volumes 7..120
  for (int64_t i = 0; i < n; i += 13) {
    CHECK(batch.targets[i * 2 + 1] ==
          Approx((batch.targets_raw[i * 2 + 1] - reader.normalisation().mean[1]) / reader.normalisation().std[1]).epsilon(1e-5));
  }
  // The stored /targets equal what the reader computes.
  const auto file = h5::File::open_read((dir / "out.h5").string());
  std::vector<float> stored(static_cast<std::size_t>(n * 2));
  file.read("/targets", h5::Type::f32, stored.data());
  for (int64_t i = 0; i < n * 2; ++i) REQUIRE(stored[i] == Approx(batch.targets[i]).margin(1e-5));
  // Windows are de-meaned per channel (the reference's baseline).
  for (int64_t c = 0; c < 8; ++c) {
    double mean = 0, peak = 0;
    for (int64_t s = 0; s < 3200; ++s) {
      mean += batch.windows[c * 3200 + s];
      peak = std::max(peak, std::abs(double(batch.windows[c * 3200 + s])));
    }
    CHECK(std::abs(mean / 3200) < 1e-4);
    CHECK(peak > 4.0);
    CHECK(peak < 10.5);
  }
}

TEST_CASE("Cross-subject and k-fold splits never mix a subject's runs", "[data]") {
  const std::vector<std::string> subjects{"05", "01", "03", "02", "04"};
  SplitSpec spec;
  spec.mode = SplitMode::cross_subject;
  spec.val_subjects = {"02"};
  spec.test_subjects = {"05", "04"};
  CHECK(cross_subject_split(subjects, spec) ==
        std::vector<Split>{Split::test, Split::train, Split::train, Split::val, Split::test});
  spec.test_subjects = {"06"};
  CHECK_THAT(error_of<ConfigError>([&] { cross_subject_split(subjects, spec); }),
             Contains("test subject '06' is not in the dataset") && Contains("01, 02, 03, 04, 05"));
  spec.test_subjects = {"02"};
  CHECK_THAT(error_of<ConfigError>([&] { cross_subject_split(subjects, spec); }), Contains("both val and test"));

  SplitSpec fractions;
  fractions.mode = SplitMode::cross_subject;
  const auto a = cross_subject_split(subjects, fractions);
  CHECK(std::count(a.begin(), a.end(), Split::train) == 3);
  CHECK(std::count(a.begin(), a.end(), Split::val) == 1);
  CHECK(std::count(a.begin(), a.end(), Split::test) == 1);
  // The same seed gives the same sets whatever the input order.
  const std::vector<std::string> sorted{"01", "02", "03", "04", "05"};
  const auto b = cross_subject_split(sorted, fractions);
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    const auto j = std::find(sorted.begin(), sorted.end(), subjects[i]) - sorted.begin();
    CHECK(a[i] == b[j]);
  }
  CHECK_THAT(error_of<ConfigError>([&] { cross_subject_split({"01", "02"}, fractions); }), Contains("leave one for training"));

  std::vector<std::string> ten;
  for (int i = 0; i < 10; ++i) ten.push_back(fmt::format("{:02d}", i));
  const auto folds = subject_folds(ten, 3, 7);
  std::array<int, 3> sizes{};
  for (auto f : folds) ++sizes.at(static_cast<std::size_t>(f));
  std::sort(sizes.begin(), sizes.end());
  CHECK(sizes == std::array<int, 3>{3, 3, 4});
  CHECK_THAT(error_of<ConfigError>([&] { subject_folds({"01", "02"}, 3, 0); }), Contains("folds must be from 2 to"));
  CHECK(fold_split(1, 1, 3) == Split::test);
  CHECK(fold_split(2, 1, 3) == Split::val);
  CHECK(fold_split(0, 1, 3) == Split::train);
  CHECK(fold_split(1, 0, 2) == Split::train);
}

TEST_CASE("Prepared cross-subject and k-fold files: labels by subject, statistics per fold", "[data]") {
  TempDir dir;
  for (const char* sub : {"01", "02", "03"}) {
    auto run = basic_run();
    run.sub = sub;
    const double offset = 100.0 * std::stoi(sub);
    run.target = [offset](int64_t v, int64_t r) { return offset + v + r; };
    test::write_bids_run(dir / "bids", run);
  }
  auto options = tiny_options();
  options.split.mode = SplitMode::cross_subject;
  options.split.val_subjects = {"02"};
  options.split.test_subjects = {"03"};
  prepare_bids((dir / "bids").string(), (dir / "cross.h5").string(), options);
  DatasetReader cross((dir / "cross.h5").string());
  REQUIRE(cross.num_windows() == 69);
  CHECK(cross.subjects() == std::vector<std::string>{"01", "02", "03"});
  for (int64_t i = 0; i < cross.num_windows(); ++i) {
    const auto& s = cross.subject_of(i);
    CHECK(cross.split_of(i) == (s == "01" ? Split::train : s == "02" ? Split::val : Split::test));
  }
  CHECK(cross.normalisation().mean[0] == Approx(100 + 18.0));  // subject 01's volumes 7..29

  options.split = SplitSpec{};
  options.split.mode = SplitMode::kfold;
  options.split.folds = 3;
  prepare_bids((dir / "bids").string(), (dir / "kfold.h5").string(), options);
  DatasetReader kfold((dir / "kfold.h5").string());
  CHECK(kfold.num_folds() == 3);
  std::set<std::string> tested;
  for (int64_t f = 0; f < 3; ++f) {
    kfold.select_fold(f);
    REQUIRE(kfold.num_windows(Split::test) == 23);
    CHECK(kfold.num_windows(Split::val) == 23);
    CHECK(kfold.num_windows(Split::train) == 23);
    const auto& subject = kfold.subject_of(kfold.indices(Split::test).front());
    for (auto i : kfold.indices(Split::test)) CHECK(kfold.subject_of(i) == subject);
    tested.insert(subject);
    const double train_offset = 100.0 * std::stoi(kfold.subject_of(kfold.indices(Split::train).front()));
    CHECK(kfold.normalisation().mean[0] == Approx(train_offset + 18.0));
  }
  CHECK(tested.size() == 3);
  CHECK_THAT(error_of<ConfigError>([&] { kfold.select_fold(3); }), Contains("fold must be 0 to 2"));
  CHECK_THAT(error_of<ConfigError>([&] { cross.select_fold(0); }), Contains("not kfold"));
}

TEST_CASE("Bad input: NaN samples and markers after the end are clear errors and leave no output", "[data]") {
  TempDir dir;
  auto run = basic_run();
  run.eeg.value = [](int64_t c, int64_t s) { return c == 3 && s == 5000 ? std::nanf("") : 1.0f; };
  test::write_bids_run(dir / "bids", run);
  const std::string nan = error_of<FormatError>([&] { prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), tiny_options()); });
  CHECK_THAT(nan, Contains("sub-01_task-rest_run-1_eeg") && Contains("'C4'") && Contains("NaN"));
  CHECK(only_output_left(dir.path(), {}));

  run.eeg.value = nullptr;
  run.eeg.markers.push_back(test::Marker{"Response", "R128", 64 * 200 + 10});
  test::write_bids_run(dir / "bids", run);
  const std::string late = error_of<FormatError>([&] { prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), tiny_options()); });
  CHECK_THAT(late, Contains("sub-01_task-rest_run-1_eeg.vmrk") && Contains("position") && Contains("12811"));
  CHECK(only_output_left(dir.path(), {}));
}

TEST_CASE("A failing run leaves no output; re-running is a no-op unless forced", "[data]") {
  TempDir dir;
  test::write_bids_run(dir / "bids", basic_run());
  auto second = basic_run();
  second.run = "2";
  second.volumes = 31;
  test::write_bids_run(dir / "bids", second);
  const std::string output = (dir / "out.h5").string();
  CHECK_THAT(error_of<ConfigError>([&] { prepare_bids((dir / "bids").string(), output, tiny_options()); }),
             Contains("31 rows"));
  CHECK(only_output_left(dir.path(), {}));

  second.volumes = 30;
  test::write_bids_run(dir / "bids", second);
  const auto first = prepare_bids((dir / "bids").string(), output, tiny_options());
  CHECK_FALSE(first.up_to_date);
  CHECK(first.num_windows == 46);
  const auto written = fs::last_write_time(output);
  const auto again = prepare_bids((dir / "bids").string(), output, tiny_options());
  CHECK(again.up_to_date);
  CHECK(again.fingerprint == first.fingerprint);
  CHECK(fs::last_write_time(output) == written);

  auto other = tiny_options();
  other.notch_hz = 50.0;
  CHECK_THAT(error_of<IoError>([&] { prepare_bids((dir / "bids").string(), output, other); }),
             Contains("already exists") && Contains("--force"));
  other.force = true;
  const auto forced = prepare_bids((dir / "bids").string(), output, other);
  CHECK_FALSE(forced.up_to_date);
  CHECK(forced.fingerprint != first.fingerprint);
  CHECK(DatasetReader(output).fingerprint() == forced.fingerprint);

  // A changed input file changes the fingerprint too.
  test::write_targets(dir / "bids/derivatives/roi/sub-01/func/sub-01_task-rest_run-1_timeseries.tsv", {"V1", "PCC"},
                      30, 2.0, [](int64_t v, int64_t) { return 2.0 * v + 1000; });
  CHECK_THAT(error_of<IoError>([&] { prepare_bids((dir / "bids").string(), output, tiny_options()); }),
             Contains("already exists"));
  CHECK(only_output_left(dir.path(), {"out.h5"}));
}

TEST_CASE("DatasetReader batches equal the written windows, in request order", "[data]") {
  TempDir dir;
  auto run = basic_run();
  run.eeg.value = [](int64_t c, int64_t s) { return static_cast<float>(c * 100000 + s); };
  test::write_bids_run(dir / "bids", run);
  auto options = tiny_options();
  options.chunk_windows = 3;
  prepare_bids((dir / "bids").string(), (dir / "out.h5").string(), options);
  DatasetReader reader((dir / "out.h5").string());
  const std::vector<int64_t> order{5, 3, 4, 10, 11, 12, 0, 22, 5};
  const auto batch = reader.read_batch(order);
  REQUIRE(batch.size() == 9);
  REQUIRE(batch.windows.size() == 9u * 8 * 3200);
  for (std::size_t b = 0; b < order.size(); ++b) {
    const int64_t first = window_end(reader, order[b]) - 3200;
    for (int64_t c : {0, 3, 7}) {
      for (int64_t s : {0, 1, 1599, 3199}) {
        REQUIRE(batch.windows[(b * 8 + c) * 3200 + s] == static_cast<float>(c * 100000 + first + s));
      }
    }
    CHECK(batch.targets_raw[b * 2] == static_cast<float>(reader.volume_of(order[b])));
  }
  CHECK_THAT(error_of<FormatError>([&] { reader.read_batch({23}); }), Contains("window index 23 out of range"));

  // The layout that other tools read.
  const auto file = h5::File::open_read((dir / "out.h5").string());
  CHECK(file.info("/windows").shape == std::vector<int64_t>{23, 8, 3200});
  CHECK(file.string_attribute("/", "format") == "neurobolt-dataset");
  CHECK(data::read_strings(file, "/runs/name") == std::vector<std::string>{"sub-01_task-rest_run-1"});
  CHECK_THAT(file.string_attribute("/", "provenance"), Contains("sub-01_task-rest_run-1_eeg.eeg") && Contains("\"size\""));
  CHECK_THAT(file.string_attribute("/", "parameters"), Contains("\"fmri_lowpass_hz\": null"));
  CHECK_THAT(reader.parameters_json(), Contains("\"window_samples\": 3200"));
  CHECK_THROWS_AS(DatasetReader((dir / "missing.h5").string()), IoError);
}

TEST_CASE("A damaged HDF5 file: an attribute of many values or an extent beyond the file is a FormatError", "[data]") {
  TempDir dir;
  const std::string path = (dir / "damaged.h5").string();
  {
    auto file = h5::File::create(path);
    // format_version as an array of 64 values: reading it into one int64 would overflow.
    const hsize_t count = 64;
    const std::vector<int64_t> versions(count, 1);
    h5::Handle space(H5Screate_simple(1, &count, nullptr));
    h5::Handle attr(H5Acreate2(file.id(), "format_version", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    REQUIRE(H5Awrite(attr.get(), H5T_NATIVE_INT64, versions.data()) >= 0);
  }
  CHECK_THAT(error_of<FormatError>([&] { h5::File::open_read(path).int_attribute("/", "format_version"); }),
             Contains("attribute 'format_version' of '/': expected one value, found 64"));
  {
    auto file = h5::File::create(path);
    // A chunked dataset of 2^40 floats with no chunk written: a file of a few KiB declares 4 TiB.
    // Refused when the file is opened (every dataset is checked then), before any read.
    const hsize_t dims[3] = {hsize_t{1} << 20, 1024, 1024}, chunk[3] = {1, 1, 1024};
    h5::Handle big_space(H5Screate_simple(3, dims, nullptr));
    h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(dcpl.get(), 3, chunk);
    h5::Handle ds(H5Dcreate2(file.id(), "/windows", H5T_IEEE_F32LE, big_space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    REQUIRE(ds.valid());
  }
  CHECK_THAT(error_of<FormatError>([&] { h5::File::open_read(path); }),
             Contains("dataset '/windows': expected at most") && Contains("[1048576, 1024, 1024] values of 4 bytes"));
}

TEST_CASE("A string table whose global heap is damaged is a FormatError, not an endless loop in HDF5", "[data]") {
  TempDir dir;
  const std::string path = (dir / "strings.h5").string();
  {
    auto file = h5::File::create(path);
    data::write_strings(file, "/names", {"Cz", "Pz", "O1"});
  }
  REQUIRE(data::read_strings(h5::File::open_read(path), "/names") == std::vector<std::string>{"Cz", "Pz", "O1"});
  // The collection's free-space object (index 0) set to 0 bytes: HDF5 1.10's decoder then never
  // moves past it (fuzz_h5_dataset).
  std::string bytes = test::read_bytes(path);
  const std::size_t heap = bytes.find("GCOL");
  REQUIRE(heap != std::string::npos);
  auto u64 = [&](std::size_t at) {
    uint64_t v = 0;
    std::memcpy(&v, &bytes[at], 8);
    return v;
  };
  const uint64_t size = u64(heap + 8);
  std::size_t pos = 16;
  while (pos + 16 <= size && (bytes[heap + pos] != 0 || bytes[heap + pos + 1] != 0)) {
    pos += 16 + (u64(heap + pos + 8) + 7) / 8 * 8;  // the objects of the strings, each padded to 8 bytes
  }
  REQUIRE(pos + 16 <= size);
  std::memset(&bytes[heap + pos + 8], 0, 8);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  CHECK_THAT(error_of<FormatError>([&] { data::read_strings(h5::File::open_read(path), "/names"); }),
             Contains("strings '/names' string 0: expected an object of a global heap collection") &&
                 Contains("object 0 of 0 bytes"));
}
