#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "neurobolt/bids.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/nifti.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using neurobolt::BidsOptions;
using neurobolt::index_bids;

namespace {

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string rows(int64_t count, int64_t columns, double scale = 1.0) {
  std::string out;
  for (int64_t v = 0; v < count; ++v) {
    for (int64_t c = 0; c < columns; ++c) out += (c ? "\t" : "") + std::to_string(scale * (v + 0.5 * c));
    out += "\n";
  }
  return out;
}

bool log_has(const neurobolt::BidsDataset& dataset, const std::string& text) {
  return std::any_of(dataset.log.begin(), dataset.log.end(),
                     [&](const std::string& line) { return line.find(text) != std::string::npos; });
}

const neurobolt::EegRun& run_named(const neurobolt::BidsDataset& dataset, const std::string& filename) {
  for (const auto& run : dataset.runs)
    if (fs::path(run.path).filename() == filename) return run;
  FAIL("no run " << filename);
  throw;
}

// A small dataset: sub-01 without sessions (two runs, one with a target), sub-02 with a session.
void make_dataset(const fs::path& root) {
  write(root / "dataset_description.json", R"({"Name": "tiny", "BIDSVersion": "1.8.0"})");
  write(root / "task-rest_eeg.json",
        R"({"TaskName": "rest", "SamplingFrequency": 500, "PowerLineFrequency": 50, "EEGReference": "Cz"})");
  write(root / "sub-01/sub-01_task-rest_eeg.json", R"({"SamplingFrequency": 1000})");
  for (const char* ext : {"vhdr", "vmrk", "eeg"})
    write(root / "sub-01/eeg" / (std::string("sub-01_task-rest_run-1_eeg.") + ext), "");
  write(root / "sub-01/eeg/sub-01_task-rest_run-1_channels.tsv",
        "name\ttype\tunits\tstatus\tstatus_description\n"
        "Fp1\tEEG\tuV\tgood\tn/a\n"
        "Fp2\tEEG\tuV\tbad\thigh impedance\n"
        "ECG\tECG\tuV\tn/a\tn/a\n");
  write(root / "sub-01/eeg/sub-01_task-rest_run-1_events.tsv",
        "onset\tduration\ttrial_type\tvalue\n0.5\t0\tscan\tR128\n2.5\tn/a\tn/a\tR128\n");
  write(root / "sub-01/eeg/sub-01_task-rest_run-2_eeg.edf", "");
  write(root / "sub-01/eeg/sub-01_task-rest_run-3_eeg.cnt", "");
  write(root / "sub-02/ses-1/eeg/sub-02_ses-1_task-rest_acq-dense_run-01_eeg.bdf", "");
  write(root / "sub-02/ses-1/eeg/sub-02_ses-1_task-rest_acq-dense_run-01_channels.tsv", "name\ttype\nA1\tEEG\n");

  const fs::path roi = root / "derivatives/roi";
  write(roi / "sub-01/func/sub-01_task-rest_run-1_atlas-X_timeseries.tsv", "V1\tV2\tPCC\n" + rows(6, 3));
  write(roi / "sub-01/func/sub-01_task-rest_run-1_atlas-X_timeseries.json",
        R"({"RepetitionTime": 2.0, "StartTime": 1.0})");
  write(roi / "sub-01/func/sub-01_task-rest_run-1_desc-confounds_timeseries.tsv", "csf\n" + rows(6, 1));
  write(roi / "task-rest_timeseries.json", R"({"RepetitionTime": 2.5})");
  write(roi / "sub-02/ses-1/func/sub-02_ses-1_task-rest_run-1_timeseries.tsv", "V1\tV2\n" + rows(4, 2) + "n/a\t1\n");
}

BidsOptions with_derivatives() {
  BidsOptions options;
  options.derivatives = {"derivatives/roi"};
  return options;
}

template <typename E>
std::string error_of(const std::string& root, const BidsOptions& options) {
  try {
    index_bids(root, options);
  } catch (const E& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("BIDS file names split into entities, suffix and extension", "[bids]") {
  const auto name = neurobolt::parse_bids_name("sub-01_ses-02_task-rest_acq-hd_run-1_eeg.vhdr");
  REQUIRE(name);
  CHECK(name->suffix == "eeg");
  CHECK(name->extension == ".vhdr");
  const auto e = name->core();
  CHECK(e.sub == "01");
  CHECK(e.ses == "02");
  CHECK(e.task == "rest");
  CHECK(e.acq == "hd");
  CHECK(e.run == "1");
  CHECK(e.to_string() == "sub-01_ses-02_task-rest_acq-hd_run-1");
  const auto bold = neurobolt::parse_bids_name("sub-01_task-rest_space-MNI152NLin6Asym_desc-preproc_bold.nii.gz");
  REQUIRE(bold);
  CHECK(bold->extension == ".nii.gz");
  CHECK(bold->get("space") == "MNI152NLin6Asym");
  CHECK(bold->get("run").empty());
  const auto root_sidecar = neurobolt::parse_bids_name("task-rest_eeg.json");
  REQUIRE(root_sidecar);
  CHECK(root_sidecar->entities.size() == 1);
  CHECK_FALSE(neurobolt::parse_bids_name("sub-01_task_rest_eeg.vhdr"));
  CHECK_FALSE(neurobolt::parse_bids_name("sub-01_sub-02_eeg.edf"));
  CHECK_FALSE(neurobolt::parse_bids_name("sub-0.1_eeg.edf"));
  CHECK_FALSE(neurobolt::parse_bids_name("dataset_description.json"));
  CHECK_FALSE(neurobolt::parse_bids_name("sub-01_task-rest_.edf"));
}

TEST_CASE("BIDS index: runs, inherited sidecars, channels, events and derivative targets", "[bids]") {
  neurobolt::test::TempDir dir;
  make_dataset(dir.path());
  const auto dataset = index_bids(dir.path().string(), with_derivatives());
  CHECK(dataset.name == "tiny");
  REQUIRE(dataset.runs.size() == 3);
  CHECK(dataset.num_with_target() == 2);

  const auto& run1 = run_named(dataset, "sub-01_task-rest_run-1_eeg.vhdr");
  CHECK(run1.entities.to_string() == "sub-01_task-rest_run-1");
  CHECK(run1.sidecar.sampling_frequency == 1000.0);  // the subject-level sidecar overrides the root's 500
  CHECK(run1.sidecar.power_line_frequency == 50.0);
  CHECK(run1.sidecar.eeg_reference == "Cz");
  CHECK(run1.sidecar.task_name == "rest");
  REQUIRE(run1.sidecar.sources.size() == 2);
  CHECK(fs::path(run1.sidecar.sources[0]).filename() == "task-rest_eeg.json");
  CHECK_THAT(run1.sidecar.json, Contains("\"SamplingFrequency\":1000"));
  REQUIRE(run1.channels.size() == 2);
  CHECK(run1.channels[0].name == "Fp1");
  CHECK(run1.channels[0].status == "good");
  CHECK(run1.channels[1].name == "ECG");
  CHECK(run1.channels[1].type == "ECG");
  CHECK(run1.channels[1].status.empty());
  CHECK(run1.bad_channels == std::vector<std::string>{"Fp2"});
  CHECK(log_has(dataset, "sub-01_task-rest_run-1_eeg.vhdr': channel 'Fp2' excluded (status bad: high impedance)"));
  REQUIRE(run1.events.size() == 2);
  CHECK(run1.events[0].onset == 0.5);
  CHECK(run1.events[0].trial_type == "scan");
  CHECK(run1.events[0].value == "R128");
  CHECK(std::isnan(run1.events[1].duration));
  CHECK(run1.events[1].trial_type.empty());

  REQUIRE(run1.target);
  CHECK(run1.target->source == "tsv");
  CHECK(run1.target->roi_names == std::vector<std::string>{"V1", "V2", "PCC"});
  CHECK(run1.target->num_volumes == 6);
  CHECK(run1.target->at(5, 2) == 6.0);
  CHECK(run1.target->repetition_time == 2.0);
  CHECK(run1.target->start_time == 1.0);
  CHECK(log_has(dataset, "desc-confounds_timeseries.tsv' is not a target: confounds"));

  const auto& run2 = run_named(dataset, "sub-01_task-rest_run-2_eeg.edf");
  CHECK_FALSE(run2.target);
  CHECK(run2.channels.empty());
  CHECK(run2.sidecar.sampling_frequency == 1000.0);
  CHECK(log_has(dataset, "sub-01_task-rest_run-2_eeg.edf': no fMRI target (usable for inference only)"));
  CHECK(log_has(dataset, "sub-01_task-rest_run-2_eeg.edf': no _channels.tsv applies"));
  CHECK(log_has(dataset, "sub-01_task-rest_run-3_eeg.cnt': EEG format '.cnt' is not supported"));

  // Session, acq on the EEG side only, run-01 == run-1; the TR is inherited from the pipeline root.
  const auto& run3 = run_named(dataset, "sub-02_ses-1_task-rest_acq-dense_run-01_eeg.bdf");
  CHECK(run3.entities.ses == "1");
  CHECK(run3.entities.acq == "dense");
  CHECK(run3.sidecar.sampling_frequency == 500.0);
  REQUIRE(run3.target);
  CHECK(run3.target->num_volumes == 5);
  CHECK(run3.target->repetition_time == 2.5);
  CHECK(std::isnan(run3.target->at(4, 0)));
  CHECK(log_has(dataset, "1 of 10 values are n/a (kept as NaN)"));

  BidsOptions eeg_only;
  eeg_only.find_targets = false;
  const auto without = index_bids(dir.path().string(), eeg_only);
  CHECK(without.runs.size() == 3);
  CHECK(without.num_with_target() == 0);
}

TEST_CASE("BIDS index: ambiguous targets are an error listing them; target entities choose", "[bids]") {
  neurobolt::test::TempDir dir;
  make_dataset(dir.path());
  const fs::path func = dir / "derivatives/roi/sub-01/func";
  write(func / "sub-01_task-rest_run-1_atlas-Y_timeseries.tsv", "A\n" + rows(6, 1));
  const std::string message = error_of<neurobolt::ConfigError>(dir.path().string(), with_derivatives());
  CHECK_THAT(message, Contains("2 fMRI targets match EEG run '") && Contains("sub-01_task-rest_run-1_eeg.vhdr'"));
  CHECK_THAT(message, Contains("sub-01_task-rest_run-1_atlas-X_timeseries.tsv") &&
                          Contains("sub-01_task-rest_run-1_atlas-Y_timeseries.tsv"));

  auto options = with_derivatives();
  options.target_entities = {{"atlas", "Y"}};
  const auto dataset = index_bids(dir.path().string(), options);
  const auto& run1 = run_named(dataset, "sub-01_task-rest_run-1_eeg.vhdr");
  REQUIRE(run1.target);
  CHECK(run1.target->roi_names == std::vector<std::string>{"A"});
  CHECK(run1.target->repetition_time == 2.5);  // no own sidecar: the pipeline root's
  CHECK_FALSE(run_named(dataset, "sub-02_ses-1_task-rest_acq-dense_run-01_eeg.bdf").target);
  // The likeliest reason a target is missing comes first in the log, naming what the files have.
  REQUIRE_FALSE(dataset.log.empty());
  CHECK_THAT(dataset.log.front(), StartsWith("2 possible target files left out for lacking atlas=Y (they have atlas: "));
}

TEST_CASE("BIDS index: malformed metadata are errors naming file, line and field", "[bids]") {
  neurobolt::test::TempDir dir;
  const fs::path root = dir.path();
  make_dataset(root);
  const std::string r = root.string();
  const fs::path eeg = root / "sub-01/eeg";

  SECTION("ragged channels.tsv") {
    write(eeg / "sub-01_task-rest_run-1_channels.tsv", "name\ttype\nFp1\tEEG\tuV\n");
    CHECK_THAT(
        error_of<neurobolt::FormatError>(r, {}),
        Contains(
            "sub-01_task-rest_run-1_channels.tsv' line 2: expected 2 tab-separated cells as in the header, found 3"));
  }
  SECTION("channels.tsv without type, with an unknown status") {
    write(eeg / "sub-01_task-rest_run-1_channels.tsv", "name\nFp1\n");
    CHECK_THAT(error_of<neurobolt::FormatError>(r, {}), Contains("required column 'type' is missing"));
    write(eeg / "sub-01_task-rest_run-1_channels.tsv", "name\ttype\tstatus\nFp1\tEEG\tmaybe\n");
    CHECK_THAT(error_of<neurobolt::FormatError>(r, {}),
               Contains("line 2, column 3 ('status'): expected good, bad or n/a, found 'maybe'"));
  }
  SECTION("events.tsv with a non-numeric onset") {
    write(eeg / "sub-01_task-rest_run-1_events.tsv", "onset\tduration\n1.0\t0\nsoon\t0\n");
    CHECK_THAT(error_of<neurobolt::FormatError>(r, {}),
               Contains("events.tsv' line 3, column 1 ('onset'): expected a finite number or n/a, found 'soon'"));
    write(eeg / "sub-01_task-rest_run-1_events.tsv", "onset\tduration\nn/a\t0\n");
    CHECK_THAT(error_of<neurobolt::FormatError>(r, {}), Contains("expected an onset in seconds, found n/a"));
  }
  SECTION("broken JSON sidecar") {
    write(root / "task-rest_eeg.json", R"({"SamplingFrequency": 500,})");
    CHECK_THAT(error_of<neurobolt::FormatError>(r, {}), Contains("task-rest_eeg.json': invalid JSON: "));
    write(root / "task-rest_eeg.json", R"([500])");
    CHECK_THAT(error_of<neurobolt::FormatError>(r, {}),
               Contains("expected a JSON object at the top level, found array"));
  }
  SECTION("a sidecar field of the wrong type names the file it came from") {
    write(root / "sub-01/sub-01_task-rest_eeg.json", R"({"SamplingFrequency": "1000"})");
    const std::string message = error_of<neurobolt::FormatError>(r, {});
    CHECK_THAT(
        message,
        Contains("sub-01_task-rest_eeg.json' field SamplingFrequency: expected a positive number, found \"1000\""));
    write(root / "sub-01/sub-01_task-rest_eeg.json", R"({"PowerLineFrequency": "n/a", "EEGReference": 3})");
    CHECK_THAT(error_of<neurobolt::FormatError>(r, {}), Contains("field EEGReference: expected a string, found 3"));
  }
  SECTION("two sidecars with as many entities at one level") {
    write(root / "acq-dense_eeg.json", R"({"SamplingFrequency": 250})");
    CHECK_THAT(error_of<neurobolt::FormatError>(r, {}),
               Contains("'acq-dense_eeg.json' and 'task-rest_eeg.json' both apply to "
                        "'sub-02/ses-1/eeg/sub-02_ses-1_task-rest_acq-dense_run-01_eeg.bdf'"));
  }
  SECTION("a non-numeric value in a target table") {
    write(root / "derivatives/roi/sub-01/func/sub-01_task-rest_run-1_atlas-X_timeseries.tsv", "V1\tV2\n1\t2\n3\tfoo\n");
    CHECK_THAT(
        error_of<neurobolt::FormatError>(r, with_derivatives()),
        Contains("atlas-X_timeseries.tsv' line 3, column 2 ('V2'): expected a finite number or n/a, found 'foo'"));
  }
  SECTION("a target without any RepetitionTime") {
    fs::remove(root / "derivatives/roi/task-rest_timeseries.json");
    CHECK_THAT(error_of<neurobolt::FormatError>(r, with_derivatives()),
               Contains("sub-02_ses-1_task-rest_run-1_timeseries.tsv': RepetitionTime is missing") &&
                   Contains("sub-02_ses-1_task-rest_run-1_timeseries.json"));
  }
  SECTION("missing dataset and derivatives folders") {
    CHECK_THAT(error_of<neurobolt::IoError>((root / "nope").string(), {}), Contains("nope' does not exist"));
    BidsOptions options;
    options.derivatives = {"derivatives/missing"};
    CHECK_THAT(error_of<neurobolt::IoError>(r, options),
               Contains("derivatives folder '") && Contains("missing' does not exist"));
  }
}

TEST_CASE("BIDS index: files in the wrong folder and odd names are skipped with a log line", "[bids]") {
  neurobolt::test::TempDir dir;
  write(dir / "sub-01/eeg/sub-02_task-rest_eeg.edf", "");
  write(dir / "sub-01/eeg/sub-01_task_rest_eeg.edf", "");
  write(dir / "sub-01/ses-1/eeg/sub-01_task-rest_eeg.edf", "");
  const auto dataset = index_bids(dir.path().string());
  CHECK(dataset.runs.empty());
  CHECK(log_has(dataset, "no dataset_description.json"));
  CHECK(log_has(dataset,
                "skipped 'sub-01/eeg/sub-02_task-rest_eeg.edf': the file name says sub-02 but it is in folder sub-01"));
  CHECK(log_has(dataset, "skipped 'sub-01/eeg/sub-01_task_rest_eeg.edf': not a valid BIDS file name"));
  CHECK(log_has(dataset, "the file name says no session but it is in folder ses-1"));
}

TEST_CASE("BIDS index: a target table must have as many rows as its raw BOLD image has volumes", "[bids]") {
  neurobolt::test::TempDir dir;
  make_dataset(dir.path());
  neurobolt::NiftiImage bold;
  bold.grid.dims = {2, 2, 2};
  bold.num_volumes = 5;
  bold.repetition_time = 2.0;
  bold.data.assign(40, 1.0f);
  fs::create_directories(dir / "sub-01/func");
  neurobolt::write_nifti((dir / "sub-01/func/sub-01_task-rest_run-1_bold.nii.gz").string(), bold);
  CHECK_THAT(error_of<neurobolt::ConfigError>(dir.path().string(), with_derivatives()),
             Contains("atlas-X_timeseries.tsv' has 6 rows, but its BOLD image '") &&
                 Contains("sub-01_task-rest_run-1_bold.nii.gz' has 5 volumes"));
  bold.num_volumes = 6;
  bold.data.assign(48, 1.0f);
  neurobolt::write_nifti((dir / "sub-01/func/sub-01_task-rest_run-1_bold.nii.gz").string(), bold);
  CHECK(index_bids(dir.path().string(), with_derivatives()).num_with_target() == 2);
  write(dir / "sub-01/func/sub-01_task-rest_run-1_bold.nii.gz", "");  // a placeholder, as in bids-examples
  const auto dataset = index_bids(dir.path().string(), with_derivatives());
  CHECK(dataset.num_with_target() == 2);
  CHECK(log_has(dataset, "row count not checked against 'sub-01/func/sub-01_task-rest_run-1_bold.nii.gz'"));
}

TEST_CASE("BIDS index: 4-D BOLD targets through an atlas, with fMRIPrep-style confounds", "[bids][nifti]") {
  neurobolt::test::TempDir dir;
  const fs::path root = dir.path();
  write(root / "dataset_description.json", R"({"Name": "bold"})");
  write(root / "task-rest_bold.json", R"({"RepetitionTime": 1.25})");
  write(root / "sub-01/eeg/sub-01_task-rest_eeg.set", "");
  write(root / "sub-02/eeg/sub-02_task-rest_eeg.set", "");

  neurobolt::NiftiGrid grid;
  grid.dims = {3, 2, 2};
  grid.affine_source = "sform";
  neurobolt::NiftiImage bold;
  bold.grid = grid;
  bold.num_volumes = 8;
  bold.repetition_time = 3.0;  // the header disagrees with the sidecar, which wins
  for (int64_t t = 0; t < 8; ++t)
    for (int64_t v = 0; v < 12; ++v) bold.data.push_back(static_cast<float>(10 * v + t * t));
  fs::create_directories(root / "sub-01/func");
  fs::create_directories(root / "sub-02/func");
  neurobolt::write_nifti((root / "sub-01/func/sub-01_task-rest_bold.nii.gz").string(), bold);
  neurobolt::NiftiImage labels = bold;
  labels.num_volumes = 1;
  labels.data = {1, 1, 1, 2, 2, 2, 0, 0, 0, 3, 3, 3};
  neurobolt::write_nifti((dir / "atlas.nii").string(), labels);
  write(dir / "atlas.txt", "1 front\n2 middle\n3 back\n");

  BidsOptions options;
  options.atlas = (dir / "atlas.nii").string();
  options.atlas_labels = (dir / "atlas.txt").string();
  options.extraction.detrend = false;
  const auto dataset = index_bids(root.string(), options);
  REQUIRE(dataset.runs.size() == 2);
  const auto& run = run_named(dataset, "sub-01_task-rest_eeg.set");
  REQUIRE(run.target);
  CHECK(run.target->source == "nifti");
  CHECK(run.target->roi_names == std::vector<std::string>{"front", "middle", "back"});
  CHECK(run.target->num_volumes == 8);
  CHECK(run.target->repetition_time == 1.25);
  CHECK(run.target->at(3, 0) == Approx(10.0 + 9));  // voxels 0..2 at t = 3
  CHECK(run.target->at(2, 2) == Approx(100.0 + 4));
  CHECK(log_has(dataset, "the NIfTI header gives a repetition time of 3 s, the sidecar 1.25 s; using the sidecar"));
  CHECK_FALSE(run_named(dataset, "sub-02_task-rest_eeg.set").target);

  // Confound regression: the confounds file sits in a derivatives folder (as fMRIPrep writes it).
  options.extraction.detrend = true;
  options.extraction.confound_columns = {"global_signal"};
  CHECK_THAT(error_of<neurobolt::ConfigError>(root.string(), options),
             Contains("confound regression needs a *_desc-confounds_timeseries.tsv for BOLD"));
  std::string confounds = "global_signal\ttrans_x\n";
  for (int t = 0; t < 8; ++t) confounds += std::to_string(t * t) + "\t0\n";
  write(root / "derivatives/fmriprep/sub-01/func/sub-01_task-rest_desc-confounds_timeseries.tsv", confounds);
  options.derivatives = {"derivatives/fmriprep"};
  const auto cleaned = index_bids(root.string(), options);
  const auto& target = *run_named(cleaned, "sub-01_task-rest_eeg.set").target;
  for (int64_t t = 0; t < 8; ++t)
    for (int64_t r = 0; r < 3; ++r) CHECK(target.at(t, r) == Approx(0.0).margin(1e-9));  // t^2 fully explained

  // The real EPI with an MNI atlas: the grid mismatch surfaces through the index.
  const fs::path real = neurobolt::test::shared_dir() / "data/real/nifti";
  fs::copy_file(real / "example4d.nii.gz", root / "sub-02/func/sub-02_task-rest_bold.nii.gz", fs::copy_options::none);
  options.atlas = (real / "aal.nii.gz").string();
  options.atlas_labels = (real / "aal.nii.txt").string();
  options.extraction.confound_columns.clear();
  options.target_entities = {{"sub", "02"}};
  CHECK_THAT(error_of<neurobolt::ConfigError>(root.string(), options),
             Contains("grid mismatch") && Contains("128x96x24") && Contains("181x217x181"));
}

TEST_CASE("BIDS index: the real eeg_rest_fmri sidecars (bids-examples)", "[bids]") {
  const fs::path real = neurobolt::test::shared_dir() / "data/real/eegfmri_headers_only/bids_eeg_rest_fmri";
  // The shared copy is not a complete tree (no sub-* folders): its root sidecars parse, no runs.
  const auto as_shipped = index_bids(real.string());
  CHECK(as_shipped.name == "EEG, fMRI and NODDI at rest'");
  CHECK(as_shipped.runs.empty());

  // Rebuilt as the upstream layout: root sidecars, sub-32/eeg with the real header, and an ROI table.
  neurobolt::test::TempDir dir;
  const fs::path root = dir.path();
  for (const char* name : {"dataset_description.json", "task-rest_eeg.json", "task-rest_bold.json"})
    fs::copy_file(real / name, root / name);
  fs::create_directories(root / "sub-32/eeg");
  for (const char* ext : {".vhdr", ".vmrk"})
    fs::copy_file(real / "raw" / (std::string("sub-32_task-rest_eeg") + ext),
                  root / "sub-32/eeg" / (std::string("sub-32_task-rest_eeg") + ext));
  write(root / "derivatives/roi/sub-32/func/sub-32_task-rest_timeseries.tsv", "DMN\tVIS\tSMN\n" + rows(300, 3, 0.01));

  auto options = with_derivatives();
  const auto dataset = index_bids(root.string(), options);
  REQUIRE(dataset.runs.size() == 1);
  const auto& run = dataset.runs.front();
  CHECK(run.entities.to_string() == "sub-32_task-rest");
  CHECK(run.sidecar.sampling_frequency == 5000.0);
  CHECK(run.sidecar.power_line_frequency == 50.0);
  CHECK(run.sidecar.eeg_reference == "FCz");
  CHECK(run.sidecar.task_name == "rest");
  CHECK_THAT(run.sidecar.json, Contains("\"ManufacturersModelName\":\"BrainAmp MR\""));
  REQUIRE(run.target);
  CHECK(run.target->num_volumes == 300);
  CHECK(run.target->repetition_time == Approx(2.16));
  CHECK(log_has(dataset, "RepetitionTime 2.16 s taken from 'task-rest_bold.json'"));
}
