// End to end: a small simulated BIDS dataset (neurobolt simulate's library call) prepared into
// an HDF5 dataset and streamed back.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/roi.hpp"
#include "neurobolt/signal.hpp"
#include "neurobolt/simulate.hpp"
#include "test_support.hpp"

using namespace neurobolt;

TEST_CASE("A simulated dataset prepares end to end and streams back", "[data][sim]") {
  test::TempDir dir;
  SimulationConfig sim = SimulationConfig::defaults();
  sim.subjects = 2;
  sim.minutes = 1.0;
  sim.sample_rate = 250.0;
  sim.repetition_time = 2.0;
  sim.first_volume = 5.0;
  sim.seed = 11;
  sim.threads = 1;
  const auto root = dir / "sim";
  write_simulated_dataset(sim, root.string(), false);

  PrepareOptions options;
  options.channels = {"FP1", "FP2", "C3", "C4", "T7", "T8", "O1", "O2"};
  // Every derivatives folder is searched by default: the ground truth is not named as targets,
  // so each run finds exactly its one ROI table.
  options.split.mode = SplitMode::kfold;
  options.split.folds = 2;
  const auto result = prepare_bids(root.string(), (dir / "sim.h5").string(), options);
  REQUIRE(result.runs.size() == 2);
  for (const auto& run : result.runs) {
    CHECK(run.onset_source == "trigger 'R128' (EEG annotations)");
    CHECK(run.missing_channels.empty());
    CHECK(run.interpolated_triggers == 0);
    // Volumes at 5, 7, ... s: those before 16 s have no full window.
    CHECK(run.skipped_before_start == 6);
    CHECK(run.num_windows == run.num_volumes - 6);
  }

  DatasetReader reader((dir / "sim.h5").string());
  CHECK(reader.num_windows() == result.num_windows);
  CHECK(reader.subjects() == std::vector<std::string>{"01", "02"});
  CHECK(reader.num_rois() == static_cast<int64_t>(roi_preset("roi16").size()));
  for (int64_t fold = 0; fold < 2; ++fold) {
    reader.select_fold(fold);
    CHECK(reader.num_windows(Split::train) + reader.num_windows(Split::test) == reader.num_windows());
    CHECK(reader.num_windows(Split::val) == 0);
  }

  // Onsets are the simulated volume times (to the EEG sample); targets the low-passed BOLD.
  const auto run = simulate_run(sim, 0, 0, 0);
  const auto target = read_timeseries_tsv(result.runs[0].target_path);
  const auto f = signal::butter(5, 0.15, 0.5, signal::FilterType::lowpass);
  std::vector<double> roi0;
  for (int64_t v = 0; v < target.num_volumes; ++v) roi0.push_back(target.at(v, 0));
  const auto filtered = signal::filtfilt(f.b, f.a, roi0);
  const auto batch = reader.read_batch({0, 1, 2, 10});
  for (int64_t b = 0; b < batch.size(); ++b) {
    const int64_t i = batch.indices[b];
    CHECK(reader.subject_of(i) == "01");
    CHECK(reader.onset_of(i) == Approx(run.volume_times.at(reader.volume_of(i))).margin(0.5 / 250));
    CHECK(batch.targets_raw[b * reader.num_rois()] == Approx(filtered.at(reader.volume_of(i))).epsilon(1e-4));
  }
  double energy = 0;
  for (float x : batch.windows) {
    REQUIRE(std::isfinite(x));
    energy += static_cast<double>(x) * x;
  }
  const double rms = std::sqrt(energy / static_cast<double>(batch.windows.size()));
  CHECK(rms > 0.5);
  CHECK(rms < 500.0);
}
