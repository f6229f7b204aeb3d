// neurobolt clean: MR gradient and BCG artefact correction of EEG recorded in the scanner.
#include <fmt/format.h>

#include <cmath>

#include "common.hpp"
#include "core/plural.hpp"
#include "neurobolt/clean.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt::cli {

void register_clean(CLI::App& app) {
  struct Options {
    std::string input, output, report, truth, ecg, kind = "auto", bcg_method = "obs";
    std::vector<std::string> triggers, channels;
    bool no_gradient = false, no_bcg = false, always = false;
    double sfreq = 250.0, lowpass = 0.0, max_shift = 2.0, memory_mb = 512;
    int template_epochs = 30, components = -1, bcg_components = 0, bcg_beats = 21;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "clean", "Remove the MR gradient and ballistocardiogram artefacts from EEG recorded in the scanner");
  cmd->footer(
      "Gradient: average artefact subtraction on the volume (or slice) trigger epochs, each aligned to a fraction of a\n"
      "sample, with the residual's principal components removed (FASTR-style). BCG: R peaks on the ECG, then the\n"
      "heartbeat artefact of every EEG channel: the mean heartbeat fitted per beat (amplitude; latency common to all\n"
      "channels), optionally with principal components (OBS), or AAS. Without triggers and\n"
      "without a gradient artefact the recording is passed through (resampled) with a note.\n"
      "Example: neurobolt clean sub-01_task-rest_eeg.vhdr -o sub-01_clean.edf --report clean.json");
  cmd->add_option("INPUT", o->input, "Raw EEG recording (.edf .bdf .vhdr .set)")->required()->check(existing_file("INPUT"));
  cmd->add_option("-o,--out", o->output, "Cleaned recording to write (EDF+; R peaks as 'R-peak' annotations)")->required();
  cmd->add_option("--report", o->report, "Also write the report (every figure below) as JSON here");
  cmd->add_option("--truth", o->truth,
                  "A recording of the true clean EEG (a simulation's ground truth): print how close the result is")
      ->check(existing_file("--truth"));
  cmd->add_option("--sfreq", o->sfreq, "Output sampling rate, Hz (0: the file's rate)")->capture_default_str()->check(at_least(0));
  cmd->add_option("--lowpass", o->lowpass, "Extra zero-phase low-pass of the output, Hz (0: only the resampling filter)")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--channels", o->channels, "Channels to keep (comma-separated; default all)")->delimiter(',');
  cmd->add_flag("--no-gradient", o->no_gradient, "Skip the gradient correction (already done)");
  cmd->add_flag("--no-bcg", o->no_bcg, "Skip the BCG correction");
  cmd->add_flag("--always", o->always, "Run the BCG step even when the recording shows no scanner");
  cmd->add_option("--trigger", o->triggers,
                  "Scanner trigger label(s) to use (default: R128, Scan Start, R149, T  1, TR, volume, then Slice)")
      ->delimiter(',');
  cmd->add_option("--trigger-kind", o->kind, "What the triggers mark: auto (slice when > 2 per second), volume, slice")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "volume", "slice"}));
  cmd->add_option("--template", o->template_epochs, "Epochs averaged into each gradient template (the epoch left out)")
      ->capture_default_str()
      ->check(between(2, 10000));
  cmd->add_option("--components", o->components,
                  "Residual principal components removed after the subtraction, fitted from 70 Hz up (0: none; -1: 4 "
                  "on volume epochs, 0 on slice epochs)")
      ->capture_default_str()
      ->check(between(-1, 64));
  cmd->add_option("--max-shift", o->max_shift, "Search range of the sub-sample alignment, samples")
      ->capture_default_str()
      ->check(between(0.01, 16));
  cmd->add_option("--ecg", o->ecg, "ECG channel (default: the channel of type ECG, else one named ECG/EKG)");
  cmd->add_option("--bcg-method", o->bcg_method, "BCG removal: obs (optimal basis set) or aas (average subtraction)")
      ->capture_default_str()
      ->check(CLI::IsMember({"obs", "aas"}));
  cmd->add_option("--bcg-components", o->bcg_components, "OBS: principal components besides the mean (Niazy et al. used 3; they can fit alpha too)")
      ->capture_default_str()
      ->check(between(0, 16));
  cmd->add_option("--bcg-beats", o->bcg_beats, "AAS: heartbeats averaged into each template")
      ->capture_default_str()
      ->check(between(2, 1000));
  cmd->add_option("--memory", o->memory_mb, "Samples held at the file's rate at once, MiB (channels are processed in groups)")
      ->capture_default_str()
      ->check(between(1, 65536));
  add_standard_options(*cmd);
  cmd->callback([o, cmd] {
    apply_cpu_runtime(*cmd);
    if (o->no_gradient) {
      for (const char* opt : {"--trigger", "--trigger-kind", "--template", "--components", "--max-shift"})
        refuse_option(*cmd, opt, "--no-gradient skips the gradient correction");
    }
    if (o->no_bcg) {
      for (const char* opt : {"--ecg", "--bcg-method", "--bcg-components", "--bcg-beats", "--always"})
        refuse_option(*cmd, opt, "--no-bcg skips the BCG correction");
    }
    if (o->bcg_method == "aas") refuse_option(*cmd, "--bcg-components", "--bcg-method aas has no components");
    if (o->bcg_method == "obs") refuse_option(*cmd, "--bcg-beats", "it applies to --bcg-method aas");
    CleanOptions options;
    options.gradient = !o->no_gradient;
    options.bcg = !o->no_bcg;
    options.force_steps = o->always;
    options.trigger_labels = o->triggers;
    options.trigger_kind = parse_trigger_kind(o->kind);
    options.template_epochs = o->template_epochs;
    options.gradient_components = o->components;
    options.max_shift_samples = o->max_shift;
    options.sample_rate = o->sfreq;
    options.lowpass_hz = o->lowpass;
    options.ecg_channel = o->ecg;
    options.bcg_method = parse_bcg_method(o->bcg_method);
    options.bcg_components = o->bcg_components;
    options.bcg_template_beats = o->bcg_beats;
    options.channels = o->channels;
    options.max_memory_bytes = static_cast<int64_t>(o->memory_mb * 1024 * 1024);
    options.threads = global_options().threads;
    CleanFileOptions file;
    file.force = global_options().force;
    file.report_json = o->report;
    file.truth_path = o->truth;
    const auto result = clean_file(o->input, o->output, options, file, [](const CleanProgress& p) {
      note(fmt::format("{}: {}/{} channels", p.stage, p.done, p.total));
    });
    const auto& r = result.report;
    for (const auto& n : r.notes) note(n);
    for (const auto& w : r.warnings) warn(w);
    const auto& g = r.gradient;
    if (g.applied) {
      auto db = [](double after, double before) {
        return before > 0 && after > 0 ? fmt::format("{:+.1f} dB", 10 * std::log10(after / before)) : std::string("n/a");
      };
      note(fmt::format("gradient: artefact peak {:.0f} uV; power at the volume harmonics {:.3g} -> {:.3g} uV^2/Hz ({}), "
                       "at the slice harmonics {:.3g} -> {:.3g} uV^2/Hz ({})",
                       g.peak_before_uv, g.volume_harmonics_before, g.volume_harmonics_after,
                       db(g.volume_harmonics_after, g.volume_harmonics_before), g.slice_harmonics_before,
                       g.slice_harmonics_after, db(g.slice_harmonics_after, g.slice_harmonics_before)));
    }
    note(fmt::format("time: read {:.1f} s, gradient {:.1f} s, BCG {:.1f} s", r.seconds_read, r.seconds_gradient,
                     r.seconds_bcg));
    if (result.comparison) {
      const auto& c = *result.comparison;
      // The comparison is the command's text product when asked for.
      std::string table = fmt::format("against '{}' ({:.1f}-{:.1f} s): median r {:.4f}, min r {:.4f}, median "
                                      "residual RMS {:.1f}% of the true EEG's\n",
                                      c.truth, c.seconds_from, c.seconds_to, c.median_r, c.min_r,
                                      100 * c.median_residual_ratio);
      table += fmt::format("{:<8} {:>8} {:>10} {:>14} {:>14} {:>14}\n", "channel", "r", "residual", "slice res/true",
                           "vol res/true", "heart res/true");
      auto ratio = [](double a, double b) { return b > 0 ? fmt::format("{:.3f}", a / b) : std::string("-"); };
      for (const auto& ch : c.channels) {
        table += fmt::format("{:<8} {:>8.4f} {:>9.1f}% {:>14} {:>14} {:>14}\n", ch.channel, ch.r, 100 * ch.residual_ratio,
                             ratio(ch.slice_harmonics, ch.truth_slice_harmonics),
                             ratio(ch.volume_harmonics, ch.truth_volume_harmonics),
                             ratio(ch.heart_harmonics, ch.truth_heart_harmonics));
      }
      std::fputs(table.c_str(), stdout);
    }
    print_result(fmt::format("wrote {} ({} channels, {} samples at {} Hz){}\n", o->output, r.channels, r.output_samples,
                             r.output_rate, o->report.empty() ? "" : " and " + o->report));
  });
}

}  // namespace neurobolt::cli
