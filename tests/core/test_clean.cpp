// MR artefact correction (neurobolt clean) on synthetic raw recordings whose clean EEG is known:
// triggers and their repairs, sub-sample alignment against the true scanner timing, the cleaned
// EEG against the truth, slice triggers, R peaks on an inverted ECG, the BCG, a recording without
// a scanner (must be left alone), and the refusals.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "clean/bcg.hpp"
#include "clean/gradient.hpp"
#include "neurobolt/clean.hpp"
#include "neurobolt/edf_writer.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"
#include "neurobolt/signal.hpp"
#include "test_support.hpp"

using Catch::Matchers::Contains;
using neurobolt::test::error_of;

namespace {

using namespace neurobolt;

struct Synthetic {
  Recording raw;    // EEG + artefacts, with trigger annotations
  Recording clean;  // EEG only (ECG channel: the clean ECG)
  std::vector<double> volume_onsets;  // s, true scanner times
  std::vector<double> beats;          // s, true R peaks
};

struct SynthOptions {
  double fs = 5000.0;
  double seconds = 90.0;
  int eeg_channels = 5;
  double tr = 2.0;
  int slices = 20;
  double gap = 0.1;          // s of silence at the end of each volume
  double amplitude = 4000;   // uV, gradient artefact
  double drift_ppm = 20.0;
  double gain_drift = 0.03;  // slow change of the artefact's size over the run (head motion)
  bool gradient = true;
  bool slice_triggers = false;
  bool bcg = false;
  double bcg_amplitude = 50.0;
  bool ecg_inverted = false;
  uint64_t seed = 1;
};

// A slice waveform (harmonics of the slice frequency up to 900 Hz in a smooth window over the
// slice), the same for every slice of the volume's active part: evaluable at any continuous time.
struct GradientWave {
  double slice_period, active;
  std::vector<double> amp, phase;
  double operator()(double u) const {  // u: s since the volume's onset
    if (u < 0 || u >= active) return 0.0;
    const double ramp = 0.004;
    const double v = std::fmod(u, slice_period);
    double w = 1.0;
    if (v < ramp) w = 0.5 * (1 - std::cos(M_PI * v / ramp));
    if (slice_period - v < ramp) w = 0.5 * (1 - std::cos(M_PI * (slice_period - v) / ramp));
    double s = 0.0;
    for (std::size_t h = 0; h < amp.size(); ++h)
      s += amp[h] * std::sin(2 * M_PI * static_cast<double>(h + 1) * u / slice_period + phase[h]);
    return w * s;
  }
};

double ecg_wave(double t) {  // t: s from the R peak; P, Q, R, S, T as Gaussians, uV
  auto g = [&](double c, double w, double a) { return a * std::exp(-0.5 * (t - c) * (t - c) / (w * w)); };
  return g(-0.2, 0.025, 100) + g(-0.03, 0.01, -120) + g(0.0, 0.012, 1000) + g(0.03, 0.01, -250) + g(0.3, 0.05, 250);
}

double bcg_wave(double t) {  // t: s from the R peak
  if (t < 0.15 || t > 0.8) return 0.0;
  const double u = t - 0.15;
  return std::exp(-u / 0.15) * std::sin(2 * M_PI * 3.0 * u) + 0.5 * std::exp(-0.5 * std::pow((u - 0.3) / 0.06, 2));
}

Synthetic make_synthetic(const SynthOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  Synthetic s;
  const auto n = static_cast<int64_t>(o.seconds * o.fs);
  const int C = o.eeg_channels + 1;
  Recording r;
  r.source = "synthetic";
  r.format = "EDF+C";
  r.sample_rate = o.fs;
  r.num_samples = n;
  for (int c = 0; c < o.eeg_channels; ++c) r.channels.push_back(Channel{fmt::format("E{}", c + 1), ChannelType::eeg, "uV"});
  r.channels.push_back(Channel{"ECG", ChannelType::ecg, "uV"});
  r.data.assign(static_cast<std::size_t>(C) * static_cast<std::size_t>(n), 0.0f);
  Recording clean = r;

  // EEG: AR(1) background + a drifting alpha rhythm, ~20 uV.
  for (int c = 0; c < o.eeg_channels; ++c) {
    float* x = clean.channel_data(c);
    double ar = 0.0, phase = c;
    const double alpha_f = 9.5 + c * 0.3;
    for (int64_t i = 0; i < n; ++i) {
      ar = 0.995 * ar + 1.2 * normal(rng);
      const double t = static_cast<double>(i) / o.fs;
      // A rhythm's phase wanders (a random walk): it is not locked to the scanner.
      phase += 2 * M_PI * alpha_f / o.fs + 0.02 * normal(rng);
      const double alpha = 15.0 * (1 + 0.5 * std::sin(2 * M_PI * 0.1 * t + c)) * std::sin(phase);
      x[i] = static_cast<float>(ar + alpha + 0.5 * normal(rng));
    }
  }
  // Heartbeats with variability; the clean ECG.
  for (double t = 0.4; t < o.seconds - 0.2; t += 0.9 + 0.05 * normal(rng) + 0.04 * std::sin(2 * M_PI * 0.25 * t))
    s.beats.push_back(t);
  {
    float* e = clean.channel_data(o.eeg_channels);
    for (int64_t i = 0; i < n; ++i) {
      const double t = static_cast<double>(i) / o.fs;
      double v = 0.0;
      for (double b : s.beats)
        if (std::fabs(t - b) < 0.6) v += ecg_wave(t - b);
      e[i] = static_cast<float>((o.ecg_inverted ? -v : v) + 5.0 * normal(rng));
    }
  }
  r.data = clean.data;

  if (o.bcg) {
    for (int c = 0; c < o.eeg_channels; ++c) {
      const double gain = o.bcg_amplitude * (0.6 + 0.8 * uniform(rng)) * (c % 2 ? -1 : 1);
      float* x = r.channel_data(c);
      for (double b : s.beats) {
        const double beat_gain = gain * (1.0 + 0.1 * normal(rng));
        for (int64_t i = static_cast<int64_t>((b + 0.1) * o.fs); i < static_cast<int64_t>((b + 0.85) * o.fs) && i < n; ++i)
          x[i] += static_cast<float>(beat_gain * bcg_wave(static_cast<double>(i) / o.fs - b));
      }
    }
  }
  if (o.gradient) {
    GradientWave wave;
    wave.slice_period = (o.tr - o.gap) / o.slices;
    wave.active = o.tr - o.gap;
    for (int h = 1; static_cast<double>(h) / wave.slice_period < 900.0; ++h) {
      wave.amp.push_back(1.0 / std::sqrt(static_cast<double>(h)) * (0.5 + uniform(rng)));
      wave.phase.push_back(2 * M_PI * uniform(rng));
    }
    double peak = 0.0;
    for (double u = 0; u < wave.slice_period; u += 1e-5) peak = std::max(peak, std::fabs(wave(u + wave.slice_period)));
    const double tr = o.tr * (1.0 + o.drift_ppm * 1e-6);
    for (double t = 2.0 + 0.37 / o.fs; t + o.tr < o.seconds - 1.0; t += tr) s.volume_onsets.push_back(t);
    for (int c = 0; c <= o.eeg_channels; ++c) {
      const double gain = o.amplitude / peak * (0.5 + uniform(rng)) * (c % 3 ? 1 : -1);
      float* x = r.channel_data(c);
      for (double v : s.volume_onsets) {
        for (auto i = static_cast<int64_t>(std::ceil(v * o.fs)); i < static_cast<int64_t>((v + o.tr) * o.fs) && i < n; ++i) {
          // A slow gain drift (head motion): a few percent over the run.
          const double t = static_cast<double>(i) / o.fs;
          x[i] += static_cast<float>(gain * (1.0 + o.gain_drift * std::sin(2 * M_PI * t / o.seconds)) * wave(t - v));
        }
      }
    }
    // Triggers at the first sample at or after each true onset, as an amplifier records a TTL.
    for (double v : s.volume_onsets) {
      if (o.slice_triggers) {
        for (int k = 0; k < o.slices; ++k) {
          const double t = v + k * wave.slice_period;
          r.annotations.push_back(Annotation{std::ceil(t * o.fs) / o.fs, 0.0, "Slice", ""});
        }
      } else {
        r.annotations.push_back(Annotation{std::ceil(v * o.fs) / o.fs, 0.0, "R128", ""});
      }
    }
  }
  s.raw = std::move(r);
  s.clean = std::move(clean);
  return s;
}

double pearson_f(const float* a, const float* b, int64_t n) {
  return signal::pearson(std::vector<double>(a, a + n), std::vector<double>(b, b + n));
}

// The truth at the output rate, as the cleaner resamples.
std::vector<float> truth_at(const Recording& clean, int64_t c, double rate) {
  return signal::resample(std::vector<float>(clean.channel_data(c), clean.channel_data(c) + clean.num_samples),
                          clean.sample_rate, rate);
}

// Per EEG channel: correlation of cleaned and true EEG, and residual RMS / true RMS, over the
// scanned part (from the first to past the last volume).
struct Quality {
  double min_r = 1.0, max_residual = 0.0;
};
Quality quality(const CleanedRecording& out, const Synthetic& s, int eeg_channels) {
  Quality q;
  const double rate = out.recording.sample_rate;
  const auto a = static_cast<int64_t>(s.volume_onsets.front() * rate) + 10;
  const auto b = std::min<int64_t>(out.recording.num_samples, static_cast<int64_t>((s.volume_onsets.back() + 2.0) * rate));
  for (int c = 0; c < eeg_channels; ++c) {
    const auto truth = truth_at(s.clean, c, rate);
    const float* y = out.recording.channel_data(c) + a;
    const float* t = truth.data() + a;
    q.min_r = std::min(q.min_r, pearson_f(y, t, b - a));
    double se = 0, st = 0;
    for (int64_t i = 0; i < b - a; ++i) {
      se += (y[i] - t[i]) * (y[i] - t[i]);
      st += t[i] * t[i];
    }
    q.max_residual = std::max(q.max_residual, std::sqrt(se / st));
  }
  return q;
}

}  // namespace

TEST_CASE("scanner triggers are found, checked and repaired", "[clean]") {
  SynthOptions o;
  o.seconds = 40;
  const auto s = make_synthetic(o);
  const auto t = find_scanner_triggers(s.raw);
  CHECK(t.label == "R128");
  CHECK(t.kind == TriggerKind::volume);
  CHECK(t.found == static_cast<int64_t>(s.volume_onsets.size()));
  CHECK(t.epoch_samples == 10000);
  CHECK(t.inserted == 0);
  CHECK(t.moved == 0);

  SECTION("a missing volume trigger is put back") {
    Recording r = s.raw;
    r.annotations.erase(r.annotations.begin() + 5);
    const auto u = find_scanner_triggers(r);
    CHECK(u.inserted == 1);
    REQUIRE(u.samples.size() == t.samples.size());
    CHECK(std::abs(u.samples[5] - t.samples[5]) <= 1);
  }
  SECTION("a shifted trigger is moved back onto the grid") {
    Recording r = s.raw;
    r.annotations[7].onset += 25.0 / o.fs;
    const auto u = find_scanner_triggers(r);
    CHECK(u.moved == 1);
    CHECK(std::abs(u.samples[7] - t.samples[7]) <= 1);
    REQUIRE_FALSE(u.notes.empty());
    CHECK_THAT(u.notes.back(), Contains("25 samples off the scanner's grid"));
  }
  SECTION("triggers out of order are refused") {
    Recording r = s.raw;
    std::swap(r.annotations[3].onset, r.annotations[4].onset);
    CHECK_THAT(error_of([&] { find_scanner_triggers(r); }), Contains("out of order"));
  }
  SECTION("hopelessly irregular triggers are refused") {
    Recording r = s.raw;
    for (std::size_t i = 0; i < r.annotations.size(); ++i) r.annotations[i].onset += 0.013 * static_cast<double>(i * i % 7);
    CHECK_THAT(error_of([&] { find_scanner_triggers(r); }), Contains("too irregular"));
  }
  SECTION("no triggers: an empty result naming the markers") {
    Recording r = s.raw;
    r.annotations.clear();
    const auto u = find_scanner_triggers(r);
    CHECK(u.samples.empty());
    REQUIRE(u.notes.size() == 1);
    CHECK_THAT(u.notes[0], Contains("no markers"));
  }
}

TEST_CASE("sub-sample shifts match the scanner's true timing", "[clean]") {
  SynthOptions o;
  o.seconds = 60;
  o.drift_ppm = 60;  // the onsets walk over 0.12 samples per volume: every fraction occurs
  const auto s = make_synthetic(o);
  const auto t = find_scanner_triggers(s.raw);
  clean_detail::GradientSettings settings;
  settings.sample_rate = o.fs;
  clean_detail::GradientCorrector corrector(clean_detail::make_layout(t.samples, t.epoch_samples, s.raw.num_samples),
                                            settings);
  corrector.estimate_shifts({s.raw.channel_data(0), s.raw.channel_data(1)});
  // The true delay of each epoch's artefact after its trigger: onset * fs - trigger (in (-1, 0]).
  std::vector<double> truth;
  for (std::size_t i = 0; i < s.volume_onsets.size(); ++i)
    truth.push_back(s.volume_onsets[i] * o.fs - static_cast<double>(t.samples[i]));
  double mean_truth = 0, mean_est = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    mean_truth += truth[i];
    mean_est += corrector.shifts()[i];
  }
  mean_truth /= static_cast<double>(truth.size());
  mean_est /= static_cast<double>(truth.size());
  double worst = 0.0, spread = 0.0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    worst = std::max(worst, std::fabs((corrector.shifts()[i] - mean_est) - (truth[i] - mean_truth)));
    spread = std::max(spread, std::fabs(truth[i] - mean_truth));
  }
  INFO("largest true offset from the mean " << spread << " samples, largest error " << worst);
  CHECK(spread > 0.4);
  CHECK(worst < 0.01);
  // The slice period from the mean artefact: (2.0 - 0.1) / 20 s = 95 ms = 475 samples.
  const auto sp = clean_detail::slice_period(corrector.mean_artefact(), 50);
  CHECK(sp.period == Approx(475.0).margin(0.5));
  CHECK(sp.slices == 20);
}

TEST_CASE("gradient correction recovers the EEG under a 4000 uV artefact", "[clean]") {
  SynthOptions o;
  const auto s = make_synthetic(o);
  CleanOptions opt;
  opt.bcg = false;
  const auto out = clean_recording(s.raw, opt);
  const auto& g = out.report.gradient;
  CHECK(g.applied);
  CHECK(g.trigger_kind == TriggerKind::volume);
  CHECK(g.epochs == static_cast<int64_t>(s.volume_onsets.size()));
  CHECK(g.slices == 20);
  CHECK(g.slices_inferred);
  CHECK(out.recording.sample_rate == 250.0);
  CHECK(out.recording.num_samples == 90 * 250);
  const auto q = quality(out, s, o.eeg_channels);
  INFO("min r " << q.min_r << ", max residual " << q.max_residual);
  // The floor of average artefact subtraction: the template carries the EEG of the K = 30 epochs it
  // averages, 1/sqrt(30) = 18 % of the EEG's RMS (r = 0.984).
  CHECK(q.min_r > 0.975);
  CHECK(q.max_residual < 0.22);
  // The artefact's harmonics fall by orders of magnitude.
  CHECK(g.slice_harmonics_after < 1e-3 * g.slice_harmonics_before);

  SECTION("sub-sample alignment is what makes it work") {
    CleanOptions coarse = opt;
    coarse.max_shift_samples = 1e-6;
    coarse.gradient_components = 0;
    const auto q2 = quality(clean_recording(s.raw, coarse), s, o.eeg_channels);
    INFO("without alignment: min r " << q2.min_r << ", max residual " << q2.max_residual);
    CHECK(q2.max_residual > 3 * q.max_residual);
  }
  SECTION("the file path and the in-memory recording give the same result") {
    neurobolt::test::TempDir dir;
    Recording r = s.raw;
    r.source = (dir / "raw.edf").string();
    write_edf(r, r.source);
    const auto from_file = clean_recording(r.source, opt);
    const auto q3 = quality(from_file, s, o.eeg_channels);
    CHECK(q3.min_r > 0.975);
    CHECK(from_file.report.gradient.epochs == g.epochs);
  }
  SECTION("a small memory budget processes one channel at a time with the same result") {
    CleanOptions small = opt;
    small.max_memory_bytes = 1 << 20;
    const auto out2 = clean_recording(s.raw, small);
    REQUIRE(out2.recording.data.size() == out.recording.data.size());
    double worst = 0;
    for (std::size_t i = 0; i < out.recording.data.size(); ++i)
      worst = std::max(worst, static_cast<double>(std::fabs(out.recording.data[i] - out2.recording.data[i])));
    CHECK(worst < 1e-3);
  }
}

TEST_CASE("slice triggers: epochs per slice, pauses between volumes", "[clean]") {
  SynthOptions o;
  o.slice_triggers = true;
  const auto s = make_synthetic(o);
  const auto t = find_scanner_triggers(s.raw);
  CHECK(t.kind == TriggerKind::slice);
  CHECK(t.label == "Slice");
  CHECK(t.epoch_samples == 475);
  CHECK(t.inserted == 0);
  CleanOptions opt;
  opt.bcg = false;
  const auto out = clean_recording(s.raw, opt);
  CHECK(out.report.gradient.slices == 20);
  CHECK(out.report.gradient.repetition_time == Approx(2.0).margin(0.001));
  CHECK(out.report.gradient.components == 0);
  const auto q = quality(out, s, o.eeg_channels);
  INFO("min r " << q.min_r << ", max residual " << q.max_residual);
  // Worse than volume epochs here: the synthetic alpha (9.5-10.7 Hz) beats slowly against the
  // 10.5 Hz slice frequency, so 30 neighbouring slice epochs share part of their EEG.
  CHECK(q.min_r > 0.8);
}

TEST_CASE("sampling too low for the slice frequency is refused", "[clean]") {
  Recording r;
  r.source = "low.edf";
  r.sample_rate = 250;
  r.num_samples = 250 * 20;
  r.channels.push_back(Channel{"Cz", ChannelType::eeg, "uV"});
  r.data.assign(static_cast<std::size_t>(r.num_samples), 0.0f);
  for (int k = 0; k < 1000; ++k) r.annotations.push_back(Annotation{1.0 + k * 0.012, 0.0, "Slice", ""});
  CleanOptions opt;
  opt.sample_rate = 0;
  CHECK_THAT(error_of([&] { clean_recording(r, opt); }), Contains("sampling too low for the slice frequency"));
}

TEST_CASE("R peaks: every beat, either polarity", "[clean]") {
  for (bool inverted : {false, true}) {
    SynthOptions o;
    o.gradient = false;
    o.ecg_inverted = inverted;
    o.seconds = 120;
    o.fs = 250;
    const auto s = make_synthetic(o);
    bool found_inverted = false;
    const auto peaks = detect_r_peaks(s.clean.channel_data(o.eeg_channels), s.clean.num_samples, o.fs, &found_inverted);
    CHECK(found_inverted == inverted);
    REQUIRE(peaks.size() == s.beats.size());
    double worst = 0;
    for (std::size_t i = 0; i < peaks.size(); ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(peaks[i]) / o.fs - s.beats[i]));
    CHECK(worst <= 0.008);
  }
}

TEST_CASE("BCG correction under the gradient artefact", "[clean]") {
  SynthOptions o;
  o.bcg = true;
  o.ecg_inverted = true;
  o.seconds = 120;
  const auto s = make_synthetic(o);
  CleanOptions opt;
  const auto out = clean_recording(s.raw, opt);
  const auto& b = out.report.bcg;
  REQUIRE(b.applied);
  CHECK(b.ecg_channel == "ECG");
  CHECK(b.ecg_inverted);
  // Beats inside the scanned stretch are all found, within 8 ms.
  int64_t matched = 0;
  for (double t : s.beats) {
    for (double p : out.r_peaks)
      if (std::fabs(p - t) <= 0.008) {
        ++matched;
        break;
      }
  }
  CHECK(matched >= static_cast<int64_t>(s.beats.size()) - 1);
  CHECK(b.heart_rate_bpm == Approx(60.0 / 0.9).epsilon(0.05));
  CHECK(b.evoked_rms_after < 0.15 * b.evoked_rms_before);
  const auto q = quality(out, s, o.eeg_channels);
  INFO("min r " << q.min_r << ", max residual " << q.max_residual);
  // The two template floors together (gradient: 1/sqrt(30) of the EEG; BCG: the mean heartbeat
  // and its derivative fitted per beat): r 0.975 x 0.96.
  CHECK(q.min_r > 0.93);

  SECTION("AAS works too, OBS does at least as well") {
    CleanOptions aas = opt;
    aas.bcg_method = BcgMethod::aas;
    const auto out2 = clean_recording(s.raw, aas);
    const auto q2 = quality(out2, s, o.eeg_channels);
    CHECK(q2.min_r > 0.93);
    CHECK(q.max_residual <= q2.max_residual * 1.1);
  }
  SECTION("without an ECG channel the BCG step asks for one") {
    CleanOptions no_ecg = opt;
    no_ecg.channels = {"E1", "E2", "E3"};
    CHECK_THAT(error_of([&] { clean_recording(s.raw, no_ecg); }), Contains("needs an ECG channel"));
  }
}

TEST_CASE("a recording without a scanner is left alone", "[clean]") {
  SynthOptions o;
  o.gradient = false;
  o.seconds = 30;
  const auto s = make_synthetic(o);
  const auto out = clean_recording(s.raw, CleanOptions{});
  CHECK_FALSE(out.report.gradient.applied);
  CHECK_FALSE(out.report.bcg.applied);
  CHECK(out.r_peaks.empty());
  bool noted = false;
  for (const auto& n : out.report.notes) noted = noted || n.find("no MR scanner") != std::string::npos;
  CHECK(noted);
  // Exactly the plain resampling of the input.
  for (int c = 0; c <= o.eeg_channels; ++c) {
    const auto expected = truth_at(s.raw, c, 250.0);
    REQUIRE(static_cast<int64_t>(expected.size()) == out.recording.num_samples);
    for (int64_t i = 0; i < out.recording.num_samples; ++i) REQUIRE(out.recording.channel_data(c)[i] == expected[static_cast<std::size_t>(i)]);
  }
  SECTION("but an artefact without triggers is refused") {
    SynthOptions g = o;
    g.gradient = true;
    auto raw = make_synthetic(g).raw;
    raw.annotations.clear();
    CHECK_THAT(error_of([&] { clean_recording(raw, CleanOptions{}); }), Contains("--trigger"));
  }
}
