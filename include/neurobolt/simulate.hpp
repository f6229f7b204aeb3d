#pragma once
// A simultaneous EEG-fMRI simulator with known ground truth, for tests, demos, benchmarks, study
// sizing and teaching (`neurobolt simulate`).
//
// What one run is made of (src/sim/simulate_run.cpp has the details and the literature):
//  - sources: current dipoles in the brain, each with rhythms in the classic bands (a Gaussian
//    spectral peak per band) whose amplitudes fluctuate slowly (log-normal envelopes with a
//    source-specific timescale, plus an optional shared "vigilance" fluctuation), and a 1/f
//    background; plus randomly placed background dipoles with 1/f activity;
//  - EEG: the dipoles projected to the electrodes through a multi-shell spherical head (the
//    exact series solution), re-referenced (FCz by default), plus sensor noise, mains, blinks,
//    muscle bursts and residual pulse artefacts; an ECG channel when asked for;
//  - fMRI: per ROI a neural drive = a weighted sum of band powers of chosen sources (the part
//    the EEG can see) + a slow process the EEG cannot see, convolved with SPM's canonical HRF
//    (per-ROI and per-subject timing), sampled at the volume times, plus physiological
//    (autocorrelated, partly shared) noise, drift and thermal noise at a chosen SNR;
//  - scanner volume triggers as annotations of the EEG;
//  - optionally (SimScanner) the scanner's artefacts on the EEG: the gradient artefact of the EPI
//    sequence, slice after slice on the scanner's own clock, and the ballistocardiogram locked to
//    a simulated ECG; the clean EEG is kept as ground truth.
// Everything follows from SimulationConfig::seed: each (subject, session, run) has its own
// random streams, so results do not depend on threads or on the order runs are made in.
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt {

// The classic EEG bands.
enum class Band { delta, theta, alpha, beta, gamma };
constexpr int kNumBands = 5;
const char* to_string(Band band);
// "alpha" -> Band::alpha; a ConfigError naming the known bands otherwise.
Band band_from_string(const std::string& name);

struct BandRange {
  double low_hz = 0.0;
  double high_hz = 0.0;
};
// delta 1-4, theta 4-8, alpha 8-13, beta 13-30, gamma 30-45 Hz.
BandRange band_range(Band band);

// One value per band, in Band order.
using PerBand = std::array<double, kNumBands>;

// A brain region that generates EEG: a current dipole at a fixed place.
struct SimSource {
  std::string name;
  // mm, in the head coordinates of the standard montages (montage.hpp: x right, y nasion, z vertex).
  std::array<double, 3> position{0.0, 0.0, 0.0};
  std::array<double, 3> orientation{0.0, 0.0, 1.0};  // direction of the moment (normalised on use)
  PerBand amplitude{};              // RMS dipole moment of each band's rhythm, nA m (0: no such rhythm)
  PerBand peak_hz{};                // centre of each band's spectral peak, Hz (inside the band)
  double background = 0.0;          // RMS dipole moment of the 1/f background activity, nA m
  double envelope_timescale = 8.0;  // s: correlation time of the slow amplitude fluctuations
};

// A source `depth_mm` below the scalp under electrode `anchor` (a 10-05 name) of the template
// head, its moment tilted `tilt_deg` from radial (outward) towards electrode `toward` (radial
// when `toward` is empty). Tangential moments (90 degrees) model sources in sulcal walls.
SimSource source_below(const std::string& name, const std::string& anchor, double depth_mm,
                       const std::string& toward = "", double tilt_deg = 0.0);

// How an ROI's BOLD follows the power of one band of one source.
struct RoiCoupling {
  std::string source;  // a SimSource name
  Band band = Band::alpha;
  double weight = 0.0;  // relative; negative: BOLD falls when the band's power rises
};

struct SimRoi {
  std::string name;
  std::vector<RoiCoupling> couplings;
  // Share (0..1) of the neural drive's variance that the coupled band powers make up; the rest
  // is a slow process the EEG cannot see. 0 for an ROI without EEG-visible drive.
  double eeg_fraction = 0.0;
  double snr_scale = 1.0;          // the ROI's SNR is SimulationConfig::snr times this
  double amplitude = 1.0;          // percent signal change per unit (standard deviation) of drive
  double hidden_timescale = 10.0;  // s: correlation time of the EEG-invisible part of the drive
  signal::HrfParams hrf;           // the ROI's haemodynamic response (SPM's spm_hrf parameters)
};

// Concentric spheres fitted to the electrode template, innermost first. Defaults: MNE-Python's
// make_sphere_model (brain, CSF, skull, scalp; skull/brain conductivity ratio 1/82, close to
// Rush & Driscoll's 1/80).
struct HeadModel {
  std::vector<double> relative_radii{0.90, 0.92, 0.97, 1.0};   // of the scalp radius
  std::vector<double> conductivities{0.33, 1.0, 0.004, 0.33};  // S/m
};

// Artefacts added to the EEG; an amplitude or rate of 0 turns one off.
struct SimArtefacts {
  double blink_rate = 10.0;        // blinks per minute (Poisson)
  double blink_amplitude = 150.0;  // uV at Fp1/Fp2
  double muscle_rate = 2.0;        // bursts per minute (Poisson), left or right temporalis
  double muscle_amplitude = 15.0;  // uV RMS at the electrodes nearest the muscle
  double mains_amplitude = 1.0;    // uV, typical per-channel amplitude at the power-line frequency
  double pulse_amplitude = 3.0;    // uV, typical residual pulse (ballistocardiogram) artefact; not
                                   // added with SimScanner::bcg, whose full BCG replaces it
};

// The MR scanner's artefacts on the EEG, as recorded inside the scanner before any correction
// (src/sim/scanner.cpp). Off by default; with both off nothing changes.
//
// Gradient: every volume is `slices` EPI slices filling repetition_time - slice_gap evenly, then
// slice_gap s of silence. Per slice the induced voltage dG/dt of the slice-select, readout
// (echo spacing 0.55 ms) and phase-encoding gradients, low-passed like the amplifier's hardware
// filter (4th-order Butterworth at 1 kHz, or 0.2 x sample_rate when lower), is sampled at the EEG
// sample times: the scanner's clock runs clock_drift_ppm slower than the EEG's (plus white
// timing_jitter_us), and the first volume starts at a random sub-sample offset after
// first_volume, so every slice falls at another sub-sample position. Each channel (ECG and EOG
// channels too) mixes the three axes with its own weights (from the electrode's position relative
// to the reference, plus its lead's routing), scaled so that the median per-channel peak is
// gradient_amplitude (each channel between 0.3 and 3 times that); a slow per-channel gain drift
// (head motion, SD motion_gain_drift) scales whole slices. The artefact is otherwise exactly the
// same every slice. Volume triggers (trigger_label) are at the first EEG sample at or after each
// volume's true onset, as an amplifier records the scanner's TTL pulse; with slice_triggers, one
// slice_trigger_label annotation per slice likewise.
//
// BCG: R peaks at heart_rate with heart-rate variability (relative SD of the RR interval hrv,
// half of its variance respiratory sinus arrhythmia at 0.2-0.3 Hz); ECG channels carry an ECG
// (P-QRS-T) with an R wave of ecg_amplitude (negative with ecg_inverted); every EEG channel gets a
// pulse waveform ~200-250 ms after each R peak, lasting 0.5 s (three damped oscillations of
// 2-8 Hz), mixed per channel with a spatial pattern whose sign and size vary over the scalp
// (larger at lateral sites), scaled so that the median per-channel peak is bcg_amplitude; beat to
// beat the amplitude varies by ~10% (with breathing) and the delay by a few ms. Without an ECG
// channel the BCG is simulated all the same: the true R peaks are then only in the ground truth.
struct SimScanner {
  bool gradient = false;
  bool bcg = false;
  // Gradient.
  int slices = 30;                   // per volume
  double slice_gap = 0.05;           // s of silence at the end of each TR
  double gradient_amplitude = 4000;  // uV, median per-channel peak
  double clock_drift_ppm = 20.0;     // scanner clock against the EEG clock (positive: scanner slower)
  double timing_jitter_us = 1.0;     // SD of each slice onset, microseconds
  double motion_gain_drift = 0.03;   // SD of the slow relative change of each channel's gain
  bool slice_triggers = false;       // also an annotation per slice
  std::string slice_trigger_label = "Slice";
  // BCG.
  double heart_rate = 66.0;     // beats per minute, mean
  double hrv = 0.05;            // SD of the RR interval / its mean
  double bcg_amplitude = 60.0;  // uV, median per-channel peak of a beat
  double ecg_amplitude = 800.0;  // uV, R wave on ECG channels
  bool ecg_inverted = false;     // ECG channels upside down (electrodes the other way round)

  bool any() const { return gradient || bcg; }
};

// How subjects differ (drawn once per subject).
struct SubjectVariability {
  double peak_jitter_hz = 0.8;         // SD of the individual alpha frequency; other peaks scale along
  double amplitude_jitter = 0.2;       // SD of log rhythm amplitudes, per source and band
  double hrf_delay_jitter = 0.5;       // s: SD of each ROI's HRF peak (and undershoot) delay
  int background_sources = 16;         // randomly placed dipoles with 1/f activity only
  double background_amplitude = 10.0;  // their RMS moment, nA m
};

struct SimulationConfig {
  int subjects = 4;
  int sessions = 0;              // 0: no session level (sub-*/eeg); otherwise ses-1..ses-N
  int runs = 1;                  // per subject and session
  double minutes = 8.0;          // per run; rounded to whole seconds
  double sample_rate = 250.0;    // Hz, a whole number
  double repetition_time = 2.0;  // s
  double first_volume = 5.0;     // s from the first EEG sample to the first volume trigger
  std::string trigger_label = "R128";
  std::string task = "rest";
  std::vector<std::string> channels;  // 10-05 electrode names, plus ECG/EOG channels by name
  std::string reference = "FCz";      // an electrode (then not a channel itself) or "average"
  std::vector<SimSource> sources;
  std::vector<SimRoi> rois;
  double snr = 1.0;  // BOLD: SD of the noiseless signal / SD of the noise, per run and ROI
  uint64_t seed = 0;

  double envelope_variability = 0.4;  // SD of the log amplitude of every rhythm
  double vigilance = 0.3;             // SD of the shared vigilance signal in log amplitude; 0: none
  double vigilance_timescale = 60.0;  // s
  // How each band's log amplitude follows vigilance (alpha rises, delta/theta fall with alertness).
  PerBand vigilance_loading{-0.5, -0.5, 1.0, 0.3, 0.0};
  PerBand peak_width_hz{0.5, 0.6, 0.8, 2.5, 3.0};  // SD of the Gaussian spectral peak per band
  double aperiodic_exponent = 1.0;                 // the background's spectrum falls as 1/f^exponent
  double sensor_noise = 1.0;                       // uV RMS, white, per channel
  double power_line_frequency = 50.0;              // Hz
  SimArtefacts artefacts;
  SimScanner scanner;
  SubjectVariability variability;
  HeadModel head;

  // The BOLD noise: shares of its variance; thermal (white) noise has the rest.
  double physio_share = 0.5;      // AR(1) physiological noise, half of it shared by all ROIs
  double physio_timescale = 4.0;  // s
  double drift_share = 0.15;      // slow drift (linear + cosines with periods > run length/2)

  std::string pipeline = "neurobolt-sim";  // derivatives/<pipeline> (targets), <pipeline>-truth
  bool write_nifti = false;                // also a small 4-D BOLD image per run and a label atlas
  int threads = 0;  // runs made in parallel, 0: all cores (no effect on results; not in the JSON)

  // The presets: mr32 channels, default_sources(), roi16.
  static SimulationConfig defaults();
};

// Channel presets: "mr32" (a 32-channel MR cap, BrainCap MR layout: 31 EEG + ECG, FCz reference),
// "neurobolt26" (the 26 EEG channels of the NeuroBOLT paper's data and models/neurobolt-base.json,
// plus ECG) and "1020" (the 19 classic 10-20 electrodes). A ConfigError lists the presets for an
// unknown name.
std::vector<std::string> channel_preset(const std::string& name);
std::vector<std::string> channel_preset_names();
// ROI presets: "roi16" (16 named ROIs with couplings from the EEG-fMRI literature, including ROIs
// without EEG-visible drive). The couplings name sources of default_sources().
std::vector<SimRoi> roi_preset(const std::string& name);
std::vector<std::string> roi_preset_names();
// Seven sources: occipital, parietal, motor_L, motor_R, frontal, temporal_L, temporal_R.
std::vector<SimSource> default_sources();

// A validation failure: which config fields it is about (JSON key paths, e.g. "minutes",
// "artefacts.blink_rate"), what was expected and what was found. The CLI turns it into a usage
// error naming its option when one of the fields came from the command line.
struct SimulationConfigError : ConfigError {
  SimulationConfigError(std::vector<std::string> fields, std::string expected, std::string found);
  std::vector<std::string> fields;
  std::string expected;
  std::string found;
};

// Upper bounds, checked by validate() before anything is allocated, so that a typo (minutes
// 1e9, blink_rate 1e9) is refused at once instead of exhausting memory or running for days.
// Per run: every sample of every channel is held in memory several times over (~(64 + 4 x
// channels) bytes per sample), and the drive-grid quantities (5 bands x sources + 2 x ROIs
// series at 10 per second) are written as text.
struct SimulationLimits {
  static constexpr double max_minutes = 240.0;                // per run
  static constexpr int64_t max_run_samples = int64_t{1} << 24;  // per channel per run (56 min at 5 kHz)
  static constexpr int64_t max_run_values = int64_t{1} << 29;   // channels x samples per run (2 GiB as float32)
  static constexpr int64_t max_total_runs = 10000;             // subjects x sessions x runs
  static constexpr int64_t max_total_values = int64_t{1} << 38;  // channels x samples, all runs (512 GiB of EDF)
  static constexpr int64_t max_grid_values = int64_t{1} << 25;  // (5 x sources + 2 x ROIs) x drive samples per run
  static constexpr int max_sources = 200;
  static constexpr int max_rois = 1000;
  static constexpr int max_couplings = 50;            // per ROI
  static constexpr int max_shells = 10;               // head model
  static constexpr double max_event_rate = 120.0;     // blinks or muscle bursts per minute
  static constexpr double max_amplitude_uv = 1.0e6;   // any artefact amplitude or sensor noise, uV
  static constexpr double max_hrf_length = 100.0;     // s
  static constexpr std::size_t max_name_length = 64;  // source and ROI names
  static constexpr int max_slices = 1000;                    // per volume
  static constexpr int64_t max_run_slices = int64_t{1} << 21;  // slices per run (each one a time, maybe a trigger)
  static constexpr double max_triggers_per_second = 64.0;    // volume + slice triggers (EDF+ annotations per record)
};

// Throws SimulationConfigError naming the field, what was expected and what was found.
void validate(const SimulationConfig& config);

// Bytes one run holds in memory at its peak, roughly (the estimate behind SimulationLimits).
int64_t run_memory_estimate(const SimulationConfig& config);

// The config as JSON (every field but `threads`), and back. Unknown keys are a ConfigError naming them;
// missing keys keep their defaults (SimulationConfig::defaults() for channels/sources/rois).
std::string to_json(const SimulationConfig& config);
SimulationConfig simulation_config_from_json(const std::string& text, const std::string& source = "config");

// One simulated run, in memory.
struct SimulatedRun {
  std::string subject;  // "01"
  std::string session;  // "" without sessions, else "1", "2", ...
  std::string run;      // "1"
  std::string label;    // "sub-01 run-1" (with " ses-1" when sessions are used)

  // The EEG in microvolts (channel-major), its channel types (ECG/EOG channels named by their EDF
  // label, sim: "ECG" -> "ECG ECG"), and one annotation per volume
  // (SimulationConfig::trigger_label) at the sample nearest the volume's time; with the gradient
  // artefact at the first sample at or after the volume's true onset (slice_times), and with
  // slice triggers one annotation per slice too (volume trigger first where both fall together).
  Recording eeg;
  // With the scanner's artefacts (SimScanner::any()): the same EEG without the gradient artefact
  // and the BCG, all else alike (ECG channels with their clean ECG, same annotations); the ground
  // truth of artefact correction. Empty otherwise.
  Recording eeg_clean;
  // True R peaks (s from the first EEG sample; a few may lie after the recording's end) wherever
  // heartbeats are simulated (an ECG channel, a pulse artefact or the BCG), and true slice onsets
  // in the EEG clock with the gradient artefact (volume v starts at slice_times[v * slices]).
  std::vector<double> heartbeat_times;
  std::vector<double> slice_times;

  double repetition_time = 0.0;
  // s from the first EEG sample (exact scanner times: first_volume + v TR; with the gradient
  // artefact the EEG clock sees the scanner's drift: slice_times has the onsets it sees).
  std::vector<double> volume_times;
  std::vector<std::string> roi_names;
  int64_t num_volumes = 0;
  // volumes x ROIs, row-major, percent signal change.
  std::vector<double> bold;            // with noise: the fMRI target
  std::vector<double> bold_noiseless;  // amplitude * (HRF conv drive) at the volume times
  std::vector<double> bold_visible;    // the same for the EEG-visible part of the drive

  // Neural drives, ROI-major: drive[r * num_drive_samples + j] is ROI r at time
  // drive_start + j / drive_rate (s from the first EEG sample; the grid starts before the
  // recording so that the first volume has a full HRF history, and every volume time is on it).
  double drive_rate = 0.0;
  double drive_start = 0.0;
  int64_t num_drive_samples = 0;
  std::vector<double> drive;                // unit variance over the grid
  std::vector<double> drive_visible;        // its EEG-visible part
  std::vector<int64_t> volume_drive_index;  // drive sample at each volume time
  std::vector<signal::HrfParams> hrf;       // per ROI, with this subject's jitter
  std::vector<double> amplitude;            // per ROI

  // Band power envelopes on the drive grid: band_power[(s * kNumBands + b) * num_drive_samples + j],
  // relative to its mean over the grid (the rhythm's RMS moment is the source's amplitude).
  std::vector<std::string> source_names;
  std::vector<double> band_power;

  // Per ROI.
  std::vector<double> snr;
  std::vector<double> requested_ceiling;  // snr / sqrt(1 + snr^2)
  std::vector<double> realised_ceiling;   // pearson(bold, bold_noiseless)
  std::vector<double> eeg_ceiling;        // pearson(bold, bold_visible); NaN without visible drive
};

// Simulates run `run` of session `session` of subject `subject` (all from 0; session 0 when the
// config has no sessions). Validates the config first.
SimulatedRun simulate_run(const SimulationConfig& config, int subject, int session, int run);

struct SimulationProgress {
  int completed = 0;  // runs finished so far, this one included
  int total = 0;
  std::string label;  // "sub-02 run-1"
  double minutes = 0.0;
  int64_t channels = 0;
  double sample_rate = 0.0;
  int64_t volumes = 0;
  double seconds = 0.0;  // time spent on this run
};

struct SimulationSummary {
  std::string root;
  int runs = 0;
  std::vector<std::string> roi_names;
  std::vector<double> requested_ceiling;  // per ROI
  std::vector<double> mean_ceiling;       // per ROI, realised, mean over runs
  std::vector<double> mean_eeg_ceiling;   // per ROI, mean over runs; NaN without visible drive
  double seconds = 0.0;
};

// Writes a BIDS dataset (BIDS 1.8; see README written into it):
//   dataset_description.json, participants.tsv + .json, task-<task>_events.json, README
//   sub-XX/[ses-N/]eeg/*_eeg.edf (EDF+, triggers as annotations; ECG/EOG channels labelled
//     "ECG <name>"/"EOG <name>" as EDF+ asks), *_eeg.json, *_channels.tsv (names = EDF labels),
//     *_events.tsv
//   derivatives/<pipeline>/sub-XX/[ses-N/]func/*_desc-roi_timeseries.tsv + .json (the targets)
//   derivatives/<pipeline>-truth/ (README, dataset_description.json): sub-XX/[ses-N/]func/
//     *_desc-noiseless_timeseries.tsv and *_desc-visible_timeseries.tsv (per volume),
//     *_desc-drive_timeseries.tsv, *_desc-visibledrive_timeseries.tsv and
//     *_desc-bandpower_timeseries.tsv (on the drive grid), each with a JSON sidecar; and at its
//     top summary.tsv (noise ceilings per run and ROI) and simulation.json (the config).
//     index_bids does not take these for targets unless a desc entity is asked for.
//     With the scanner's artefacts also sub-XX/[ses-N/]eeg/*_desc-clean_eeg.edf (the EEG without
//     them) and *_desc-scanner_events.tsv + .json (true R peaks, slice and volume onsets: onset,
//     duration, trial_type heartbeat/slice/volume).
//   with write_nifti: sub-XX/[ses-N/]func/*_bold.nii.gz + _bold.json and
//     derivatives/<pipeline>/atlas/atlas-roi_dseg.nii.gz + .tsv
// The dataset is built in "<out_dir>.tmp-<pid>" and renamed to out_dir when complete; any failure
// removes it. An out_dir that exists and is not empty is refused (IoError) unless `force`, and
// even then unless it is recognisably an earlier output of this function: its
// dataset_description.json names "neurobolt simulate" in GeneratedBy, it holds
// derivatives/<pipeline>-truth/simulation.json, and nothing but what this function writes
// (the files above, sub-* folders, derivatives/<pipeline> and <pipeline>-truth). It is replaced
// only after the new dataset is complete. Runs are made in parallel (config.threads), but no more
// at once than half the memory (or the address-space limit) holds by run_memory_estimate(); out of
// memory is a ConfigError. `progress` is called once per finished run (from one thread at a
// time); an exception from it aborts the simulation and leaves nothing behind.
SimulationSummary write_simulated_dataset(const SimulationConfig& config, const std::string& out_dir, bool force,
                                          const std::function<void(const SimulationProgress&)>& progress = {});

}  // namespace neurobolt
