// `neurobolt clean` as one library call: clean, write EDF+, report, compare with a truth.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "clean/common.hpp"
#include "core/atomic_file.hpp"
#include "neurobolt/clean.hpp"
#include "neurobolt/edf_writer.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/montage.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt {
namespace {

// NaN (no figure) as JSON null.
nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

}  // namespace

CleanComparison compare_to_truth(const CleanedRecording& cleaned, const std::string& truth_path) {
  const Recording& out = cleaned.recording;
  const CleanReport& report = cleaned.report;
  const Recording truth = read_recording(truth_path);
  CleanComparison cmp;
  cmp.truth = truth_path;
  const double rate = out.sample_rate;
  const double duration = std::min(out.duration(), truth.duration());
  // The scanned stretch when known (the rest was never corrupted), a second in from the ends.
  cmp.seconds_from = report.gradient.applied ? report.gradient.scanned_from : 0.0;
  cmp.seconds_to = report.gradient.applied ? std::min(report.gradient.scanned_to, duration) : duration;
  cmp.seconds_from = std::min(cmp.seconds_from + 1.0, duration);
  cmp.seconds_to = std::max(cmp.seconds_from, cmp.seconds_to - 1.0);
  const auto a = static_cast<int64_t>(cmp.seconds_from * rate);
  const auto b = static_cast<int64_t>(cmp.seconds_to * rate);
  if (b - a < static_cast<int64_t>(4 * rate)) {
    throw ConfigError(fmt::format("'{}': expected at least 4 s in common with the cleaned recording to compare, found "
                                  "{:.2f} s",
                                  truth_path, static_cast<double>(b - a) / rate));
  }
  const double tr = report.gradient.repetition_time;
  const double slice = report.gradient.slice_period;
  const double heart = report.bcg.applied ? report.bcg.heart_rate_bpm / 60.0 : 0.0;
  std::vector<double> rs, ratios;
  for (int64_t c = 0; c < out.num_channels(); ++c) {
    const Channel& ch = out.channels[static_cast<std::size_t>(c)];
    if (ch.type != ChannelType::eeg) continue;
    int64_t t = -1;
    for (int64_t k = 0; k < truth.num_channels() && t < 0; ++k)
      if (channel_key(truth.channels[static_cast<std::size_t>(k)].name) == channel_key(ch.name)) t = k;
    if (t < 0) continue;
    std::vector<float> ref(truth.channel_data(t), truth.channel_data(t) + truth.num_samples);
    if (truth.sample_rate != rate) ref = signal::resample(ref, truth.sample_rate, rate);
    if (static_cast<int64_t>(ref.size()) < b) continue;
    std::vector<double> y(out.channel_data(c) + a, out.channel_data(c) + b), x(ref.begin() + a, ref.begin() + b);
    ChannelComparison cc;
    cc.channel = ch.name;
    cc.r = signal::pearson(y, x);
    std::vector<float> diff(y.size()), truth_part(y.size());
    double se = 0, st = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      diff[i] = static_cast<float>(y[i] - x[i]);
      truth_part[i] = static_cast<float>(x[i]);
      se += (y[i] - x[i]) * (y[i] - x[i]);
      st += x[i] * x[i];
    }
    cc.residual_ratio = st > 0 ? std::sqrt(se / st) : std::numeric_limits<double>::quiet_NaN();
    const auto m = static_cast<int64_t>(diff.size());
    if (tr > 0) {
      cc.volume_harmonics = harmonic_power(diff.data(), m, rate, 1.0 / tr, 0.5 * rate);
      cc.truth_volume_harmonics = harmonic_power(truth_part.data(), m, rate, 1.0 / tr, 0.5 * rate);
    }
    if (slice > 0) {
      cc.slice_harmonics = harmonic_power(diff.data(), m, rate, 1.0 / slice, 0.5 * rate);
      cc.truth_slice_harmonics = harmonic_power(truth_part.data(), m, rate, 1.0 / slice, 0.5 * rate);
    }
    if (heart > 0) {
      cc.heart_harmonics = harmonic_power(diff.data(), m, rate, heart, 20.0);
      cc.truth_heart_harmonics = harmonic_power(truth_part.data(), m, rate, heart, 20.0);
    }
    rs.push_back(cc.r);
    ratios.push_back(cc.residual_ratio);
    cmp.channels.push_back(cc);
  }
  if (cmp.channels.empty()) {
    throw ConfigError(fmt::format("'{}': no EEG channel in common with the cleaned recording", truth_path));
  }
  cmp.median_r = clean_detail::upper_median(rs);
  cmp.min_r = *std::min_element(rs.begin(), rs.end());
  cmp.median_residual_ratio = clean_detail::upper_median(ratios);
  return cmp;
}

std::string to_json(const CleanReport& r, const CleanComparison* cmp) {
  nlohmann::json j;
  j["source"] = r.source;
  j["input_rate_hz"] = r.input_rate;
  j["output_rate_hz"] = r.output_rate;
  j["channels"] = r.channels;
  j["input_samples"] = r.input_samples;
  j["output_samples"] = r.output_samples;
  const auto& g = r.gradient;
  j["gradient"] = {{"applied", g.applied},
                   {"trigger_label", g.trigger_label},
                   {"trigger_kind", to_string(g.trigger_kind)},
                   {"triggers_found", g.triggers_found},
                   {"triggers_inserted", g.triggers_inserted},
                   {"triggers_moved", g.triggers_moved},
                   {"epochs", g.epochs},
                   {"epoch_samples", g.epoch_samples},
                   {"epoch_seconds", g.epoch_seconds},
                   {"repetition_time", g.repetition_time},
                   {"slices", g.slices},
                   {"slices_inferred", g.slices_inferred},
                   {"slice_period", g.slice_period},
                   {"shift_min", g.shift_min},
                   {"shift_max", g.shift_max},
                   {"shift_sd", g.shift_sd},
                   {"components", g.components},
                   {"volume_harmonics_before", g.volume_harmonics_before},
                   {"volume_harmonics_after", g.volume_harmonics_after},
                   {"slice_harmonics_before", g.slice_harmonics_before},
                   {"slice_harmonics_after", g.slice_harmonics_after},
                   {"peak_before_uv", g.peak_before_uv},
                   {"scanned_from", g.scanned_from},
                   {"scanned_to", g.scanned_to}};
  const auto& b = r.bcg;
  j["bcg"] = {{"applied", b.applied},
              {"ecg_channel", b.ecg_channel},
              {"ecg_inverted", b.ecg_inverted},
              {"r_peaks", b.r_peaks},
              {"heart_rate_bpm", b.heart_rate_bpm},
              {"rr_sd", b.rr_sd},
              {"beats_fixed", b.beats_fixed},
              {"method", to_string(b.method)},
              {"components", b.components},
              {"evoked_rms_before", b.evoked_rms_before},
              {"evoked_rms_after", b.evoked_rms_after}};
  j["notes"] = r.notes;
  j["warnings"] = r.warnings;
  j["seconds"] = {{"read", r.seconds_read}, {"gradient_and_resampling", r.seconds_gradient}, {"bcg", r.seconds_bcg}};
  if (cmp) {
    nlohmann::json c;
    c["truth"] = cmp->truth;
    c["seconds_from"] = cmp->seconds_from;
    c["seconds_to"] = cmp->seconds_to;
    c["median_r"] = number(cmp->median_r);
    c["min_r"] = number(cmp->min_r);
    c["median_residual_ratio"] = number(cmp->median_residual_ratio);
    for (const auto& ch : cmp->channels) {
      c["channels"].push_back({{"channel", ch.channel},
                               {"r", number(ch.r)},
                               {"residual_ratio", number(ch.residual_ratio)},
                               {"volume_harmonics", ch.volume_harmonics},
                               {"truth_volume_harmonics", ch.truth_volume_harmonics},
                               {"slice_harmonics", ch.slice_harmonics},
                               {"truth_slice_harmonics", ch.truth_slice_harmonics},
                               {"heart_harmonics", ch.heart_harmonics},
                               {"truth_heart_harmonics", ch.truth_heart_harmonics}});
    }
    j["comparison"] = c;
  }
  return j.dump(2) + "\n";
}

std::string to_json(const CleanOptions& o) {
  nlohmann::json j{{"gradient", o.gradient},
                   {"bcg", o.bcg},
                   {"force_steps", o.force_steps},
                   {"trigger_labels", o.trigger_labels},
                   {"trigger_kind", to_string(o.trigger_kind)},
                   {"template_epochs", o.template_epochs},
                   {"gradient_components", o.gradient_components},
                   {"max_shift_samples", o.max_shift_samples},
                   {"sample_rate", o.sample_rate},
                   {"lowpass_hz", o.lowpass_hz},
                   {"ecg_channel", o.ecg_channel},
                   {"bcg_method", to_string(o.bcg_method)},
                   {"bcg_components", o.bcg_components},
                   {"bcg_template_beats", o.bcg_template_beats},
                   {"channels", o.channels}};
  return j.dump();
}

CleanFileResult clean_file(const std::string& input, const std::string& output, const CleanOptions& options,
                           const CleanFileOptions& file_options,
                           const std::function<void(const CleanProgress&)>& progress) {
  // Refuse an existing output before the work, not after it.
  detail::check_writable_output(output, file_options.force);
  if (!file_options.report_json.empty()) detail::check_writable_output(file_options.report_json, file_options.force);
  CleanedRecording cleaned = clean_recording(input, options, progress);
  CleanFileResult result;
  if (!file_options.truth_path.empty()) result.comparison = compare_to_truth(cleaned, file_options.truth_path);
  // EDF+ keeps annotations inside the recording; markers after the last sample are dropped.
  const double end = cleaned.recording.duration();
  auto& ann = cleaned.recording.annotations;
  ann.erase(std::remove_if(ann.begin(), ann.end(), [&](const Annotation& a) { return a.onset >= end; }), ann.end());
  // EDF labels and units are ASCII: 'µ' becomes 'u' (as EDF files write microvolts), anything
  // else outside ASCII '?'.
  for (auto& ch : cleaned.recording.channels) {
    std::string unit;
    for (std::size_t i = 0; i < ch.unit.size(); ++i) {
      const auto c = static_cast<unsigned char>(ch.unit[i]);
      if (c < 0x80) {
        unit += static_cast<char>(c);
      } else if (c == 0xC2 && i + 1 < ch.unit.size() && static_cast<unsigned char>(ch.unit[i + 1]) == 0xB5) {
        unit += 'u';  // U+00B5 micro sign
        ++i;
      } else if (c == 0xCE && i + 1 < ch.unit.size() && static_cast<unsigned char>(ch.unit[i + 1]) == 0xBC) {
        unit += 'u';  // U+03BC Greek mu
        ++i;
      } else if ((c & 0xC0) != 0x80) {
        unit += '?';
      }
    }
    ch.unit = unit;
  }
  EdfWriteOptions edf;
  edf.force = file_options.force;
  write_edf(cleaned.recording, output, edf);
  if (!file_options.report_json.empty()) {
    detail::AtomicOutput out(file_options.report_json, file_options.force);
    out.write_all(to_json(cleaned.report, result.comparison ? &*result.comparison : nullptr));
    out.commit();
  }
  result.report = std::move(cleaned.report);
  return result;
}

}  // namespace neurobolt
