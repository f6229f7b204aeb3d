// Descriptions for `neurobolt info PATH`: real recordings of every format (values from MNE-Python's
// reading in ../shared/data/real/expected and from the files' documented content), a simulated
// BIDS dataset with known layout and timing, and the dataset prepared from it.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/h5.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/describe.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/simulate.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using nlohmann::json;
using namespace neurobolt;

namespace {

std::string real(const std::string& relative) { return (test::shared_dir() / "data" / "real" / relative).string(); }

const LabelCount* find_label(const RecordingSummary& s, const std::string& label) {
  for (const auto& l : s.labels)
    if (l.label == label) return &l;
  return nullptr;
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// 2 subjects x 1 run x 1 min at 250 Hz, TR 2 s, first volume at 5 s: floor((60 - 5) / 2) = 27
// volumes whose acquisition ends within the minute, at 5, 7, ..., 57 s.
SimulationConfig small_simulation() {
  SimulationConfig sim = SimulationConfig::defaults();
  sim.subjects = 2;
  sim.minutes = 1.0;
  sim.sample_rate = 250.0;
  sim.repetition_time = 2.0;
  sim.first_volume = 5.0;
  sim.seed = 5;
  sim.threads = 1;
  return sim;
}
constexpr int64_t kSimVolumes = 27;

// One simulated dataset for the tests that only read it.
const fs::path& simulated_root() {
  static test::TempDir dir;
  static const fs::path root = [] {
    const fs::path r = dir / "sim";
    write_simulated_dataset(small_simulation(), r.string(), false);
    return r;
  }();
  return root;
}

}  // namespace

TEST_CASE("describe: EDF+ with annotations (PhysioNet motor imagery)", "[describe]") {
  const auto s = describe_recording(real("edf/test_edf_overlapping_annotations.edf"));
  CHECK(s.format == "EDF+C");
  CHECK(s.sample_rate == 128.0);
  CHECK(s.channels.size() == 64);
  CHECK(s.num_samples == 15872);
  CHECK(s.duration == Approx(124.0));
  CHECK(s.num_annotations == 38);
  REQUIRE(s.labels.size() == 3);
  // Most frequent first.
  CHECK(s.labels[0].label == "T0");
  CHECK(s.labels[0].count == 19);
  CHECK(s.labels[1].label == "T1");
  CHECK(s.labels[1].count == 10);
  CHECK(s.labels[2].label == "T2");
  CHECK(s.labels[2].count == 9);
  CHECK_FALSE(s.labels[0].trigger);
  CHECK(s.triggers.empty());
  CHECK(s.gaps.empty());

  const std::string text = format_recording(s);
  CHECK_THAT(text, Contains("EDF+C, 128 Hz, 64 channels"));
  CHECK_THAT(text, Contains("38, 3 distinct labels"));
  CHECK_THAT(text, Contains("none (looked for 'R128'"));

  const json j = json::parse(recording_json(s));
  CHECK(j["kind"] == "recording");
  CHECK(j["num_channels"] == 64);
  CHECK(j["annotations"]["count"] == 38);
  CHECK(j["annotations"]["labels"][0]["label"] == "T0");
  CHECK(j["triggers"].empty());
}

TEST_CASE("describe: BrainVision EEG-fMRI header with scanner markers", "[describe]") {
  const auto dir = fs::path(real("eegfmri_headers_only/bids_eeg_rest_fmri"));
  // The corrected recording: 250 Hz, 300 "Scanner/Scan Start" volume markers 2.16 s apart; its
  // data file is not available, so this also shows that only the header is read.
  const auto s = describe_recording((dir / "derivatives" / "sub-32_task-rest_eeg.vhdr").string());
  CHECK(s.format == "BrainVision");
  CHECK(s.sample_rate == 250.0);
  CHECK(s.channels.size() == 64);
  CHECK(s.num_samples == 162023);
  CHECK(s.start_time == "2013-04-10T10:27:40.488278");  // its .vmrk New Segment
  const LabelCount* scans = find_label(s, "Scanner/Scan Start");
  REQUIRE(scans != nullptr);
  CHECK(scans->count == 300);
  CHECK(scans->trigger);
  for (const auto& l : s.labels) CHECK(l.trigger == (l.label == "Scanner/Scan Start"));
  REQUIRE(s.triggers.size() == 1);
  const auto& t = s.triggers.front();
  CHECK(t.label == "Scan Start");
  CHECK(t.labels == std::vector<std::string>{"Scanner/Scan Start"});
  CHECK(t.source == "EEG annotations");
  CHECK(t.count == 300);
  CHECK(t.first_onset == Approx(36 / 250.0));
  CHECK(t.last_onset == Approx(161496 / 250.0));
  CHECK(t.median_interval == Approx(2.16).margin(1e-9));
  CHECK(t.irregular_intervals == 0);

  const std::string text = format_recording(s);
  CHECK_THAT(text, Contains("Scanner/Scan Start   <- volume trigger"));
  CHECK_THAT(text, Contains("Scan Start: 300 in EEG annotations (as 'Scanner/Scan Start')"));
  CHECK_THAT(text, Contains("every 2.16 s"));
  const json j = json::parse(recording_json(s));
  CHECK(j["triggers"][0]["count"] == 300);
  CHECK(j["triggers"][0]["median_interval"].get<double>() == Approx(2.16));
  CHECK(j["start_time"] == "2013-04-10T10:27:40.488278");

  // The raw 5 kHz header: the reader's warning (no data file to count samples) is passed on.
  const auto raw = describe_recording((dir / "raw" / "sub-32_task-rest_eeg.vhdr").string());
  CHECK(raw.sample_rate == 5000.0);
  CHECK(raw.channels[31].type == ChannelType::ecg);
  REQUIRE_FALSE(raw.warnings.empty());
  CHECK_THAT(format_recording(raw), Contains("number of samples is unknown"));
}

TEST_CASE("describe: BDF and EEGLAB recordings", "[describe]") {
  const auto bdf = describe_recording(real("bdf/mne_test.bdf"));
  CHECK(bdf.format == "BDF");
  CHECK(bdf.sample_rate == 2048.0);
  CHECK(bdf.channels.size() == 73);
  CHECK(bdf.num_samples == 2048);
  CHECK(bdf.channels.back().name == "Status");
  CHECK(bdf.channels.back().type == ChannelType::trigger);
  CHECK(bdf.num_annotations == 0);
  const std::string bdf_text = format_recording(bdf);
  CHECK_THAT(bdf_text, Contains("TRIGGER, Boolean: Status"));
  CHECK_THAT(bdf_text, Contains("1 TRIGGER"));

  const auto set = describe_recording(real("eeglab/eeglab_data.set"));
  CHECK(set.format == "EEGLAB");
  CHECK(set.sample_rate == 128.0);
  CHECK(set.channels.size() == 32);
  CHECK(set.num_samples == 30504);
  CHECK(set.num_annotations == 154);
  REQUIRE(set.labels.size() == 2);
  CHECK(set.labels[0].label == "square");
  CHECK(set.labels[0].count == 80);
  CHECK(set.labels[1].label == "rt");
  CHECK(set.labels[1].count == 74);
  CHECK(set.triggers.empty());
}

TEST_CASE("describe: triggers with a gap and duplicates count irregular intervals", "[describe]") {
  Recording r;
  r.source = "synthetic.vhdr";
  r.format = "BrainVision";
  r.sample_rate = 100.0;
  r.num_samples = 10000;
  for (int k = 0; k < 10; ++k) {
    if (k == 6) continue;  // one missing volume: an interval of 2 TR
    r.annotations.push_back(Annotation{1.0 + 2.5 * k, 0.0, "Response/R128", "Response"});
  }
  r.annotations.push_back(Annotation{3.5, 0.0, "Response/R128", "Response"});  // a duplicate
  r.annotations.push_back(Annotation{50.0, 0.0, "volume", ""});
  const auto s = summarize_recording(r);
  REQUIRE(s.triggers.size() == 2);
  CHECK(s.triggers[0].label == "R128");
  CHECK(s.triggers[0].count == 10);
  CHECK(s.triggers[0].median_interval == Approx(2.5));
  CHECK(s.triggers[0].irregular_intervals == 2);  // the 0 s duplicate and the 5 s gap
  CHECK(s.triggers[1].label == "volume");
  CHECK(std::isnan(s.triggers[1].median_interval));
  const std::string text = format_recording(s);
  CHECK_THAT(text, Contains("2 intervals more than 10 % off"));
  CHECK_THAT(text, Contains("prepare uses 'R128'"));
  // NaN is written as null.
  CHECK(json::parse(recording_json(s))["triggers"][1]["median_interval"].is_null());
}

TEST_CASE("describe: a simulated BIDS dataset", "[describe][sim]") {
  const fs::path& root = simulated_root();
  const auto s = describe_bids(root.string());
  CHECK(s.name.find("neurobolt") != std::string::npos);
  CHECK(s.subjects == std::vector<std::string>{"01", "02"});
  CHECK(s.sessions.empty());
  CHECK(s.tasks == std::vector<std::string>{"rest"});
  REQUIRE(s.runs.size() == 2);
  CHECK(s.num_with_target == 2);
  REQUIRE(s.runs_per_subject.size() == 2);
  CHECK(s.runs_per_subject[0].value == "01");
  CHECK(s.runs_per_subject[0].count == 1);
  // Both pipeline folders hold sub-* folders; only the first holds targets.
  CHECK(s.derivatives == std::vector<std::string>{"derivatives/neurobolt-sim", "derivatives/neurobolt-sim-truth"});
  REQUIRE(s.formats.size() == 1);
  CHECK(s.formats[0].value == "EDF+C");
  CHECK(s.formats[0].count == 2);
  REQUIRE(s.sample_rates.size() == 1);
  CHECK(s.sample_rates[0].value == 250.0);
  REQUIRE(s.channel_counts.size() == 1);
  CHECK(s.channel_counts[0].value == 32);  // mr32: 31 EEG + ECG
  REQUIRE(s.repetition_times.size() == 1);
  CHECK(s.repetition_times[0].value == 2.0);
  REQUIRE(s.target_origins.size() == 1);
  CHECK(s.target_origins[0].value == "derivatives/neurobolt-sim");
  std::vector<std::string> preset_rois;
  for (const auto& roi : roi_preset("roi16")) preset_rois.push_back(roi.name);
  CHECK(s.roi_names == preset_rois);
  CHECK(s.roi_mismatches.empty());
  CHECK(s.target_error.empty());
  for (const auto& r : s.runs) {
    INFO(r.path);
    CHECK(r.error.empty());
    CHECK(r.path == fmt::format("sub-{}/eeg/sub-{}_task-rest_run-1_eeg.edf", r.entities.sub, r.entities.sub));
    CHECK(r.duration == Approx(60.0));
    CHECK(r.num_volumes == kSimVolumes);
    CHECK(r.trigger.label == "R128");
    CHECK(r.trigger.source == "EEG annotations");
    CHECK(r.trigger.count == kSimVolumes);
    CHECK(r.trigger.first_onset == Approx(5.0).margin(0.5 / 250));
    CHECK(r.trigger.median_interval == Approx(2.0).margin(1.0 / 250));
    CHECK(r.trigger.irregular_intervals == 0);
    CHECK(r.notes.empty());
    CHECK(r.target_origin == "derivatives/neurobolt-sim");
    CHECK(r.bad_channels.empty());
  }
  // The ground-truth folder is explained as such, not called a folder without targets.
  CHECK(std::any_of(s.log.begin(), s.log.end(), [](const auto& l) {
    return l.find("neurobolt-sim-truth") != std::string::npos && l.find("is simulation ground truth") != std::string::npos;
  }));
  CHECK(std::none_of(s.log.begin(), s.log.end(), [](const auto& l) { return l.find("holds no target") != std::string::npos; }));

  const std::string text = format_bids(s);
  CHECK_THAT(text, Contains("subjects     2: 01 02"));
  CHECK_THAT(text, Contains("2 EEG runs (sub-01 1, sub-02 1), 2 with an fMRI target"));
  CHECK_THAT(text, Contains("EDF+C (2 runs); 250 Hz (2 runs); 32 channels (2 runs)"));
  CHECK_THAT(text, Contains("TR           2 s (2 runs)"));
  CHECK_THAT(text, Contains("ROIs         16: "));
  CHECK_THAT(text, Contains("R128: 27 in EEG annotations from 5 s to 57 s, every 2 s"));

  const json j = json::parse(bids_json(s));
  CHECK(j["kind"] == "bids");
  CHECK(j["num_runs"] == 2);
  CHECK(j["runs_per_subject"]["02"] == 1);
  CHECK(j["sample_rates"][0]["value"] == 250.0);
  CHECK(j["runs"][0]["trigger"]["count"] == kSimVolumes);
  CHECK(j["runs"][0]["target"]["num_volumes"] == kSimVolumes);
  CHECK(j["roi_names"].size() == 16);
  CHECK(j["target_error"].is_null());

  // An explicit derivatives folder is the only one searched.
  BidsOptions options;
  options.derivatives = {"derivatives/neurobolt-sim"};
  const auto only = describe_bids(root.string(), options);
  CHECK(only.derivatives == options.derivatives);
  CHECK(only.num_with_target == 2);
}

TEST_CASE("describe: BIDS problems are shown where they are", "[describe][sim]") {
  test::TempDir dir;
  const fs::path root = dir / "sim";
  fs::copy(simulated_root(), root, fs::copy_options::recursive);
  const fs::path eeg = root / "sub-01" / "eeg";

  // A bad channel, a sidecar TR that contradicts the triggers, a target missing its last
  // volume, and an unreadable EEG file.
  const fs::path channels = eeg / "sub-01_task-rest_run-1_channels.tsv";
  std::string table = test::read_bytes(channels);
  const auto header_end = table.find('\n');
  REQUIRE(table.substr(0, header_end).find("status") != std::string::npos);
  const auto o1 = table.find("\nO1\t");
  REQUIRE(o1 != std::string::npos);
  const auto o1_end = table.find('\n', o1 + 1);
  const std::string row = table.substr(o1 + 1, o1_end - o1 - 1);
  const auto status = row.find("\tgood");
  REQUIRE(status != std::string::npos);
  table.replace(o1 + 1 + status, 5, "\tbad");
  write(channels, table);
  const fs::path sidecar = root / "derivatives" / "neurobolt-sim" / "sub-01" / "func" /
                           "sub-01_task-rest_run-1_desc-roi_timeseries.json";
  json meta = json::parse(test::read_bytes(sidecar));
  meta["RepetitionTime"] = 3.0;
  write(sidecar, meta.dump());
  const fs::path target = sidecar.parent_path() / "sub-01_task-rest_run-1_desc-roi_timeseries.tsv";
  std::string rows = test::read_bytes(target);
  rows.erase(rows.find_last_of('\n', rows.size() - 2) + 1);
  write(target, rows);
  const fs::path edf2 = root / "sub-02" / "eeg" / "sub-02_task-rest_run-1_eeg.edf";
  write(edf2, "0       not an EDF header");

  auto s = describe_bids(root.string());
  REQUIRE(s.runs.size() == 2);
  const auto& one = s.runs[0];
  CHECK(one.bad_channels == std::vector<std::string>{"O1"});
  CHECK(one.repetition_time == 3.0);
  REQUIRE(one.notes.size() == 2);
  CHECK_THAT(one.notes[0], Contains("every 2 s, but the target's TR is 3 s"));
  CHECK_THAT(one.notes[1], Contains("27 'R128' triggers for 26 target volumes"));
  const auto& two = s.runs[1];
  CHECK_THAT(two.error, Contains("sub-02_task-rest_run-1_eeg.edf"));
  CHECK(two.format.empty());
  CHECK(two.has_target);
  // Only readable headers count in the EEG tallies; both targets count.
  REQUIRE(s.formats.size() == 1);
  CHECK(s.formats[0].count == 1);
  CHECK(s.repetition_times.size() == 2);
  const std::string text = format_bids(s);
  CHECK_THAT(text, Contains("bad channels: O1"));
  CHECK_THAT(text, Contains("EEG unreadable: "));
  CHECK_THAT(text, Contains("note: 'R128' triggers come every 2 s"));
  const json j = json::parse(bids_json(s));
  CHECK(j["runs"][0]["bad_channels"][0] == "O1");
  CHECK(j["runs"][1].contains("error"));

  // Two targets for one run: indexing fails on them; the EEG side is still described.
  fs::copy(root / "derivatives" / "neurobolt-sim", root / "derivatives" / "copy", fs::copy_options::recursive);
  s = describe_bids(root.string());
  CHECK_THAT(s.target_error, Contains("fMRI targets match EEG run"));
  CHECK(s.num_with_target == 0);
  CHECK(s.runs.size() == 2);
  CHECK_THAT(format_bids(s), Contains("error: "));
}

TEST_CASE("describe: a prepared dataset", "[describe][sim]") {
  test::TempDir dir;
  PrepareOptions options;
  options.channels = {"FP1", "FP2", "C3", "C4", "T7", "T8", "O1", "O2"};
  options.split.mode = SplitMode::cross_subject;
  options.split.val_subjects = {};
  options.split.test_subjects = {"02"};
  options.split.val_subject_fraction = 0.0;
  const auto output = (dir / "data.h5").string();
  const auto result = prepare_bids(simulated_root().string(), output, options);

  const auto s = describe_dataset(output);
  CHECK(s.num_windows == result.num_windows);
  CHECK(s.num_windows == 2 * (kSimVolumes - 6));  // volumes before 16 s have no full window
  CHECK(s.num_channels == 8);
  CHECK(s.channel_names.size() == 8);
  CHECK(s.window_samples == 3200);
  CHECK(s.sample_rate == 200.0);
  CHECK(s.num_rois == 16);
  CHECK(s.split_mode == "cross-subject");
  CHECK(s.windows_per_split == result.windows_per_split);
  CHECK(s.windows_per_split[2] == kSimVolumes - 6);
  CHECK(s.excluded_windows == 0);
  CHECK(s.subjects == std::vector<std::string>{"01", "02"});
  REQUIRE(s.runs.size() == 2);
  CHECK(s.runs[1].subject == "02");
  CHECK(s.runs[1].windows == kSimVolumes - 6);
  CHECK(s.runs[1].windows_per_split[2] == kSimVolumes - 6);
  CHECK(s.fingerprint == result.fingerprint);
  CHECK(s.file_bytes == static_cast<int64_t>(fs::file_size(output)));

  const std::string text = format_dataset(s);
  CHECK_THAT(text, Contains("42 x 8 channels x 3200 samples (16 s at 200 Hz)"));
  CHECK_THAT(text, Contains("cross-subject: train 21, val 0, test 21"));
  CHECK_THAT(text, Contains("fingerprint  " + result.fingerprint));
  const json j = json::parse(dataset_json(s));
  CHECK(j["kind"] == "dataset");
  CHECK(j["num_windows"] == 42);
  CHECK(j["splits"]["test"] == 21);
  CHECK(j["parameters"].is_object());
  CHECK(j["provenance"].is_object());
  CHECK(j["runs"][0]["name"] == "sub-01_task-rest_run-1");
}

TEST_CASE("describe: what a path is", "[describe]") {
  test::TempDir dir;
  CHECK(info_kind(simulated_root().string()) == InfoKind::bids);
  CHECK(info_kind(real("edf/eeglab_test.edf")) == InfoKind::recording);
  CHECK(info_kind(real("eeglab/eeglab_data.set")) == InfoKind::recording);
  CHECK(info_kind(real("brainvision/mne_test/test.vhdr")) == InfoKind::recording);
  // A companion file goes to the reader, whose error names the header to give instead.
  CHECK(info_kind(real("brainvision/mne_test/test.vmrk")) == InfoKind::recording);
  CHECK_THAT(test::error_of([] { describe_recording(real("brainvision/mne_test/test.vmrk")); }), Contains(".vhdr"));
  CHECK(info_kind("neurobolt-tiny") == InfoKind::model);
  CHECK(info_kind((test::source_dir() / "models" / "neurobolt-tiny.json").string()) == InfoKind::model);
  CHECK(std::string(to_string(InfoKind::dataset)) == "dataset");

  const auto missing = (dir / "nothing.edf").string();
  CHECK_THROWS_AS(info_kind(missing), IoError);
  CHECK_THAT(test::error_of([&] { info_kind(missing); }),
             Contains("nothing.edf': no such file or folder") && Contains("a BIDS dataset folder"));

  write(dir / "notes.txt", "hello");
  CHECK_THROWS_AS(info_kind((dir / "notes.txt").string()), FormatError);
  CHECK_THAT(test::error_of([&] { info_kind((dir / "notes.txt").string()); }),
             Contains("notes.txt") && Contains("found a file with extension '.txt'"));

  // HDF5 files by their format attribute, whatever their extension.
  {
    auto other = h5::File::create((dir / "other.h5").string());
    other.set_attribute("/", "format", "something-else");
    auto dataset = h5::File::create((dir / "data.bin").string());
    dataset.set_attribute("/", "format", "neurobolt-dataset");
  }
  CHECK_THAT(test::error_of([&] { info_kind((dir / "other.h5").string()); }),
             Contains("other.h5") && Contains("expected 'neurobolt-dataset'") && Contains("found 'something-else'"));
  CHECK(info_kind((dir / "data.bin").string()) == InfoKind::dataset);
  write(dir / "fake.h5", "not hdf5");
  CHECK_THROWS_AS(info_kind((dir / "fake.h5").string()), FormatError);
}

TEST_CASE("describe: a model as JSON", "[describe]") {
  const ModelConfig config = builtin_config("neurobolt-tiny");
  const json j = json::parse(model_json("built-in config", config, {10, 20, 3}, R"({"epoch": 4})"));
  CHECK(j["kind"] == "model");
  CHECK(j["name"] == "neurobolt-tiny");
  CHECK(j["config"]["embed_dim"] == config.embed_dim);
  CHECK(j["parameters"]["total"] == 33);
  CHECK(j["metadata"]["epoch"] == 4);
}
