// clean_recording: triggers, gradient correction channel group by channel group, resampling,
// then the BCG on the output.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>
#include <thread>

#include "clean/bcg.hpp"
#include "clean/common.hpp"
#include "clean/gradient.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/clean.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void validate(const CleanOptions& o) {
  auto check = [](bool ok, const std::string& field, const std::string& expected, const std::string& found) {
    if (!ok) throw ConfigError(fmt::format("clean option {}: expected {}, found {}", field, expected, found));
  };
  check(o.template_epochs >= 2 && o.template_epochs <= 10000, "template_epochs", "2 to 10000",
        std::to_string(o.template_epochs));
  check(o.gradient_components >= -1 && o.gradient_components <= 64, "gradient_components", "-1 (auto) or 0 to 64",
        std::to_string(o.gradient_components));
  check(o.max_shift_samples > 0 && o.max_shift_samples <= 16, "max_shift_samples", "above 0 and at most 16",
        fmt::format("{}", o.max_shift_samples));
  check(o.sample_rate >= 0 && std::isfinite(o.sample_rate), "sample_rate", "0 (the file's rate) or a rate in Hz",
        fmt::format("{}", o.sample_rate));
  check(o.lowpass_hz >= 0 && std::isfinite(o.lowpass_hz), "lowpass_hz", "0 (none) or a frequency in Hz",
        fmt::format("{}", o.lowpass_hz));
  check(o.bcg_components >= 0 && o.bcg_components <= 16, "bcg_components", "0 to 16", std::to_string(o.bcg_components));
  check(o.bcg_template_beats >= 2 && o.bcg_template_beats <= 1000, "bcg_template_beats", "2 to 1000",
        std::to_string(o.bcg_template_beats));
  check(o.threads >= 0 && o.threads <= 4096, "threads", "0 (all cores) to 4096", std::to_string(o.threads));
  check(o.max_memory_bytes >= (1LL << 20), "max_memory_bytes", "at least 1 MiB", std::to_string(o.max_memory_bytes));
}

using clean_detail::upper_median;

// Of type ECG, or named so (ECG/EKG anywhere in the name, as the readers type channels).
bool is_ecg(const Channel& ch) {
  return ch.type == ChannelType::ecg || io::channel_type_from_name(ch.name) == ChannelType::ecg;
}

// The RMS of the first difference: a few uV for EEG at kHz rates, hundreds for a gradient artefact.
double difference_rms(const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 1; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(x[i - 1]);
    s += d * d;
  }
  return n > 1 ? std::sqrt(s / static_cast<double>(n - 1)) : 0.0;
}

// Runs f(i) for i in [0, count) on up to `threads` threads; the first exception is rethrown.
template <typename F>
void parallel_for(int threads_wanted, int64_t count, F f) {
  const int64_t wanted = threads_wanted > 0 ? threads_wanted : std::max<int64_t>(1, std::thread::hardware_concurrency());
  const auto threads = std::max<int64_t>(1, std::min<int64_t>(count, wanted));
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex mutex;
  auto work = [&] {
    for (int64_t i = next++; i < count; i = next++) {
      try {
        f(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        next = count;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

double harmonic_power(const float* x, int64_t n, double rate, double f0, double max_hz) {
  if (!(f0 > 0) || n < 16) return 0.0;
  // Segments of four periods (at least two seconds), so each harmonic falls on or next to a bin.
  const auto nperseg = std::min<int64_t>(n, static_cast<int64_t>(std::ceil(std::max(4.0 / f0, 2.0) * rate)));
  const auto spec = signal::welch(std::vector<double>(x, x + n), rate, nperseg);
  const double df = spec.frequencies.size() > 1 ? spec.frequencies[1] : rate;
  const double top = std::min(max_hz, 0.5 * rate);
  double total = 0.0;
  for (double f = f0; f < top; f += f0) {
    const auto k = static_cast<int64_t>(std::llround(f / df));
    double best = 0.0;
    for (int64_t j = std::max<int64_t>(1, k - 1); j <= k + 1 && j < static_cast<int64_t>(spec.power.size()); ++j)
      best = std::max(best, spec.power[static_cast<std::size_t>(j)]);
    total += best;
  }
  return total;
}

namespace {

// Reads the samples of the named channels (whole recording) as a Recording.
using GroupReader = std::function<Recording(const std::vector<std::string>&)>;

CleanedRecording clean_impl(const Recording& header, const GroupReader& read_group, const CleanOptions& options,
                            const std::function<void(const CleanProgress&)>& progress) {
  validate(options);
  const std::string& path = header.source;
  const double fs = header.sample_rate;
  const int64_t n = header.num_samples;
  const int64_t C = header.num_channels();
  if (!(fs > 0) || n <= 0 || C == 0) {
    throw FormatError(fmt::format("'{}': nothing to clean ({} channels, {} samples at {} Hz)", path, C, n, fs));
  }
  if (!header.gaps.empty()) {
    throw ConfigError(fmt::format("'{}': a discontinuous recording ({} gaps) cannot be cleaned: the artefact epochs "
                                  "need continuous samples",
                                  path, header.gaps.size()));
  }
  const double out_rate = options.sample_rate > 0 ? options.sample_rate : fs;
  if (out_rate > fs) {
    throw ConfigError(fmt::format("clean: output rate {} Hz: expected at most the recording's {} Hz", out_rate, fs));
  }
  std::optional<signal::PolyphaseResampler> resampler;
  if (out_rate != fs) {
    const auto ratio = signal::resample_ratio(fs, out_rate);
    resampler.emplace(ratio.up, ratio.down);
  }
  const int64_t n_out = resampler ? resampler->output_length(n) : n;
  if (options.lowpass_hz > 0 && !(options.lowpass_hz < 0.5 * out_rate)) {
    throw ConfigError(fmt::format("clean: low-pass {} Hz: expected below the output Nyquist frequency {} Hz",
                                  options.lowpass_hz, 0.5 * out_rate));
  }

  CleanedRecording result;
  CleanReport& report = result.report;
  report.source = path;
  report.input_rate = fs;
  report.output_rate = out_rate;
  report.channels = C;
  report.input_samples = n;
  report.output_samples = n_out;

  Recording& out = result.recording;
  out.source = path;
  out.format = header.format;
  out.sample_rate = out_rate;
  out.start_time = header.start_time;
  out.channels = header.channels;
  out.num_samples = n_out;
  out.annotations = header.annotations;
  out.data.assign(static_cast<std::size_t>(C * n_out), 0.0f);

  // Triggers and the epochs they make.
  ScannerTriggers triggers;
  if (options.gradient) triggers = find_scanner_triggers(header, options);
  for (const auto& note : triggers.notes) report.notes.push_back(note);
  std::optional<clean_detail::GradientCorrector> corrector;
  GradientReport& g = report.gradient;
  if (!triggers.samples.empty()) {
    g.trigger_label = triggers.label;
    g.trigger_kind = triggers.kind;
    g.triggers_found = triggers.found;
    g.triggers_inserted = triggers.inserted;
    g.triggers_moved = triggers.moved;
    g.epoch_samples = triggers.epoch_samples;
    g.epoch_seconds = static_cast<double>(triggers.epoch_samples) / fs;
    if (triggers.kind == TriggerKind::slice) {
      if (triggers.epoch_samples < 4) {
        throw ConfigError(fmt::format("'{}': slice triggers every {} samples: sampling too low for the slice frequency "
                                      "{:.1f} Hz (expected at least 4 samples per slice; record at a higher rate)",
                                      path, triggers.epoch_samples, fs / static_cast<double>(triggers.epoch_samples)));
      }
      g.slice_period = g.epoch_seconds;
    } else {
      g.repetition_time = g.epoch_seconds;
    }
    clean_detail::GradientSettings settings;
    settings.template_epochs = options.template_epochs;
    settings.components = options.gradient_components >= 0 ? options.gradient_components
                                                           : (triggers.kind == TriggerKind::volume ? 4 : 0);
    settings.max_shift = options.max_shift_samples;
    settings.sample_rate = fs;
    // Residual components only matter below what the resampled output keeps.
    if (resampler) settings.component_max_hz = std::min(0.5 * fs, 0.75 * out_rate);
    corrector.emplace(clean_detail::make_layout(triggers.samples, triggers.epoch_samples, n), settings);
    const auto& layout = corrector->layout();
    g.epochs = static_cast<int64_t>(layout.starts.size());
    if (g.epochs > 0) {
      g.scanned_from = static_cast<double>(layout.starts.front()) / fs;
      g.scanned_to = static_cast<double>(layout.starts.back() + layout.lengths.back()) / fs;
    }
    // As many as the epochs support (GradientCorrector keeps 10 complete epochs per component).
    const auto whole = std::count(layout.complete.begin(), layout.complete.end(), 1);
    g.components = std::min<int>(settings.components, static_cast<int>(whole / 10));
  }

  // Channel groups that fit the memory budget at the file's rate.
  const auto per_channel = static_cast<int64_t>(sizeof(float)) * n;
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(C, options.max_memory_bytes / std::max<int64_t>(1, per_channel)));
  std::vector<double> before_volume, after_volume, before_slice, after_slice;
  std::mutex report_mutex;
  bool scanner_checked = false;
  bool gradient_on = corrector.has_value();
  for (int64_t first = 0; first < C; first += group) {
    const int64_t count = std::min(group, C - first);
    std::vector<std::string> names;
    for (int64_t c = first; c < first + count; ++c) names.push_back(header.channels[static_cast<std::size_t>(c)].name);
    auto t_read = Clock::now();
    const Recording rec = read_group(names);
    report.seconds_read += since(t_read);
    for (int64_t c = 0; c < count; ++c) {
      const float* x = rec.channel_data(c);
      for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i])) {
          throw FormatError(fmt::format("'{}' channel '{}': sample {} is not a finite number", path,
                                        rec.channels[static_cast<std::size_t>(c)].name, i));
        }
      }
    }
    if (!scanner_checked) {
      scanner_checked = true;
      std::vector<double> diffs;
      double peak = 0.0;
      for (int64_t c = 0; c < count; ++c) {
        if (rec.channels[static_cast<std::size_t>(c)].type != ChannelType::eeg) continue;
        diffs.push_back(difference_rms(rec.channel_data(c), n));
        for (int64_t i = 0; i < n; ++i) peak = std::max(peak, static_cast<double>(std::fabs(rec.channel_data(c)[i])));
      }
      g.peak_before_uv = peak;
      const double typical = upper_median(diffs);
      // EEG changes by a few uV from sample to sample; a gradient artefact by hundreds.
      const bool looks_scanned = typical > 50.0;
      if (options.gradient && !gradient_on) {
        if (looks_scanned && !options.force_steps) {
          throw ConfigError(fmt::format(
              "'{}': no scanner triggers, but the signal looks like it holds a gradient artefact (median RMS of the "
              "sample-to-sample difference {:.0f} uV; EEG has a few): {}. Name the volume or slice marker with "
              "--trigger LABEL",
              path, typical, triggers.notes.empty() ? std::string("no triggers") : triggers.notes.front()));
        }
      }
      if (gradient_on) {
        // The shifts (common to every channel: one scanner, one amplifier clock), from up to 4 EEG
        // channels spread over the montage, read on their own so that the result does not depend
        // on how channels are grouped.
        std::vector<std::string> eeg_names;
        for (const auto& ch : header.channels)
          if (ch.type == ChannelType::eeg) eeg_names.push_back(ch.name);
        if (eeg_names.empty())
          for (const auto& ch : header.channels) eeg_names.push_back(ch.name);
        std::vector<std::string> ref_names;
        const std::size_t want = std::min<std::size_t>(4, eeg_names.size());
        for (std::size_t k = 0; k < want; ++k) ref_names.push_back(eeg_names[k * eeg_names.size() / want]);
        auto t_ref = Clock::now();
        const Recording refs_rec = read_group(ref_names);
        report.seconds_read += since(t_ref);
        std::vector<const float*> refs;
        for (int64_t k = 0; k < refs_rec.num_channels(); ++k) refs.push_back(refs_rec.channel_data(k));
        const auto t_shift = Clock::now();
        corrector->estimate_shifts(refs);
        report.seconds_gradient += since(t_shift);
        const auto& s = corrector->shifts();
        g.shift_min = *std::min_element(s.begin(), s.end());
        g.shift_max = *std::max_element(s.begin(), s.end());
        double m = 0.0, ss = 0.0;
        for (double v : s) m += v;
        m /= static_cast<double>(s.size());
        for (double v : s) ss += (v - m) * (v - m);
        g.shift_sd = std::sqrt(ss / static_cast<double>(s.size()));
        if (triggers.kind == TriggerKind::volume) {
          // No EPI slice is shorter than 10 ms.
          const auto sp = clean_detail::slice_period(corrector->mean_artefact(), static_cast<int64_t>(0.01 * fs));
          if (sp.period > 0) {
            g.slice_period = sp.period / fs;
            g.slices = sp.slices;
            g.slices_inferred = true;
            if (sp.period < 4.0) {
              throw ConfigError(fmt::format(
                  "'{}': the gradient artefact repeats every {:.2f} samples (slice frequency {:.1f} Hz): sampling too "
                  "low for the slice frequency (expected at least 4 samples per slice)",
                  path, sp.period, fs / sp.period));
            }
          } else {
            report.notes.push_back("slice timing: no slice periodicity found in the volume artefact");
          }
        } else {
          // Slice triggers: slices per volume and the volume period from the pauses, when there are.
          const double pause = static_cast<double>(triggers.epoch_samples) + clean_detail::grid_tolerance(triggers.epoch_samples);
          int64_t run = 0;
          std::vector<int64_t> per_volume;
          for (std::size_t i = 0; i + 1 < triggers.samples.size(); ++i) {
            ++run;
            if (static_cast<double>(triggers.samples[i + 1] - triggers.samples[i]) > pause) {
              per_volume.push_back(run);
              run = 0;
            }
          }
          if (!per_volume.empty()) {
            g.slices = upper_median(per_volume);
            // The volume period: slices + pause.
            std::vector<double> starts;
            starts.push_back(static_cast<double>(triggers.samples[0]));
            for (std::size_t i = 0; i + 1 < triggers.samples.size(); ++i)
              if (static_cast<double>(triggers.samples[i + 1] - triggers.samples[i]) > pause) {
                starts.push_back(static_cast<double>(triggers.samples[i + 1]));
              }
            std::vector<double> tr;
            for (std::size_t i = 1; i < starts.size(); ++i) tr.push_back((starts[i] - starts[i - 1]) / fs);
            if (!tr.empty()) g.repetition_time = upper_median(tr);
          }
        }
      }
    }
    // Correct and resample each channel of the group.
    const auto t_group = Clock::now();
    parallel_for(options.threads, count, [&](int64_t c) {
      const float* x = rec.channel_data(c);
      std::vector<float> y = corrector ? corrector->correct(x) : std::vector<float>(x, x + n);
      float* dst = out.channel_data(first + c);
      std::vector<float> before;
      if (resampler) {
        resampler->apply(y.data(), n, dst);
        if (corrector) {
          before.resize(static_cast<std::size_t>(n_out));
          resampler->apply(x, n, before.data());
        }
      } else {
        std::copy(y.begin(), y.end(), dst);
        if (corrector) before.assign(x, x + n);
      }
      if (corrector && rec.channels[static_cast<std::size_t>(c)].type == ChannelType::eeg) {
        const double top = 0.5 * out_rate;
        double bv = 0, av = 0, bs = 0, as = 0;
        if (g.repetition_time > 0) {
          bv = harmonic_power(before.data(), n_out, out_rate, 1.0 / g.repetition_time, top);
          av = harmonic_power(dst, n_out, out_rate, 1.0 / g.repetition_time, top);
        }
        if (g.slice_period > 0) {
          bs = harmonic_power(before.data(), n_out, out_rate, 1.0 / g.slice_period, top);
          as = harmonic_power(dst, n_out, out_rate, 1.0 / g.slice_period, top);
        }
        std::lock_guard<std::mutex> lock(report_mutex);
        before_volume.push_back(bv);
        after_volume.push_back(av);
        before_slice.push_back(bs);
        after_slice.push_back(as);
      }
    });
    report.seconds_gradient += since(t_group);
    if (progress) progress(CleanProgress{"gradient", first + count, C});
  }
  if (gradient_on) {
    g.applied = true;
    g.volume_harmonics_before = upper_median(before_volume);
    g.volume_harmonics_after = upper_median(after_volume);
    g.slice_harmonics_before = upper_median(before_slice);
    g.slice_harmonics_after = upper_median(after_slice);
    std::string slices = "slice timing unknown";
    if (g.slices > 0) {
      slices = fmt::format("{} slices per volume{}, slice period {:.2f} ms", g.slices, g.slices_inferred ? " (inferred)" : "",
                           1000.0 * g.slice_period);
    } else if (g.slice_period > 0) {
      slices = fmt::format("slice period {:.2f} ms", 1000.0 * g.slice_period);
    }
    report.notes.push_back(fmt::format(
        "gradient: {} triggers '{}' ({} found, {} put back, {} moved), {} epochs of {} samples ({:.4f} s), {}, "
        "sub-sample shifts {:.3f} to {:.3f} samples (SD {:.3f}), {} residual components",
        to_string(g.trigger_kind), g.trigger_label, g.triggers_found, g.triggers_inserted, g.triggers_moved, g.epochs,
        g.epoch_samples, g.epoch_seconds, slices, g.shift_min, g.shift_max, g.shift_sd, g.components));
  } else if (options.gradient) {
    report.notes.push_back("gradient: no scanner triggers and no gradient artefact in the signal: nothing to correct");
  }
  // Optional low-pass on the output.
  if (options.lowpass_hz > 0) {
    const auto lp = signal::butter(4, options.lowpass_hz, out_rate, signal::FilterType::lowpass);
    if (n_out > 3 * (2 * static_cast<int64_t>(lp.sos.size()) + 1)) {
      for (int64_t c = 0; c < C; ++c) {
        float* d = out.channel_data(c);
        const auto f = signal::sosfiltfilt(lp.sos, std::vector<double>(d, d + n_out));
        for (int64_t i = 0; i < n_out; ++i) d[i] = static_cast<float>(f[static_cast<std::size_t>(i)]);
      }
    }
  }

  // BCG: only inside a scanner, unless asked regardless.
  BcgReport& b = report.bcg;
  const bool scanner = gradient_on || (!options.gradient && options.bcg);
  if (options.bcg && (scanner || options.force_steps)) {
    const auto t_bcg = Clock::now();
    int64_t ecg = -1;
    if (!options.ecg_channel.empty()) {
      ecg = out.find_channel(options.ecg_channel);
      if (ecg < 0) {
        std::vector<std::string> names;
        for (const auto& ch : header.channels) names.push_back(ch.name);
        if (names.size() > 12) {
          names.resize(12);
          names.push_back("...");
        }
        throw ConfigError(fmt::format("'{}': ECG channel '{}' not found (channels: {})", path, options.ecg_channel,
                                      fmt::join(names, ", ")));
      }
    } else {
      for (int64_t c = 0; c < C && ecg < 0; ++c)
        if (out.channels[static_cast<std::size_t>(c)].type == ChannelType::ecg) ecg = c;
      for (int64_t c = 0; c < C && ecg < 0; ++c)
        if (is_ecg(out.channels[static_cast<std::size_t>(c)])) ecg = c;
    }
    if (ecg < 0) {
      throw ConfigError(fmt::format(
          "'{}': the BCG correction needs an ECG channel and the recording has none of type ECG or named ECG/EKG: name "
          "it with --ecg NAME, or skip the BCG step with --no-bcg",
          path));
    }
    b.ecg_channel = out.channels[static_cast<std::size_t>(ecg)].name;
    bool inverted = false;
    int64_t fixed = 0;
    std::vector<int64_t> peaks;
    try {
      peaks = detect_r_peaks(out.channel_data(ecg), n_out, out_rate, &inverted, &fixed);
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("'{}' channel '{}': {}", path, b.ecg_channel, e.what()));
    }
    if (peaks.size() < 4) {
      throw ConfigError(fmt::format("'{}' channel '{}': expected R peaks, found {}", path, b.ecg_channel, peaks.size()));
    }
    b.ecg_inverted = inverted;
    b.r_peaks = static_cast<int64_t>(peaks.size());
    b.beats_fixed = fixed;
    std::vector<double> rr;
    for (std::size_t i = 1; i < peaks.size(); ++i) rr.push_back(static_cast<double>(peaks[i] - peaks[i - 1]) / out_rate);
    const double med_rr = upper_median(rr);
    b.heart_rate_bpm = 60.0 / med_rr;
    double m = 0, ss = 0;
    for (double v : rr) m += v;
    m /= static_cast<double>(rr.size());
    for (double v : rr) ss += (v - m) * (v - m);
    b.rr_sd = std::sqrt(ss / static_cast<double>(rr.size()));
    if (b.heart_rate_bpm < 30 || b.heart_rate_bpm > 200) {
      report.warnings.push_back(fmt::format("heart rate {:.0f} bpm from channel '{}' is implausible: check the ECG",
                                            b.heart_rate_bpm, b.ecg_channel));
    }
    b.method = options.bcg_method;
    b.components = options.bcg_method == BcgMethod::obs ? options.bcg_components : 0;
    std::vector<double> rms_before(static_cast<std::size_t>(C), -1.0), rms_after(static_cast<std::size_t>(C), -1.0);
    auto corrected = [&](int64_t c) {
      const auto type = out.channels[static_cast<std::size_t>(c)].type;
      return c != ecg && (type == ChannelType::eeg || type == ChannelType::eog);
    };
    // The beats' latencies, common to all channels (the heart moves the whole head at once).
    std::vector<const float*> all;
    for (int64_t c = 0; c < C; ++c)
      if (corrected(c)) all.push_back(out.channel_data(c));
    const std::vector<double> latencies = clean_detail::bcg_latencies(all, n_out, peaks);
    parallel_for(options.threads, C, [&](int64_t c) {
      if (!corrected(c)) return;
      float* d = out.channel_data(c);
      rms_before[static_cast<std::size_t>(c)] = clean_detail::evoked_rms(d, n_out, peaks);
      clean_detail::remove_bcg(d, n_out, peaks, options.bcg_method, options.bcg_components, options.bcg_template_beats,
                               &latencies);
      rms_after[static_cast<std::size_t>(c)] = clean_detail::evoked_rms(d, n_out, peaks);
    });
    auto rms_over = [](const std::vector<double>& v) {
      double s = 0;
      int64_t k = 0;
      for (double x : v)
        if (x >= 0) {
          s += x * x;
          ++k;
        }
      return k ? std::sqrt(s / static_cast<double>(k)) : 0.0;
    };
    b.evoked_rms_before = rms_over(rms_before);
    b.evoked_rms_after = rms_over(rms_after);
    b.applied = true;
    for (int64_t p : peaks) {
      const double t = static_cast<double>(p) / out_rate;
      result.r_peaks.push_back(t);
      Annotation a;
      a.onset = t;
      a.label = "R-peak";
      out.annotations.push_back(a);
    }
    std::stable_sort(out.annotations.begin(), out.annotations.end(),
                     [](const Annotation& x, const Annotation& y) { return x.onset < y.onset; });
    report.seconds_bcg = since(t_bcg);
    report.notes.push_back(fmt::format(
        "BCG: {} R peaks on '{}'{} ({:.1f} bpm, RR SD {:.3f} s, {} beats fixed), {} with {} components; evoked BCG RMS "
        "{:.2f} -> {:.2f} uV",
        b.r_peaks, b.ecg_channel, b.ecg_inverted ? " (inverted ECG)" : "", b.heart_rate_bpm, b.rr_sd, b.beats_fixed,
        to_string(b.method), b.components, b.evoked_rms_before, b.evoked_rms_after));
    if (progress) progress(CleanProgress{"bcg", C, C});
  } else if (options.bcg) {
    report.notes.push_back("BCG: no MR scanner in this recording (no triggers, no gradient artefact): not corrected");
  }
  return result;
}

}  // namespace

CleanedRecording clean_recording(const std::string& path, const CleanOptions& options,
                                 const std::function<void(const CleanProgress&)>& progress) {
  ReadOptions header_only;
  header_only.header_only = true;
  header_only.channels = options.channels;
  const Recording header = read_recording(path, header_only);
  if (header.num_samples <= 0) {
    // A header-only read cannot tell an empty recording from one whose data file is missing (a
    // BrainVision header without DataPoints): opening it checks the data files and names one missing.
    ReadOptions check;
    check.channels = options.channels;
    RecordingReader reader(path, check);
  }
  return clean_impl(
      header,
      [&](const std::vector<std::string>& names) {
        ReadOptions read;
        read.channels = names;
        return RecordingReader(path, read).read(0, -1);
      },
      options, progress);
}

CleanedRecording clean_recording(const Recording& recording, const CleanOptions& options,
                                 const std::function<void(const CleanProgress&)>& progress) {
  if (recording.samples_in_data() != recording.num_samples ||
      static_cast<int64_t>(recording.data.size()) != recording.num_channels() * recording.num_samples) {
    throw ConfigError(fmt::format("'{}': clean_recording needs the whole recording in memory ({} channels x {} "
                                  "samples), found {} samples",
                                  recording.source, recording.num_channels(), recording.num_samples,
                                  recording.data.size()));
  }
  Recording header = recording;
  header.data.clear();
  std::vector<int64_t> keep;
  if (!options.channels.empty()) {
    header.channels.clear();
    for (const auto& name : options.channels) {
      const int64_t c = recording.find_channel(name);
      if (c < 0) throw ConfigError(fmt::format("'{}': channel '{}' not found", recording.source, name));
      header.channels.push_back(recording.channels[static_cast<std::size_t>(c)]);
    }
  }
  return clean_impl(
      header,
      [&](const std::vector<std::string>& names) {
        Recording part = header;
        part.channels.clear();
        part.data.clear();
        for (const auto& name : names) {
          const int64_t c = recording.find_channel(name);
          part.channels.push_back(recording.channels[static_cast<std::size_t>(c)]);
          part.data.insert(part.data.end(), recording.channel_data(c), recording.channel_data(c) + recording.num_samples);
        }
        return part;
      },
      options, progress);
}

}  // namespace neurobolt
