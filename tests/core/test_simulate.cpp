// The EEG-fMRI simulator (neurobolt simulate) and the EDF+ writer: the head model against closed
// forms and MNE-Python, the physics the config asks for (band peaks, HRF convolution, noise
// ceilings), determinism, the BIDS dataset read back by the readers and index_bids, atomic
// output, and a classical band-power regression that must find the coupling across subjects.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <complex>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <unsupported/Eigen/FFT>

#include "neurobolt/bids.hpp"
#include "neurobolt/edf_writer.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"
#include "neurobolt/signal.hpp"
#include "neurobolt/simulate.hpp"
#include "sim/scanner.hpp"
#include "sim/sim_internal.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using namespace neurobolt;
using neurobolt::test::read_bytes;

namespace {

// A small, fast configuration: few channels, one minute, few subjects.
SimulationConfig small_config() {
  SimulationConfig c = SimulationConfig::defaults();
  c.subjects = 2;
  c.runs = 1;
  c.minutes = 1.0;
  c.sample_rate = 250.0;
  c.channels = {"Fp1", "Fp2", "C3", "C4", "Pz", "O1", "O2", "Oz", "ECG"};
  c.threads = 2;
  return c;
}

std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = read_bytes(e.path());
  return files;
}

std::vector<double> channel(const Recording& rec, const std::string& name) {
  const int64_t c = rec.find_channel(name);
  REQUIRE(c >= 0);
  return std::vector<double>(rec.channel_data(c), rec.channel_data(c) + rec.num_samples);
}

double value_at(const signal::Spectrum& s, double f) {
  const auto it = std::min_element(s.frequencies.begin(), s.frequencies.end(),
                                   [&](double a, double b) { return std::fabs(a - f) < std::fabs(b - f); });
  return s.power[static_cast<std::size_t>(it - s.frequencies.begin())];
}

// Frequency of the largest power in [low, high].
double peak_in(const signal::Spectrum& s, double low, double high) {
  double best = -1.0, at = 0.0;
  for (std::size_t i = 0; i < s.frequencies.size(); ++i)
    if (s.frequencies[i] >= low && s.frequencies[i] <= high && s.power[i] > best) {
      best = s.power[i];
      at = s.frequencies[i];
    }
  return at;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Head model

TEST_CASE("the sphere series equals the closed form for a homogeneous sphere", "[sim]") {
  const sim::HeadSphere head = sim::make_head_sphere(HeadModel{{1.0}, {0.33}});
  const std::array<double, 3> q{0.3e-8, -0.5e-8, 0.8e-8};
  const double R = 0.09;
  for (const std::array<double, 3>& dipole :
       {std::array<double, 3>{0.01, 0.02, 0.05}, {0.0, 0.0, 0.07}, {-0.03, 0.04, -0.02}, {0.06, -0.01, 0.04}}) {
    for (const std::array<double, 3>& e : {std::array<double, 3>{0.0, 0.0, R},
                                           {0.6 * R, 0.0, 0.8 * R},
                                           {-0.6 * R, 0.48 * R, -0.64 * R},
                                           {0.0, -R, 0.0}}) {
      const double series = sim::sphere_potential(head, dipole, q, e);
      const double closed = sim::homogeneous_sphere_potential(0.33, dipole, q, e);
      CHECK(series == Approx(closed).epsilon(1e-9));
    }
  }
  // A dipole at the centre: only the n = 1 term, V = 3 q.r / (4 pi sigma R^3).
  const std::array<double, 3> e{0.0, 0.0, R};
  CHECK(sim::sphere_potential(head, {0.0, 0.0, 0.0}, q, e) == Approx(3.0 * q[2] * R / (4.0 * M_PI * 0.33 * R * R * R)));
}

TEST_CASE("the four-shell sphere agrees with MNE-Python's Berg-Scherg approximation", "[sim]") {
  // Reference: MNE-Python 1.3,
  //   sph = mne.make_sphere_model(r0=(0, 0, 0), head_radius=0.09)   # 0.90/0.92/0.97/1 x R, 0.33/1/0.004/0.33 S/m
  //   B = mne.forward._compute_forward._eeg_spherepot_coil(rr[None], (e[None], None, [1.], [0]), sph)
  //   B[:, 0] @ q
  // for rr = (0.01, 0.02, 0.05) m, q = (0.3, -0.5, 0.8) x 1e-8 A m. MNE sums three fitted
  // equivalent dipoles; the exact series differs from it by < 0.2%.
  const sim::HeadSphere head = sim::make_head_sphere(HeadModel{});
  const double R = 0.09;
  const std::array<double, 3> dipole{0.01, 0.02, 0.05}, q{0.3e-8, -0.5e-8, 0.8e-8};
  const std::pair<std::array<double, 3>, double> expected[] = {
      {{0.0, 0.0, R}, 1.3938731921795679e-06},
      {{0.6 * R, 0.0, 0.8 * R}, 1.1739884987660296e-06},
      {{-0.6 * R, 0.48 * R, -0.64 * R}, -4.5107784368154304e-07},
  };
  for (const auto& [e, v] : expected) CHECK(sim::sphere_potential(head, dipole, q, e) == Approx(v).epsilon(2e-3));
}

TEST_CASE("the head sphere is fitted to the 10-20 template", "[sim]") {
  const sim::HeadSphere head = sim::make_head_sphere(HeadModel{});
  CHECK(head.radius == Approx(99.36).margin(0.05));
  CHECK(head.center[1] == Approx(-16.53).margin(0.05));
  CHECK(head.brain_radius() == Approx(0.9 * head.radius));
  const SimSource s = source_below("x", "Cz", 20.0);
  const double dx = s.position[0] - head.center[0], dy = s.position[1] - head.center[1],
               dz = s.position[2] - head.center[2];
  CHECK(std::sqrt(dx * dx + dy * dy + dz * dz) == Approx(head.radius - 20.0));
}

// ---------------------------------------------------------------------------------------------
// Physics

TEST_CASE("the EEG spectrum shows the configured band peaks", "[sim]") {
  SimulationConfig c = SimulationConfig::defaults();
  c.subjects = 1;
  c.minutes = 4.0;
  c.channels = {"O1", "Oz", "O2", "Pz"};
  c.variability = SubjectVariability{0.0, 0.0, 0.0, 0, 0.0};
  c.artefacts = SimArtefacts{0, 0, 0, 0, 0, 0};
  c.vigilance = 0.0;
  SimSource s = source_below("occipital", "Oz", 22.0);
  s.amplitude = {20.0, 30.0, 60.0, 30.0, 20.0};
  s.peak_hz = {2.5, 6.0, 10.5, 22.0, 38.0};
  s.background = 10.0;
  c.sources = {s};
  SimRoi roi;
  roi.name = "visual";
  roi.couplings = {{"occipital", Band::alpha, -1.0}};
  roi.eeg_fraction = 0.5;
  c.rois = {roi};
  const SimulatedRun run = simulate_run(c, 0, 0, 0);
  const auto spectrum = signal::welch(channel(run.eeg, "Oz"), c.sample_rate, 500);  // 0.5 Hz bins
  for (int b = 0; b < kNumBands; ++b) {
    const double peak = s.peak_hz[static_cast<std::size_t>(b)];
    const double width = c.peak_width_hz[static_cast<std::size_t>(b)];
    INFO(to_string(static_cast<Band>(b)) << " peak at " << peak << " Hz, SD " << width << " Hz");
    // The largest power within 3 SDs lies at the peak (within half an SD, or one 0.5 Hz bin).
    CHECK(peak_in(spectrum, peak - 3.0 * width, peak + 3.0 * width) == Approx(peak).margin(std::max(0.5, width / 2)));
    // The peak rises clearly above the spectrum 3.5 SDs away (the 1/f background there).
    const double flank = std::max(value_at(spectrum, peak - 3.5 * width), value_at(spectrum, peak + 3.5 * width));
    CHECK(value_at(spectrum, peak) > 2.5 * flank);
  }
  // Mains is off: nothing at 50 Hz beyond the background.
  CHECK(value_at(spectrum, 50.0) < value_at(spectrum, 38.0) / 4.0);
}

TEST_CASE("the noiseless ROI series is the HRF convolution of the drive at the volume times", "[sim]") {
  SimulationConfig c = small_config();
  c.repetition_time = 1.26;  // not a multiple of the sample interval: drive grid step 0.09 s
  c.first_volume = 3.3;
  const SimulatedRun run = simulate_run(c, 1, 0, 0);
  const auto rois = static_cast<int64_t>(run.roi_names.size());
  REQUIRE(rois == 16);
  REQUIRE(run.num_volumes == static_cast<int64_t>(std::floor((60.0 - 3.3) / 1.26)));
  CHECK(run.drive_rate == Approx(13.0 / 1.26));  // 13 steps per TR: the first step <= 0.1 s
  CHECK(run.drive_start <= -32.0);
  REQUIRE(run.eeg.annotations.size() == static_cast<std::size_t>(run.num_volumes));
  for (int64_t v = 0; v < run.num_volumes; ++v) {
    const double t = run.volume_times[static_cast<std::size_t>(v)];
    CHECK(t == Approx(3.3 + 1.26 * static_cast<double>(v)));
    const int64_t j = run.volume_drive_index[static_cast<std::size_t>(v)];
    CHECK(run.drive_start + static_cast<double>(j) / run.drive_rate == Approx(t).margin(1e-9));
    CHECK(run.eeg.annotations[static_cast<std::size_t>(v)].onset == std::round(t * 250.0) / 250.0);
    CHECK(run.eeg.annotations[static_cast<std::size_t>(v)].label == "R128");
  }
  double worst = 0.0;
  for (int64_t r = 0; r < rois; ++r) {
    const auto h = signal::spm_hrf(1.0 / run.drive_rate, run.hrf[static_cast<std::size_t>(r)]);
    const double* drive = run.drive.data() + r * run.num_drive_samples;
    const double* visible = run.drive_visible.data() + r * run.num_drive_samples;
    for (int64_t v = 0; v < run.num_volumes; ++v) {
      const int64_t j = run.volume_drive_index[static_cast<std::size_t>(v)];
      double expected = 0.0, expected_visible = 0.0;
      for (std::size_t i = 0; i < h.size(); ++i) {
        expected += h[i] * drive[j - static_cast<int64_t>(i)];
        expected_visible += h[i] * visible[j - static_cast<int64_t>(i)];
      }
      const double a = run.amplitude[static_cast<std::size_t>(r)];
      const auto at = static_cast<std::size_t>(v * rois + r);
      worst = std::max({worst, std::fabs(run.bold_noiseless[at] - a * expected),
                        std::fabs(run.bold_visible[at] - a * expected_visible)});
    }
  }
  CHECK(worst < 1e-12);
  // The drives have unit variance, their visible part the ROI's eeg_fraction; ROIs without
  // couplings have no visible part.
  for (int64_t r = 0; r < rois; ++r) {
    const std::vector<double> d(run.drive.begin() + r * run.num_drive_samples,
                                run.drive.begin() + (r + 1) * run.num_drive_samples);
    const std::vector<double> visible(run.drive_visible.begin() + r * run.num_drive_samples,
                                      run.drive_visible.begin() + (r + 1) * run.num_drive_samples);
    CHECK(signal::mean_std(d).std == Approx(1.0));
    CHECK(signal::mean_std(visible).std ==
          Approx(std::sqrt(c.rois[static_cast<std::size_t>(r)].eeg_fraction)).margin(1e-12));
  }
  const auto hippocampus = std::find(run.roi_names.begin(), run.roi_names.end(), "hippocampus") - run.roi_names.begin();
  CHECK(std::all_of(run.drive_visible.begin() + hippocampus * run.num_drive_samples,
                    run.drive_visible.begin() + (hippocampus + 1) * run.num_drive_samples,
                    [](double x) { return x == 0.0; }));
  CHECK(std::isnan(run.eeg_ceiling[static_cast<std::size_t>(hippocampus)]));
}

TEST_CASE("the realised noise ceiling is the requested one", "[sim]") {
  for (double snr : {0.5, 1.0, 2.0}) {
    SimulationConfig c = small_config();
    c.snr = snr;
    c.minutes = 4.0;
    const SimulatedRun run = simulate_run(c, 0, 0, 0);
    const auto rois = run.roi_names.size();
    for (std::size_t r = 0; r < rois; ++r) {
      const double s = snr * c.rois[r].snr_scale;
      INFO("snr " << snr << ", ROI " << run.roi_names[r]);
      CHECK(run.requested_ceiling[r] == Approx(s / std::sqrt(1.0 + s * s)));
      std::vector<double> noisy, clean;
      for (int64_t v = 0; v < run.num_volumes; ++v) {
        noisy.push_back(run.bold[static_cast<std::size_t>(v) * rois + r]);
        clean.push_back(run.bold_noiseless[static_cast<std::size_t>(v) * rois + r]);
      }
      const double realised = signal::pearson(noisy, clean);
      CHECK(realised == Approx(run.realised_ceiling[r]));
      CHECK(std::fabs(realised - run.requested_ceiling[r]) <= 0.05);
    }
  }
}

TEST_CASE("simulation is deterministic in the seed", "[sim]") {
  SimulationConfig c = small_config();
  c.minutes = 0.5;
  const SimulatedRun a = simulate_run(c, 1, 0, 0), b = simulate_run(c, 1, 0, 0);
  CHECK(a.eeg.data == b.eeg.data);
  CHECK(a.bold == b.bold);
  CHECK(a.drive == b.drive);
  c.seed = 1;
  const SimulatedRun other = simulate_run(c, 1, 0, 0);
  CHECK(other.eeg.data != a.eeg.data);
  CHECK(other.bold != a.bold);
  // Other subjects and runs differ too.
  c.seed = 0;
  CHECK(simulate_run(c, 0, 0, 0).eeg.data != a.eeg.data);

  // Written datasets: byte for byte, whatever the number of threads.
  test::TempDir dir;
  SimulationConfig d = small_config();
  d.minutes = 0.5;
  d.threads = 1;
  write_simulated_dataset(d, (dir / "one").string(), false);
  d.threads = 2;
  write_simulated_dataset(d, (dir / "two").string(), false);
  d.seed = 7;
  write_simulated_dataset(d, (dir / "seven").string(), false);
  const auto one = tree(dir / "one"), two = tree(dir / "two"), seven = tree(dir / "seven");
  REQUIRE(one.size() == two.size());
  for (const auto& [name, bytes] : one) {
    INFO(name);
    CHECK((two.count(name) && two.at(name) == bytes));
  }
  const std::string edf = "sub-01/eeg/sub-01_task-rest_run-1_eeg.edf";
  REQUIRE(seven.count(edf));
  CHECK(seven.at(edf) != one.at(edf));
}

// ---------------------------------------------------------------------------------------------
// The written dataset

TEST_CASE("the written dataset reads back through read_recording and index_bids without warnings", "[sim]") {
  test::TempDir dir;
  SimulationConfig c = small_config();
  c.channels = channel_preset("mr32");
  c.write_nifti = true;
  std::vector<SimulationProgress> reports;
  const auto summary = write_simulated_dataset(c, (dir / "ds").string(), false,
                                               [&](const SimulationProgress& p) { reports.push_back(p); });
  const fs::path root = dir / "ds";
  REQUIRE(reports.size() == 2);
  CHECK(reports.back().completed == 2);
  CHECK(reports.back().total == 2);
  CHECK(reports.front().channels == 32);
  CHECK(reports.front().volumes == 27);
  CHECK(summary.runs == 2);
  CHECK(summary.roi_names.size() == 16);
  CHECK(fs::exists(root / "dataset_description.json"));
  CHECK(fs::exists(root / "participants.tsv"));
  CHECK(fs::exists(root / "derivatives/neurobolt-sim-truth/summary.tsv"));
  CHECK(fs::exists(root / "derivatives/neurobolt-sim-truth/simulation.json"));
  CHECK(fs::exists(root / "derivatives/neurobolt-sim/dataset_description.json"));
  CHECK(std::none_of(fs::directory_iterator(dir.path()), fs::directory_iterator(), [](const fs::directory_entry& e) {
    return e.path().filename().string().find(".tmp-") != std::string::npos;
  }));

  // The EEG files against the simulation in memory.
  for (int s = 0; s < 2; ++s) {
    const SimulatedRun run = simulate_run(c, s, 0, 0);
    const fs::path edf = root / ("sub-0" + std::to_string(s + 1)) / "eeg" /
                         ("sub-0" + std::to_string(s + 1) + "_task-rest_run-1_eeg.edf");
    const Recording rec = read_recording(edf.string());
    INFO(edf.string());
    CHECK(rec.warnings.empty());
    CHECK(rec.format == "EDF+C");
    CHECK(rec.sample_rate == 250.0);
    CHECK(rec.num_samples == 60 * 250);
    REQUIRE(rec.num_channels() == 32);
    // EEG channels keep their names; the ECG is labelled "ECG ECG" (EDF+ "<type> <name>"), so
    // that readers inferring the type from the label (MNE's infer_types, EDFbrowser) see an ECG.
    for (int64_t ch = 0; ch < 31; ++ch) CHECK(rec.channels[ch].name == c.channels[static_cast<std::size_t>(ch)]);
    for (int64_t ch = 0; ch < 32; ++ch) CHECK(rec.channels[ch].name == run.eeg.channels[ch].name);
    CHECK(rec.channels[31].name == "ECG ECG");
    CHECK(rec.channels[31].type == ChannelType::ecg);
    CHECK(rec.channels[0].type == ChannelType::eeg);
    REQUIRE(rec.annotations.size() == static_cast<std::size_t>(run.num_volumes));
    for (std::size_t a = 0; a < rec.annotations.size(); ++a) {
      CHECK(rec.annotations[a].label == "R128");
      CHECK(rec.annotations[a].onset == Approx(run.eeg.annotations[a].onset).margin(1e-6));
    }
    double worst = 0.0;  // in units of the channel's resolution
    for (int64_t ch = 0; ch < 32; ++ch) {
      double peak = 0.0;
      for (int64_t i = 0; i < rec.num_samples; ++i)
        peak = std::max(peak, std::fabs(double(run.eeg.channel_data(ch)[i])));
      // The physical range: 1.25 x the peak rounded up to two significant digits.
      const double scale = std::pow(10.0, std::floor(std::log10(1.25 * peak)) - 1.0);
      const double step = 2.0 * std::ceil(1.25 * peak / scale - 1e-9) * scale / 65535.0;
      for (int64_t i = 0; i < rec.num_samples; ++i)
        worst =
            std::max(worst, std::fabs(double(rec.channel_data(ch)[i]) - double(run.eeg.channel_data(ch)[i])) / step);
    }
    CHECK(worst <= 0.5 + 1e-3);  // rounding to the nearest step, and float32
  }

  // index_bids: every run with its target, TR, channels, events, and nothing to report.
  BidsOptions options;
  options.derivatives = {"derivatives/neurobolt-sim"};
  const BidsDataset ds = index_bids(root.string(), options);
  for (const auto& line : ds.log) WARN(line);
  CHECK(ds.log.empty());
  CHECK(ds.name == "neurobolt simulated EEG-fMRI (seed 0)");
  REQUIRE(ds.runs.size() == 2);
  CHECK(ds.num_with_target() == 2);
  const SimulatedRun first = simulate_run(c, 0, 0, 0);
  const EegRun& run = ds.runs.front();
  CHECK(run.entities.sub == "01");
  CHECK(run.entities.task == "rest");
  CHECK(run.entities.run == "1");
  CHECK(run.sidecar.sampling_frequency == 250.0);
  CHECK(run.sidecar.power_line_frequency == 50.0);
  CHECK(run.sidecar.eeg_reference == "FCz");
  CHECK(run.channels.size() == 32);
  CHECK(run.channels.back().type == "ECG");
  CHECK(run.channels.back().name == "ECG ECG");  // as the EDF labels it
  REQUIRE(run.events.size() == static_cast<std::size_t>(first.num_volumes));
  CHECK(run.events[3].onset == Approx(first.eeg.annotations[3].onset));
  CHECK(run.events[3].trial_type == "R128");
  REQUIRE(run.target.has_value());
  const TargetSeries& target = *run.target;
  CHECK(target.repetition_time == 2.0);
  CHECK(target.start_time == 0.0);
  CHECK(target.roi_names == first.roi_names);
  REQUIRE(target.num_volumes == first.num_volumes);
  for (std::size_t i = 0; i < target.data.size(); ++i) CHECK(target.data[i] == Approx(first.bold[i]).margin(1e-5));

  // The NIfTI path: ROI means of the 4-D image equal the targets (after detrending).
  BidsOptions nifti;
  nifti.atlas = (root / "derivatives/neurobolt-sim/atlas/atlas-roi_dseg.nii.gz").string();
  nifti.atlas_labels = (root / "derivatives/neurobolt-sim/atlas/atlas-roi_dseg.tsv").string();
  const BidsDataset from_nifti = index_bids(root.string(), nifti);
  for (const auto& line : from_nifti.log) WARN(line);
  CHECK(from_nifti.log.empty());
  REQUIRE(from_nifti.num_with_target() == 2);
  const TargetSeries& extracted = *from_nifti.runs.front().target;
  CHECK(extracted.source == "nifti");
  CHECK(extracted.roi_names == first.roi_names);
  CHECK(extracted.repetition_time == 2.0);
  const auto rois = first.roi_names.size();
  for (std::size_t r = 0; r < rois; ++r) {
    std::vector<double> truth;
    for (int64_t v = 0; v < first.num_volumes; ++v) truth.push_back(first.bold[static_cast<std::size_t>(v) * rois + r]);
    truth = signal::detrend_linear(truth);
    for (int64_t v = 0; v < first.num_volumes; ++v)
      CHECK(extracted.at(v, static_cast<int64_t>(r)) == Approx(truth[v]).margin(2e-4));
  }
}

TEST_CASE("simulate refuses to overwrite and leaves nothing behind when it fails", "[sim]") {
  test::TempDir dir;
  SimulationConfig c = small_config();
  c.subjects = 1;
  c.minutes = 0.25;
  const fs::path out = dir / "ds";
  fs::create_directories(out);
  std::ofstream(out / "keep.txt") << "mine";
  CHECK_THROWS_MATCHES(write_simulated_dataset(c, out.string(), false), IoError,
                       Catch::Matchers::Predicate<IoError>(
                           [](const IoError& e) { return std::string(e.what()).find("--force") != std::string::npos; },
                           "names --force"));
  CHECK(fs::exists(out / "keep.txt"));
  auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };

  // --force replaces only an earlier simulation output: a folder with someone's file is kept.
  CHECK_THROWS_MATCHES(write_simulated_dataset(c, out.string(), true), IoError,
                       Catch::Matchers::Predicate<IoError>(
                           [&](const IoError& e) {
                             const std::string m = e.what();
                             return m.find(out.string()) != std::string::npos &&
                                    m.find("not an earlier simulation output") != std::string::npos &&
                                    m.find("'neurobolt simulate'") != std::string::npos;
                           },
                           "names the folder and why"));
  CHECK(fs::exists(out / "keep.txt"));
  CHECK(entries() == std::vector<std::string>{"ds"});

  // A simulation output is replaced with force; a failure part-way (here from the progress
  // callback) keeps the old dataset and leaves no temporary folder.
  fs::remove_all(out);
  write_simulated_dataset(c, out.string(), false);
  const std::string old_edf = read_bytes(out / "sub-01/eeg/sub-01_task-rest_run-1_eeg.edf");
  c.subjects = 2;
  CHECK_THROWS_WITH(write_simulated_dataset(c, out.string(), true,
                                            [](const SimulationProgress&) { throw std::runtime_error("interrupted"); }),
                    "interrupted");
  CHECK(read_bytes(out / "sub-01/eeg/sub-01_task-rest_run-1_eeg.edf") == old_edf);
  CHECK_FALSE(fs::exists(out / "sub-02"));
  CHECK(entries() == std::vector<std::string>{"ds"});

  // With force, the new dataset replaces the old one; an empty folder needs no force.
  write_simulated_dataset(c, out.string(), true);
  CHECK(fs::exists(out / "sub-02/eeg/sub-02_task-rest_run-1_eeg.edf"));
  CHECK(entries() == std::vector<std::string>{"ds"});
  fs::create_directories(dir / "empty");
  write_simulated_dataset(c, (dir / "empty").string(), false);
  CHECK(fs::exists(dir / "empty/participants.tsv"));

  // Anything added to a simulation output makes it someone's work: refused, and kept.
  auto refused_with = [&](const fs::path& extra, const std::string& text) {
    CHECK_THROWS_WITH(write_simulated_dataset(c, out.string(), true),
                      Contains("not an earlier simulation output") && Contains(text));
    CHECK(fs::exists(extra));
    fs::remove_all(extra);
  };
  std::ofstream(out / "notes.txt") << "mine";
  refused_with(out / "notes.txt", "'notes.txt' is not written by neurobolt simulate");
  fs::create_directories(out / "derivatives/fmriprep");
  refused_with(out / "derivatives/fmriprep", "'derivatives/fmriprep' is not written by neurobolt simulate");
  fs::rename(out / "derivatives/neurobolt-sim-truth/simulation.json", dir / "simulation.json");
  CHECK_THROWS_WITH(write_simulated_dataset(c, out.string(), true), Contains("simulation.json"));
  fs::rename(dir / "simulation.json", out / "derivatives/neurobolt-sim-truth/simulation.json");
  write_simulated_dataset(c, out.string(), true);
  CHECK(entries() == std::vector<std::string>{"ds", "empty"});
}

TEST_CASE("the per-run memory estimate grows with channels and samples", "[sim]") {
  SimulationConfig c = small_config();
  const int64_t one = run_memory_estimate(c);
  c.channels = channel_preset("mr32");
  CHECK(run_memory_estimate(c) > one);
  c.minutes = 2.0;
  CHECK(run_memory_estimate(c) > 2 * one);
}

// ---------------------------------------------------------------------------------------------
// Configuration

TEST_CASE("simulation configs round-trip through JSON and are validated", "[sim]") {
  SimulationConfig c = SimulationConfig::defaults();
  c.seed = 42;
  c.sessions = 2;
  c.rois[3].hrf.peak_delay = 4.5;
  const std::string text = to_json(c);
  const SimulationConfig back = simulation_config_from_json(text, "test");
  CHECK(to_json(back) == text);
  CHECK(back.rois[3].hrf.peak_delay == 4.5);
  CHECK(back.rois[0].couplings[0].band == Band::alpha);

  CHECK_THROWS_WITH(simulation_config_from_json(R"({"sample_rat": 250})", "x.json"),
                    Contains("x.json") && Contains("unknown key 'sample_rat'"));
  CHECK_THROWS_WITH(
      simulation_config_from_json(R"({"rois": [{"name": "a", "couplings": [{"source": "occipital", "band": "mu"}]}]})"),
      Contains("rois[0].couplings[0].band") && Contains("unknown band 'mu'"));

  auto invalid = [](auto change, const std::string& text) {
    SimulationConfig bad = SimulationConfig::defaults();
    change(bad);
    CHECK_THROWS_WITH(validate(bad), Contains(text));
  };
  invalid([](SimulationConfig& b) { b.channels.push_back("FCz"); }, "reference");
  invalid([](SimulationConfig& b) { b.channels.push_back("Q7"); }, "unknown channel 'Q7'");
  invalid([](SimulationConfig& b) { b.channels.push_back("O1"); }, "'O1' twice");
  invalid([](SimulationConfig& b) { b.sample_rate = 250.5; }, "sample_rate");
  invalid([](SimulationConfig& b) { b.sources[0].position = {0.0, -16.0, 120.0}; }, "inside the brain sphere");
  invalid([](SimulationConfig& b) { b.sources[0].peak_hz[2] = 15.0; }, "peak_hz.alpha");
  invalid([](SimulationConfig& b) { b.rois[0].couplings[0].source = "nowhere"; }, "'nowhere'");
  invalid([](SimulationConfig& b) { b.rois[15].eeg_fraction = 0.5; }, "at least one coupling");
  invalid([](SimulationConfig& b) { b.minutes = 0.05; }, "3 volumes");
  invalid([](SimulationConfig& b) { b.snr = 0.0; }, "snr");
  SimulationConfig average = SimulationConfig::defaults();
  average.reference = "average";
  average.channels.push_back("FCz");
  CHECK_NOTHROW(validate(average));
  CHECK_THROWS_WITH(channel_preset("mr64"), Contains("mr32"));
  CHECK(channel_preset("mr32").size() == 32);
  CHECK(roi_preset("roi16").size() == 16);
}

TEST_CASE("simulation configs bound every size and rate before anything is allocated", "[sim]") {
  auto refused = [](auto change, const std::vector<std::string>& fields, const std::string& text) {
    SimulationConfig bad = SimulationConfig::defaults();
    change(bad);
    try {
      validate(bad);
      FAIL("accepted");
    } catch (const SimulationConfigError& e) {
      INFO(e.what());
      CHECK(e.fields == fields);
      CHECK_THAT(std::string(e.what()), Contains(text));
      CHECK(e.kind() == ErrorKind::config);
    }
  };
  refused([](SimulationConfig& b) { b.minutes = 1e9; }, {"minutes"}, "minutes: expected at most 240 per run, found 1e+09");
  refused([](SimulationConfig& b) { b.minutes = 60; b.sample_rate = 20000; }, {"minutes", "sample_rate"},
          "3600 s x 20000 Hz = 72000000");
  refused([](SimulationConfig& b) { b.minutes = 60; b.sample_rate = 4000; b.channels = channel_preset("mr32");
                                    for (const char* e : {"AF3", "AF4", "F1", "F2", "F5", "F6", "FC3", "FC4", "C1",
                                                          "C2", "C5", "C6", "CP3", "CP4", "P1", "P2", "P5", "P6",
                                                          "PO3", "PO4", "PO7", "PO8", "FT7", "FT8", "TP7", "TP8",
                                                          "AFz", "CPz", "Fpz", "Iz", "F9", "F10", "T9", "T10"})
                                      b.channels.push_back(e); },
          {"channels", "minutes", "sample_rate"}, "channel samples per run");
  refused([](SimulationConfig& b) { b.subjects = 999; b.sessions = 99; b.runs = 99; }, {"subjects", "sessions", "runs"},
          "at most 10000 runs in all");
  refused([](SimulationConfig& b) { b.subjects = 999; b.runs = 10; b.minutes = 200; b.sample_rate = 1000; },
          {"subjects", "sessions", "runs", "channels", "minutes", "sample_rate"}, "channel samples in all runs");
  refused([](SimulationConfig& b) { b.artefacts.blink_rate = 1e9; }, {"artefacts.blink_rate"},
          "artefacts.blink_rate: expected at most 120 per minute, found 1e+09");
  refused([](SimulationConfig& b) { b.artefacts.muscle_rate = 1e9; }, {"artefacts.muscle_rate"}, "per minute");
  refused([](SimulationConfig& b) { b.artefacts.pulse_amplitude = 1e30; }, {"artefacts.pulse_amplitude"}, "uV");
  refused([](SimulationConfig& b) { b.sensor_noise = 1e30; }, {"sensor_noise"}, "uV");
  refused([](SimulationConfig& b) { b.rois[0].hrf.length = 1e9; }, {"rois['calcarine'].hrf.length"}, "at most 100 s");
  refused([](SimulationConfig& b) { b.rois.resize(1001, b.rois[15]); }, {"rois"}, "at most 1000 ROIs");
  refused([](SimulationConfig& b) { b.sources.resize(201, b.sources[0]); }, {"sources"}, "at most 200 sources");
  refused([](SimulationConfig& b) { b.rois[0].couplings.resize(51, b.rois[0].couplings[0]); },
          {"rois['calcarine'].couplings"}, "at most 50 couplings");
  refused([](SimulationConfig& b) { b.head.relative_radii.assign(11, 0.9); }, {"head.relative_radii"}, "1 to 10 shells");
  refused([](SimulationConfig& b) { b.rois[0].name = std::string(65, 'r'); }, {"rois"}, "1 to 64 characters");
  refused([](SimulationConfig& b) { b.minutes = 200; b.sources.resize(200, b.sources[0]);
                                    for (std::size_t i = 0; i < b.sources.size(); ++i) b.sources[i].name = "s" + std::to_string(i); },
          {"sources", "rois", "minutes"}, "drive-grid values per run");

  // From a JSON file: a config error naming the file and the field, before any allocation.
  CHECK_THROWS_WITH(simulation_config_from_json(R"({"artefacts": {"blink_rate": 1e9}})", "sim.json"),
                    Catch::StartsWith("sim.json: simulation config: artefacts.blink_rate: expected at most 120"));
  CHECK_THROWS_AS(simulation_config_from_json(R"({"minutes": 1e9})", "sim.json"), ConfigError);
  CHECK_NOTHROW(validate(SimulationConfig::defaults()));
}

TEST_CASE("trigger labels: any text an EDF+ annotation holds", "[sim]") {
  SimulationConfig c = SimulationConfig::defaults();
  for (const std::string& label : {std::string("R128"), std::string("Scan Start"), std::string("T  1"),
                                   std::string("Volume/1"), std::string("V\xc3\xa9lum\xc3\xa9"), std::string(40, 'x')}) {
    c.trigger_label = label;
    CHECK_NOTHROW(validate(c));
  }
  for (const std::string& label :
       {std::string(), std::string(41, 'x'), std::string(" R128"), std::string("R128 "), std::string("R\t128"),
        std::string("R\n128"), std::string("R\x14" "1"), std::string("\xff"), std::string("\xc3")}) {
    c.trigger_label = label;
    CHECK_THROWS_WITH(validate(c), Contains("trigger_label: expected 1 to 40 bytes of UTF-8 text without control"));
  }

  // Labels with spaces survive the EDF+ file and events.tsv.
  test::TempDir dir;
  SimulationConfig small = small_config();
  small.subjects = 1;
  small.trigger_label = "Scan Start";
  write_simulated_dataset(small, (dir / "ds").string(), false);
  const Recording rec = read_recording((dir / "ds/sub-01/eeg/sub-01_task-rest_run-1_eeg.edf").string());
  REQUIRE_FALSE(rec.annotations.empty());
  CHECK(rec.annotations.front().label == "Scan Start");
  BidsOptions options;
  options.derivatives = {"derivatives/neurobolt-sim"};
  const BidsDataset ds = index_bids((dir / "ds").string(), options);
  REQUIRE(ds.runs.size() == 1);
  REQUIRE_FALSE(ds.runs.front().events.empty());
  CHECK(ds.runs.front().events.front().trial_type == "Scan Start");
}

TEST_CASE("the simulated BIDS dataset: placement scheme, sidecars, ground-truth names", "[sim]") {
  test::TempDir dir;
  SimulationConfig c = small_config();
  c.channels = channel_preset("mr32");
  c.subjects = 1;
  write_simulated_dataset(c, (dir / "ds").string(), false);
  const fs::path root = dir / "ds";
  const auto sidecar = [&](const fs::path& p) { return nlohmann::json::parse(read_bytes(p)); };
  const std::string base = "sub-01_task-rest_run-1";
  CHECK(sidecar(root / "sub-01/eeg" / (base + "_eeg.json"))["EEGPlacementScheme"] == "10-10");  // FC1, CP1, TP9, POz
  c.channels = channel_preset("1020");
  write_simulated_dataset(c, (dir / "classic").string(), false);
  CHECK(sidecar(dir / "classic/sub-01/eeg" / (base + "_eeg.json"))["EEGPlacementScheme"] == "10-20");
  c.channels = {"Fp1", "AFF1h", "Cz", "O1"};
  write_simulated_dataset(c, (dir / "fine").string(), false);
  CHECK(sidecar(dir / "fine/sub-01/eeg" / (base + "_eeg.json"))["EEGPlacementScheme"] == "10-05");

  // The channels.tsv types, and names equal to the EDF labels.
  const std::string channels = read_bytes(root / "sub-01/eeg" / (base + "_channels.tsv"));
  CHECK_THAT(channels, Contains("\nFp1\tEEG\tuV\t250\tgood\n"));
  CHECK_THAT(channels, Contains("\nECG ECG\tECG\tuV\t250\tgood\n"));
  const auto eeg_json = sidecar(root / "sub-01/eeg" / (base + "_eeg.json"));
  CHECK(eeg_json["EEGChannelCount"] == 31);
  CHECK(eeg_json["ECGChannelCount"] == 1);

  // events.json and participants.json describe their tables.
  const auto events = sidecar(root / "task-rest_events.json");
  for (const char* column : {"onset", "duration", "trial_type", "value", "sample"}) CHECK(events.contains(column));
  CHECK(events["trial_type"]["Levels"].contains("R128"));
  CHECK(sidecar(root / "participants.json").contains("participant_id"));

  // Ground truth: BIDS derivative time series with sidecars, described in the truth README.
  const fs::path truth = root / "derivatives/neurobolt-sim-truth";
  for (const char* desc : {"noiseless", "visible", "drive", "visibledrive", "bandpower"}) {
    INFO(desc);
    CHECK(fs::exists(truth / "sub-01/func" / (base + "_desc-" + desc + "_timeseries.tsv")));
    CHECK(fs::exists(truth / "sub-01/func" / (base + "_desc-" + desc + "_timeseries.json")));
    CHECK_THAT(read_bytes(truth / "README"), Contains(std::string("_desc-") + desc + "_timeseries.tsv"));
  }
  CHECK(sidecar(truth / "sub-01/func" / (base + "_desc-drive_timeseries.json"))["SamplingFrequency"] == 10.0);
  for (const auto& e : fs::recursive_directory_iterator(truth)) {
    const std::string name = e.path().filename().string();
    CHECK(name.find("_bold.tsv") == std::string::npos);
    CHECK(name.find("_drive.tsv") == std::string::npos);
    CHECK(name.find("_bandpower.tsv") == std::string::npos);
  }
  CHECK(is_simulation_truth_folder(truth.string()));
  CHECK_FALSE(is_simulation_truth_folder((root / "derivatives/neurobolt-sim").string()));

  // By default the truth holds no target; with desc=noiseless its noiseless BOLD is the target.
  BidsOptions both;
  both.derivatives = {"derivatives/neurobolt-sim", "derivatives/neurobolt-sim-truth"};
  const BidsDataset by_default = index_bids(root.string(), both);
  REQUIRE(by_default.num_with_target() == 1);
  CHECK(by_default.runs.front().target->path.find("desc-roi_timeseries") != std::string::npos);
  BidsOptions noiseless;
  noiseless.derivatives = {"derivatives/neurobolt-sim-truth"};
  noiseless.target_entities = {{"desc", "noiseless"}};
  const BidsDataset from_truth = index_bids(root.string(), noiseless);
  REQUIRE(from_truth.num_with_target() == 1);
  c.channels = channel_preset("mr32");
  const SimulatedRun run = simulate_run(c, 0, 0, 0);
  const TargetSeries& target = *from_truth.runs.front().target;
  REQUIRE(target.data.size() == run.bold_noiseless.size());
  for (std::size_t i = 0; i < target.data.size(); ++i)
    CHECK(target.data[i] == Approx(run.bold_noiseless[i]).epsilon(1e-6).margin(1e-6));
}

// ---------------------------------------------------------------------------------------------
// EDF writer

TEST_CASE("write_edf stores any recording that EDF+ can hold and refuses the rest", "[sim]") {
  test::TempDir dir;
  Recording rec;
  rec.sample_rate = 200.0;
  rec.num_samples = 1010;  // 5.05 s: no whole-second records, 0.05 s ones
  rec.channels = {{"Cz", ChannelType::eeg, "uV"}, {"EKG", ChannelType::ecg, "uV"}};
  rec.data.resize(2 * 1010);
  for (int64_t i = 0; i < 1010; ++i) {
    rec.data[i] = static_cast<float>(50.0 * std::sin(0.1 * i));
    rec.data[1010 + i] = static_cast<float>(i % 7 - 3);
  }
  rec.annotations = {{0.5, 0.0, "R128", ""}, {1.25, 0.5, "Stimulus S  1", ""}, {5.0, 0.0, "end", ""}};
  rec.start_time = "2021-03-04T05:06:07.25";
  const std::string path = (dir / "x.edf").string();
  write_edf(rec, path);
  const Recording back = read_recording(path);
  CHECK(back.warnings.empty());
  CHECK(back.num_samples == 1010);
  CHECK(back.sample_rate == 200.0);
  CHECK(back.start_time == "2021-03-04T05:06:07.250000");
  REQUIRE(back.annotations.size() == 3);
  CHECK(back.annotations[1].label == "Stimulus S  1");
  CHECK(back.annotations[1].duration == Approx(0.5));
  CHECK(back.annotations[2].onset == Approx(5.0));
  for (int64_t i = 0; i < 2 * 1010; ++i) CHECK(back.data[i] == Approx(rec.data[i]).margin(2.0 * 63.0 / 65535.0));

  CHECK_THROWS_AS(write_edf(rec, path), IoError);  // exists
  EdfWriteOptions force;
  force.force = true;
  CHECK_NOTHROW(write_edf(rec, path, force));

  Recording bad = rec;
  bad.data[5] = std::nanf("");
  CHECK_THROWS_WITH(write_edf(bad, (dir / "nan.edf").string()), Contains("channel 'Cz' sample 5"));
  bad = rec;
  bad.annotations.push_back({5.05, 0.0, "late", ""});
  CHECK_THROWS_WITH(write_edf(bad, (dir / "late.edf").string()), Contains("'late'"));
  bad = rec;
  bad.channels[0].name = "a very long channel label";
  CHECK_THROWS_WITH(write_edf(bad, (dir / "label.edf").string()), Contains("16"));
  bad = rec;
  bad.start_time = "yesterday";
  CHECK_THROWS_WITH(write_edf(bad, (dir / "time.edf").string()), Contains("start time"));
  CHECK_FALSE(fs::exists(dir / "nan.edf"));
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

// ---------------------------------------------------------------------------------------------
// A classical check that the data carry signal

namespace {

// Band power of each channel in the 16 s window before each volume (the window the NeuroBOLT
// model sees) weighted by the canonical HRF: sum over 0.5 s bins i of hrf(i * 0.5 s) * power of
// bin i before the volume. Standardised per run.
Eigen::MatrixXd band_power_features(const SimulatedRun& run, const std::vector<std::string>& channels, bool log_power) {
  const Recording& eeg = run.eeg;
  const double fs = eeg.sample_rate;
  constexpr double kBin = 0.5, kWindow = 16.0;
  const auto hrf = signal::spm_hrf(kBin);
  const auto bins = static_cast<int64_t>(kWindow / kBin);
  const auto bin_samples = static_cast<int64_t>(kBin * fs);
  const int64_t nv = run.num_volumes;
  Eigen::MatrixXd x(nv, static_cast<Eigen::Index>(channels.size() * kNumBands));
  Eigen::Index column = 0;
  for (const auto& name : channels) {
    const auto data = channel(eeg, name);
    for (int b = 0; b < kNumBands; ++b, ++column) {
      const BandRange range = band_range(static_cast<Band>(b));
      const auto filter = signal::butter(4, {range.low_hz, range.high_hz}, fs, signal::FilterType::bandpass);
      const auto filtered = signal::sosfiltfilt(filter.sos, data);
      std::vector<double> cumulative(filtered.size() + 1, 0.0);
      for (std::size_t i = 0; i < filtered.size(); ++i) cumulative[i + 1] = cumulative[i] + filtered[i] * filtered[i];
      std::vector<double> feature(static_cast<std::size_t>(nv), 0.0);
      for (int64_t v = 0; v < nv; ++v) {
        const auto end = static_cast<int64_t>(std::llround(run.volume_times[static_cast<std::size_t>(v)] * fs));
        for (int64_t i = 0; i < bins; ++i) {
          const int64_t hi = end - i * bin_samples, lo = hi - bin_samples;
          if (lo < 0) break;
          double power = (cumulative[hi] - cumulative[lo]) / static_cast<double>(bin_samples);
          if (log_power) power = std::log(power);
          feature[static_cast<std::size_t>(v)] += hrf[static_cast<std::size_t>(i)] * power;
        }
      }
      feature = signal::zscore(feature);
      for (int64_t v = 0; v < nv; ++v) x(v, column) = feature[static_cast<std::size_t>(v)];
    }
  }
  return x;
}

}  // namespace

TEST_CASE("band power convolved with the HRF predicts the coupled ROIs across subjects", "[sim]") {
  SimulationConfig c = SimulationConfig::defaults();
  c.subjects = 6;
  c.minutes = 8.0;
  c.sample_rate = 125.0;
  c.threads = 2;
  const std::vector<std::string> channels = {"O1",  "O2",  "Oz",  "Pz",  "P3", "P4", "C3", "C4",
                                             "CP5", "CP6", "FC5", "FC6", "Fz", "Cz", "T7", "T8"};
  std::vector<Eigen::MatrixXd> features;
  std::vector<Eigen::MatrixXd> targets;
  const int64_t skip = 8;  // volumes before the 16 s window is filled
  std::vector<std::string> roi_names;
  for (int s = 0; s < c.subjects; ++s) {
    const SimulatedRun run = simulate_run(c, s, 0, 0);
    roi_names = run.roi_names;
    const Eigen::MatrixXd x = band_power_features(run, channels, false);
    const auto rois = static_cast<Eigen::Index>(run.roi_names.size());
    Eigen::MatrixXd y(run.num_volumes, rois);
    for (Eigen::Index r = 0; r < rois; ++r) {
      std::vector<double> column;
      for (int64_t v = 0; v < run.num_volumes; ++v) column.push_back(run.bold[static_cast<std::size_t>(v * rois + r)]);
      column = signal::zscore(column);
      for (int64_t v = 0; v < run.num_volumes; ++v) y(v, r) = column[static_cast<std::size_t>(v)];
    }
    features.push_back(x.bottomRows(x.rows() - skip));
    targets.push_back(y.bottomRows(y.rows() - skip));
  }
  // Leave one subject out: ridge regression on the others, correlation on the held-out one.
  const auto rois = static_cast<Eigen::Index>(roi_names.size());
  Eigen::MatrixXd r_values(c.subjects, rois);
  for (int held = 0; held < c.subjects; ++held) {
    Eigen::Index rows = 0;
    for (int s = 0; s < c.subjects; ++s)
      if (s != held) rows += features[static_cast<std::size_t>(s)].rows();
    Eigen::MatrixXd x(rows, features.front().cols()), y(rows, rois);
    Eigen::Index at = 0;
    for (int s = 0; s < c.subjects; ++s) {
      if (s == held) continue;
      x.middleRows(at, features[static_cast<std::size_t>(s)].rows()) = features[static_cast<std::size_t>(s)];
      y.middleRows(at, targets[static_cast<std::size_t>(s)].rows()) = targets[static_cast<std::size_t>(s)];
      at += features[static_cast<std::size_t>(s)].rows();
    }
    const double lambda = 0.1 * static_cast<double>(rows);
    const Eigen::MatrixXd gram = x.transpose() * x + lambda * Eigen::MatrixXd::Identity(x.cols(), x.cols());
    const Eigen::MatrixXd w = gram.ldlt().solve(x.transpose() * y);
    const Eigen::MatrixXd predicted = features[static_cast<std::size_t>(held)] * w;
    for (Eigen::Index r = 0; r < rois; ++r) {
      const Eigen::VectorXd p = predicted.col(r), t = targets[static_cast<std::size_t>(held)].col(r);
      r_values(held, r) = signal::pearson(std::vector<double>(p.data(), p.data() + p.size()),
                                          std::vector<double>(t.data(), t.data() + t.size()));
    }
  }
  const Eigen::VectorXd mean_r = r_values.colwise().mean();
  std::string report = "cross-subject r (leave one subject out, 6 subjects x 8 min, band power (x) HRF ridge):";
  double coupled = 0.0;
  int coupled_count = 0;
  for (Eigen::Index r = 0; r < rois; ++r) {
    report += fmt::format("\n  {:20s} {:+.3f}", roi_names[static_cast<std::size_t>(r)], mean_r(r));
    if (c.rois[static_cast<std::size_t>(r)].eeg_fraction >= 0.5) {
      coupled += mean_r(r);
      ++coupled_count;
    }
  }
  coupled /= coupled_count;
  report += fmt::format("\n  mean over ROIs with eeg_fraction >= 0.5: {:+.3f}", coupled);
  WARN(report);
  CHECK(coupled > 0.3);
  auto r_of = [&](const char* name) {
    return mean_r(std::find(roi_names.begin(), roi_names.end(), name) - roi_names.begin());
  };
  for (const char* name : {"calcarine", "cuneus", "precentral_L", "precentral_R"}) {
    INFO(name);
    CHECK(r_of(name) > 0.3);
  }
  CHECK(r_of("thalamus") > 0.1);                            // half its drive is visible, and its SNR is 0.6
  for (const char* name : {"hippocampus", "cerebellum"}) {  // nothing visible
    INFO(name);
    CHECK(std::fabs(r_of(name)) < 0.15);
  }
}

// ---------------------------------------------------------------------------------------------
// The scanner's artefacts (SimScanner)

namespace {

double mean_of(const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size()); }

// Five channels and an ECG at 5 kHz for half a minute: 12 volumes of 30 slices.
SimulationConfig scanner_config() {
  SimulationConfig c = small_config();
  c.subjects = 1;
  c.minutes = 0.5;
  c.sample_rate = 5000.0;
  c.channels = {"Fp1", "T7", "Cz", "T8", "O1", "ECG"};
  return c;
}

std::vector<double> difference(const Recording& raw, const Recording& clean, int64_t channel) {
  std::vector<double> d(static_cast<std::size_t>(raw.num_samples));
  for (int64_t i = 0; i < raw.num_samples; ++i)
    d[static_cast<std::size_t>(i)] =
        static_cast<double>(raw.channel_data(channel)[i]) - static_cast<double>(clean.channel_data(channel)[i]);
  return d;
}

double rms(const std::vector<double>& x) {
  double s = 0.0;
  for (double v : x) s += v * v;
  return std::sqrt(s / static_cast<double>(x.size()));
}

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  return x[x.size() / 2];
}

// x delayed by a fractional number of samples: x(m + shift), by the DFT (x periodic over its length).
std::vector<double> fractional_shift(const std::vector<double>& x, double shift) {
  Eigen::FFT<double> fft;
  std::vector<std::complex<double>> spectrum;
  fft.fwd(spectrum, x);
  const auto n = static_cast<int64_t>(x.size());
  for (int64_t k = 0; k < n; ++k) {
    const double f = static_cast<double>(k <= n / 2 ? k : k - n);
    spectrum[static_cast<std::size_t>(k)] *= std::polar(1.0, 2.0 * M_PI * f * shift / static_cast<double>(n));
  }
  std::vector<double> out;
  fft.inv(out, spectrum);
  return out;
}

}  // namespace

TEST_CASE("the scanner's artefacts are off by default and change nothing then", "[sim][scanner]") {
  SimulationConfig c = small_config();
  c.minutes = 0.5;
  c.subjects = 1;
  CHECK_FALSE(c.scanner.any());
  CHECK_THAT(to_json(c), !Contains("scanner"));
  SimulationConfig other = c;  // every scanner setting changed, but off
  other.scanner.slices = 12;
  other.scanner.gradient_amplitude = 10.0;
  other.scanner.heart_rate = 90.0;
  other.scanner.ecg_inverted = true;
  other.scanner.slice_triggers = true;
  const SimulatedRun a = simulate_run(c, 0, 0, 0), b = simulate_run(other, 0, 0, 0);
  CHECK(a.eeg.data == b.eeg.data);
  REQUIRE(a.eeg.annotations.size() == b.eeg.annotations.size());
  for (std::size_t i = 0; i < a.eeg.annotations.size(); ++i) CHECK(a.eeg.annotations[i].onset == b.eeg.annotations[i].onset);
  CHECK(a.eeg_clean.data.empty());
  CHECK(a.eeg_clean.num_samples == 0);
  CHECK(a.slice_times.empty());
  CHECK(run_memory_estimate(c) == run_memory_estimate(other));

  // The written datasets too, file by file (but the config, which records the settings).
  test::TempDir dir;
  write_simulated_dataset(c, (dir / "a").string(), false);
  write_simulated_dataset(other, (dir / "b").string(), false);
  const auto ta = tree(dir / "a"), tb = tree(dir / "b");
  REQUIRE(ta.size() == tb.size());
  for (const auto& [name, bytes] : ta) {
    INFO(name);
    if (name.find("simulation.json") != std::string::npos) continue;
    CHECK((tb.count(name) && tb.at(name) == bytes));
  }
  CHECK_THAT(tb.at("derivatives/neurobolt-sim-truth/simulation.json"), Contains("\"scanner\""));
}

TEST_CASE("the gradient artefact: raw - clean, periodic per slice up to its sub-sample offset", "[sim][scanner]") {
  SimulationConfig c = scanner_config();
  c.scanner.gradient = true;
  c.scanner.slice_triggers = true;
  const SimulatedRun run = simulate_run(c, 0, 0, 0);
  const Recording& raw = run.eeg;
  const Recording& clean = run.eeg_clean;
  const double fs = c.sample_rate;
  REQUIRE(clean.num_samples == raw.num_samples);
  REQUIRE(clean.num_channels() == raw.num_channels());
  const int S = c.scanner.slices;
  REQUIRE(run.num_volumes == 12);
  REQUIRE(run.slice_times.size() == static_cast<std::size_t>(run.num_volumes * S));
  CHECK(run.heartbeat_times.size() > 20);  // the ECG channel's heartbeats

  // Slice onsets follow the scanner's clock: a period of (TR - gap) / slices stretched by the drift.
  const double period = (c.repetition_time - c.scanner.slice_gap) / S;
  const double stretch = 1.0 + c.scanner.clock_drift_ppm * 1e-6;
  CHECK(run.slice_times.front() >= c.first_volume);
  CHECK(run.slice_times.front() < c.first_volume + 1.0 / fs + 1e-5);
  for (std::size_t k = 1; k < run.slice_times.size(); ++k) {
    const double expected = (k % S == 0 ? c.scanner.slice_gap + period : period) * stretch;
    CHECK(std::fabs(run.slice_times[k] - run.slice_times[k - 1] - expected) < 10e-6);
  }

  // Triggers: a volume trigger at ceil(onset * fs) for every volume, a slice trigger for every slice.
  std::vector<int64_t> volume_samples, slice_samples;
  for (const auto& a : raw.annotations)
    (a.label == c.trigger_label ? volume_samples : slice_samples).push_back(std::llround(a.onset * fs));
  REQUIRE(volume_samples.size() == static_cast<std::size_t>(run.num_volumes));
  REQUIRE(slice_samples.size() == run.slice_times.size());
  for (int64_t v = 0; v < run.num_volumes; ++v)
    CHECK(volume_samples[static_cast<std::size_t>(v)] ==
          static_cast<int64_t>(std::ceil(run.slice_times[static_cast<std::size_t>(v * S)] * fs)));
  for (std::size_t k = 0; k < run.slice_times.size(); ++k)
    CHECK(slice_samples[k] == static_cast<int64_t>(std::ceil(run.slice_times[k] * fs)));
  CHECK(clean.annotations.size() == raw.annotations.size());

  // The artefact: zero before the first slice, hundreds of times the EEG on every channel.
  std::vector<double> peaks, ratios;
  for (int64_t ch = 0; ch < raw.num_channels(); ++ch) {
    INFO(raw.channels[static_cast<std::size_t>(ch)].name);
    const auto a = difference(raw, clean, ch);
    const auto first = static_cast<std::size_t>(std::ceil(run.slice_times.front() * fs));
    CHECK(std::all_of(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(first), [](double v) { return v == 0.0; }));
    double peak = 0.0;
    for (double v : a) peak = std::max(peak, std::fabs(v));
    CHECK(peak >= 0.25 * c.scanner.gradient_amplitude);
    CHECK(peak <= 3.2 * c.scanner.gradient_amplitude);
    peaks.push_back(peak);
    if (raw.channels[static_cast<std::size_t>(ch)].type == ChannelType::eeg) {
      std::vector<double> x(clean.channel_data(ch), clean.channel_data(ch) + clean.num_samples);
      const double m = mean_of(x);
      for (auto& v : x) v -= m;
      ratios.push_back(peak / rms(x));
    }
  }
  CHECK(median(peaks) == Approx(c.scanner.gradient_amplitude).epsilon(0.2));
  CHECK(median(ratios) > 100.0);
  CHECK(*std::min_element(ratios.begin(), ratios.end()) > 20.0);

  // Periodic: slice k sampled from its first sample on is the waveform at offsets m + delta_k
  // (delta_k = ceil(t_k fs) - t_k fs). The same slice of later volumes falls elsewhere between
  // samples (the clocks drift apart by 0.2 samples per volume); shifted by delta_k2 - delta_k1
  // and scaled by the head motion's gain change, slice k1 is slice k2.
  const auto length = static_cast<std::ptrdiff_t>(period * fs) - 1;
  auto segment = [&](const std::vector<double>& a, std::size_t k) {
    const auto start = static_cast<std::ptrdiff_t>(std::ceil(run.slice_times[k] * fs));
    return std::vector<double>(a.begin() + start, a.begin() + start + length);
  };
  auto offset = [&](std::size_t k) { return std::ceil(run.slice_times[k] * fs) - run.slice_times[k] * fs; };
  const auto a = difference(raw, clean, raw.find_channel("T7"));
  int compared = 0;
  const std::size_t k1 = 1;
  for (int64_t v = 1; v < run.num_volumes; ++v) {
    const auto k2 = static_cast<std::size_t>(v * S + 1);
    const double shift = offset(k2) - offset(k1);
    if (std::fabs(shift) < 0.2) continue;
    INFO("slices " << k1 << ", " << k2 << ": shift " << shift << " samples");
    const auto s1 = segment(a, k1), s2 = segment(a, k2);
    const auto shifted = fractional_shift(s1, shift);
    double cross = 0.0, power = 0.0;
    for (std::size_t i = 0; i < s2.size(); ++i) {
      cross += shifted[i] * s2[i];
      power += shifted[i] * shifted[i];
    }
    const double gain = cross / power;
    CHECK(gain == Approx(1.0).margin(0.1));
    std::vector<double> err(s2.size()), plain(s2.size());
    for (std::size_t i = 0; i < s2.size(); ++i) {
      err[i] = gain * shifted[i] - s2[i];
      plain[i] = gain * s1[i] - s2[i];
    }
    CHECK(rms(err) < 0.03 * rms(s2));
    CHECK(rms(plain) > 0.1 * rms(s2));  // the sub-sample offset matters
    ++compared;
  }
  CHECK(compared >= 3);
}

TEST_CASE("the BCG follows a simulated ECG with heart-rate variability", "[sim][scanner]") {
  // The heartbeats: mean rate and RR variability as configured.
  SimScanner s;
  s.heart_rate = 66.0;
  s.hrv = 0.05;
  sim::Rng rng(3);
  const auto beats = sim::heartbeats(s, 3600.0, 0.25, 0.0, rng);
  std::vector<double> rr;
  for (std::size_t i = 1; i < beats.size(); ++i) rr.push_back(beats[i] - beats[i - 1]);
  const double mean_rr = mean_of(rr);
  double ss = 0.0;
  for (double x : rr) ss += (x - mean_rr) * (x - mean_rr);
  CHECK(60.0 / mean_rr == Approx(66.0).epsilon(0.01));
  CHECK(std::sqrt(ss / static_cast<double>(rr.size())) / mean_rr == Approx(0.05).epsilon(0.1));

  SimulationConfig c = scanner_config();
  c.minutes = 1.0;
  c.sample_rate = 500.0;
  c.channels = {"Fp1", "F7", "T7", "C3", "Cz", "C4", "T8", "P7", "O1", "O2", "Oz", "P8", "ECG"};
  c.scanner.bcg = true;
  const SimulatedRun run = simulate_run(c, 0, 0, 0);
  const double fs = c.sample_rate;
  REQUIRE(run.eeg_clean.num_samples == run.eeg.num_samples);
  CHECK(run.slice_times.empty());
  std::vector<double> in_run;
  for (double t : run.heartbeat_times)
    if (t < run.eeg.duration()) in_run.push_back(t);
  CHECK(static_cast<double>(in_run.size()) == Approx(66.0).epsilon(0.12));

  // The ECG channel: its clean ECG with R waves of ecg_amplitude at the heartbeats, no BCG.
  const int64_t ecg = run.eeg.find_channel("ECG ECG");
  REQUIRE(ecg >= 0);
  CHECK(difference(run.eeg, run.eeg_clean, ecg) == std::vector<double>(static_cast<std::size_t>(run.eeg.num_samples), 0.0));
  std::vector<double> r_values;
  for (double t : in_run) r_values.push_back(run.eeg_clean.channel_data(ecg)[std::llround(t * fs)]);
  CHECK(median(r_values) == Approx(c.scanner.ecg_amplitude).epsilon(0.1));

  // On the EEG channels: the BCG, as large as alpha, with a pattern over the scalp.
  const auto alpha = signal::butter(4, {8.0, 13.0}, fs, signal::FilterType::bandpass);
  std::vector<double> bcg_rms, alpha_rms, bcg_peak;
  for (int64_t ch = 0; ch < run.eeg.num_channels(); ++ch) {
    if (run.eeg.channels[static_cast<std::size_t>(ch)].type != ChannelType::eeg) continue;
    const auto b = difference(run.eeg, run.eeg_clean, ch);
    bcg_rms.push_back(rms(b));
    double peak = 0.0;
    for (double v : b) peak = std::max(peak, std::fabs(v));
    bcg_peak.push_back(peak);
    const std::vector<double> x(run.eeg_clean.channel_data(ch), run.eeg_clean.channel_data(ch) + run.eeg.num_samples);
    alpha_rms.push_back(rms(signal::sosfiltfilt(alpha.sos, x)));
  }
  // As large as alpha where alpha is (posterior); frontal and temporal alpha is far smaller.
  const double alpha_max = *std::max_element(alpha_rms.begin(), alpha_rms.end());
  INFO("BCG RMS " << median(bcg_rms) << " uV (median over channels), alpha RMS " << alpha_max << " uV (largest)");
  CHECK(median(bcg_rms) > 0.3 * alpha_max);
  CHECK(median(bcg_rms) < 3.0 * alpha_max);
  CHECK(median(bcg_peak) == Approx(c.scanner.bcg_amplitude).epsilon(0.35));
  CHECK(*std::max_element(bcg_peak.begin(), bcg_peak.end()) > 2.0 * *std::min_element(bcg_peak.begin(), bcg_peak.end()));
  // Locked to the heartbeats: the average over beats ~200-750 ms after the R peak holds most of it.
  const int64_t t7 = run.eeg.find_channel("T7");
  const auto b = difference(run.eeg, run.eeg_clean, t7);
  double inside = 0.0, total = 0.0;
  std::vector<bool> covered(b.size(), false);
  for (double t : run.heartbeat_times)
    for (auto i = static_cast<int64_t>(std::ceil((t + 0.19) * fs)); i <= static_cast<int64_t>((t + 0.76) * fs); ++i)
      if (i >= 0 && i < static_cast<int64_t>(b.size())) covered[static_cast<std::size_t>(i)] = true;
  for (std::size_t i = 0; i < b.size(); ++i) {
    total += b[i] * b[i];
    if (covered[i]) inside += b[i] * b[i];
  }
  CHECK(inside > 0.999 * total);

  // ecg_inverted flips the ECG, nothing else.
  c.scanner.ecg_inverted = true;
  const SimulatedRun inverted = simulate_run(c, 0, 0, 0);
  for (double t : in_run) {
    const auto i = std::llround(t * fs);
    CHECK(inverted.eeg_clean.channel_data(ecg)[i] == Approx(-run.eeg_clean.channel_data(ecg)[i]).margin(20.0));
  }
  CHECK(inverted.heartbeat_times == run.heartbeat_times);
  for (int64_t ch = 0; ch < run.eeg.num_channels(); ++ch)
    if (ch != ecg)
      CHECK(std::equal(inverted.eeg.channel_data(ch), inverted.eeg.channel_data(ch) + run.eeg.num_samples,
                       run.eeg.channel_data(ch)));
}

TEST_CASE("the scanner's artefacts are deterministic in the seed and written as ground truth", "[sim][scanner]") {
  SimulationConfig c = scanner_config();
  c.scanner.gradient = c.scanner.bcg = true;
  const SimulatedRun a = simulate_run(c, 0, 0, 0), b = simulate_run(c, 0, 0, 0);
  CHECK(a.eeg.data == b.eeg.data);
  CHECK(a.eeg_clean.data == b.eeg_clean.data);
  CHECK(a.slice_times == b.slice_times);
  CHECK(a.heartbeat_times == b.heartbeat_times);
  SimulationConfig d = c;
  d.seed = 9;
  const SimulatedRun other = simulate_run(d, 0, 0, 0);
  CHECK(other.eeg.data != a.eeg.data);
  CHECK(other.slice_times != a.slice_times);
  CHECK(other.heartbeat_times != a.heartbeat_times);
  CHECK(run_memory_estimate(c) > run_memory_estimate(scanner_config()));

  test::TempDir dir;
  c.channels = {"Fp1", "T7", "Cz", "T8", "O1", "ECG"};
  write_simulated_dataset(c, (dir / "ds").string(), false);
  const fs::path root = dir / "ds";
  const std::string base = "sub-01_task-rest_run-1";
  const fs::path truth = root / "derivatives/neurobolt-sim-truth/sub-01/eeg";
  // The raw EDF holds the artefact without clipping: every sample within a quantisation step.
  const Recording raw = read_recording((root / "sub-01/eeg" / (base + "_eeg.edf")).string());
  const Recording clean = read_recording((truth / (base + "_desc-clean_eeg.edf")).string());
  REQUIRE(raw.num_samples == a.eeg.num_samples);
  REQUIRE(clean.num_samples == a.eeg.num_samples);
  for (int64_t ch = 0; ch < raw.num_channels(); ++ch) {
    INFO(raw.channels[static_cast<std::size_t>(ch)].name);
    for (const auto& [read, made] : {std::pair{&raw, &a.eeg}, std::pair{&clean, &a.eeg_clean}}) {
      double peak = 0.0, error = 0.0;
      for (int64_t i = 0; i < raw.num_samples; ++i) {
        peak = std::max(peak, std::fabs(static_cast<double>(made->channel_data(ch)[i])));
        error = std::max(error, std::fabs(static_cast<double>(read->channel_data(ch)[i] - made->channel_data(ch)[i])));
      }
      // Range +-1.25 x peak (rounded up to two digits) over 65536 steps; half a step of rounding.
      CHECK(error <= 2.0 * 1.25 * 1.1 * peak / 65535.0);
    }
  }
  CHECK(raw.annotations.size() == a.eeg.annotations.size());
  // The true events: every heartbeat in the recording, every slice and volume, in time order.
  const std::string events = read_bytes(truth / (base + "_desc-scanner_events.tsv"));
  std::istringstream lines(events);
  std::string line;
  std::getline(lines, line);
  CHECK(line == "onset\tduration\ttrial_type");
  std::map<std::string, int> counts;
  double last = -1.0;
  while (std::getline(lines, line)) {
    std::istringstream cells(line);
    double onset = 0.0, duration = 1.0;
    std::string type;
    cells >> onset >> duration >> type;
    CHECK(onset >= last);
    last = onset;
    ++counts[type];
  }
  int beats = 0;
  for (double t : a.heartbeat_times) beats += t < a.eeg.duration();
  CHECK(counts["heartbeat"] == beats);
  CHECK(counts["slice"] == static_cast<int>(a.slice_times.size()));
  CHECK(counts["volume"] == a.num_volumes);
  CHECK(fs::exists(truth / (base + "_desc-scanner_events.json")));
  CHECK_THAT(read_bytes(root / "derivatives/neurobolt-sim-truth/README"), Contains("_desc-clean_eeg.edf"));
  CHECK_THAT(read_bytes(root / "README"), Contains("gradient artefact"));
  // The truth folder's EEG is not a raw run of the dataset.
  BidsOptions options;
  options.derivatives = {"derivatives/neurobolt-sim"};
  CHECK(index_bids(root.string(), options).runs.size() == 1);
}

TEST_CASE("scanner settings round-trip through JSON and are validated", "[sim][scanner]") {
  SimulationConfig c = SimulationConfig::defaults();
  c.scanner.gradient = true;
  c.scanner.bcg = true;
  c.scanner.slices = 40;
  c.scanner.slice_gap = 0.1;
  c.scanner.gradient_amplitude = 5000.0;
  c.scanner.clock_drift_ppm = -12.5;
  c.scanner.timing_jitter_us = 2.0;
  c.scanner.motion_gain_drift = 0.05;
  c.scanner.slice_triggers = true;
  c.scanner.slice_trigger_label = "Slice Start";
  c.scanner.heart_rate = 72.0;
  c.scanner.hrv = 0.08;
  c.scanner.bcg_amplitude = 80.0;
  c.scanner.ecg_amplitude = 600.0;
  c.scanner.ecg_inverted = true;
  const std::string text = to_json(c);
  const SimulationConfig back = simulation_config_from_json(text, "test");
  CHECK(to_json(back) == text);
  CHECK(back.scanner.slice_trigger_label == "Slice Start");
  CHECK(back.scanner.clock_drift_ppm == -12.5);
  CHECK(back.scanner.ecg_inverted);
  CHECK_THROWS_WITH(simulation_config_from_json(R"({"scanner": {"slice": 30}})", "x.json"),
                    Contains("x.json") && Contains("scanner.slice"));

  auto refused = [](auto change, const std::vector<std::string>& fields, const std::string& text) {
    SimulationConfig bad = SimulationConfig::defaults();
    bad.scanner.gradient = bad.scanner.bcg = true;
    change(bad);
    try {
      validate(bad);
      FAIL("accepted");
    } catch (const SimulationConfigError& e) {
      INFO(e.what());
      CHECK(e.fields == fields);
      CHECK_THAT(std::string(e.what()), Contains(text));
    }
  };
  refused([](SimulationConfig& b) { b.repetition_time = 0.5; b.scanner.slices = 200; },
          {"scanner.slices", "scanner.slice_gap", "repetition_time", "sample_rate"},
          "sampling too low for the slice frequency");
  refused([](SimulationConfig& b) { b.scanner.slice_gap = 2.0; }, {"scanner.slice_gap", "repetition_time"},
          "shorter than the repetition time");
  refused([](SimulationConfig& b) { b.scanner.slices = 0; }, {"scanner.slices"}, "1 to 1000");
  refused([](SimulationConfig& b) { b.scanner.heart_rate = 500; }, {"scanner.heart_rate"}, "30 to 200");
  refused([](SimulationConfig& b) { b.scanner.hrv = -0.1; }, {"scanner.hrv"}, "0 to 0.3");
  refused([](SimulationConfig& b) { b.scanner.gradient_amplitude = 1e30; }, {"scanner.gradient_amplitude"}, "uV");
  refused([](SimulationConfig& b) { b.scanner.clock_drift_ppm = 1e4; }, {"scanner.clock_drift_ppm"}, "ppm");
  refused([](SimulationConfig& b) { b.scanner.slice_trigger_label = "A\tB"; }, {"scanner.slice_trigger_label"},
          "control");
  refused([](SimulationConfig& b) { b.scanner.slice_triggers = true; b.scanner.slice_trigger_label = "R128"; },
          {"scanner.slice_trigger_label", "trigger_label"}, "different labels");
  refused([](SimulationConfig& b) { b.sample_rate = 5000; b.scanner.slices = 200; b.scanner.slice_triggers = true; },
          {"scanner.slices", "repetition_time"}, "triggers per second");
  refused([](SimulationConfig& b) { b.minutes = 60; b.repetition_time = 0.1; b.sample_rate = 4000;
                                    b.scanner.slice_gap = 0; b.scanner.slices = 80; },
          {"scanner.slices", "minutes", "repetition_time"}, "slices per run");
  // Without the gradient, its timing is not checked: a short TR stays valid.
  SimulationConfig fast = SimulationConfig::defaults();
  fast.repetition_time = 0.1;
  CHECK_NOTHROW(validate(fast));
  fast.scanner.bcg = true;
  CHECK_NOTHROW(validate(fast));
  fast.scanner.gradient = true;
  CHECK_THROWS_WITH(validate(fast), Contains("sampling too low"));
}
