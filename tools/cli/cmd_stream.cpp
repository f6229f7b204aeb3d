// neurobolt stream: replays a recording through the real-time Streamer (include/neurobolt/stream.hpp)
// as if it were being recorded, printing each volume's prediction with its latency.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <iostream>

#include "common.hpp"
#include "core/plural.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/stream.hpp"

namespace neurobolt::cli {
namespace {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const auto k = static_cast<std::size_t>(std::min<double>(static_cast<double>(v.size()) - 1,
                                                           std::ceil(q * static_cast<double>(v.size())) - 1));
  return v[k];
}

}  // namespace

void register_stream(CLI::App& app) {
  struct Options {
    std::string model, recording;
    StreamReplayOptions replay;
    double chunk_ms = 10.0;
    bool print_values = false;
  };
  auto o = std::make_shared<Options>();
  auto& r = o->replay;
  auto* cmd = app.add_subcommand(
      "stream", "Real-time inference: replay a recording sample by sample, one prediction per volume as it completes");
  cmd->footer(
      "The recording is pushed in chunks at its own rate and channels, at --speed times real time (0: as fast as "
      "possible), through the library's Streamer: the checkpoint's preprocessing done incrementally, each volume "
      "predicted as soon as the 16 s window before it is complete. Volumes as infer finds them (triggers, --tr); the "
      "predictions equal infer's. Prints each prediction's latency (from pushing the window's last raw sample to the "
      "prediction) and their median and 99th percentile.");
  cmd->add_option("MODEL", o->model, "Checkpoint (.h5 from neurobolt train or convert)")->required();
  cmd->add_option("RECORDING", o->recording, "EEG recording (EDF/BDF, BrainVision, EEGLAB; BIDS sidecars used)")
      ->required();
  cmd->add_option("-o,--output", r.output, "Write the predictions as infer's table (TSV: ROI columns, row per volume)");
  cmd->add_option("--speed", r.speed, "Times real time; 0 = as fast as possible")->capture_default_str()->check(
      between(0, 1000));
  cmd->add_option("--chunk-ms", o->chunk_ms, "Samples pushed per call, in ms of recording")
      ->capture_default_str()
      ->check(between(1, 10000));
  cmd->add_option("--tr", r.grid.tr, "Repetition time (s): the grid of volumes when the recording has no triggers");
  cmd->add_option("--first-volume-offset", r.grid.first_volume_offset, "With --tr and no triggers: onset of volume 0 (s)")
      ->capture_default_str();
  cmd->add_option("--trigger", r.grid.trigger_labels, "Volume trigger label(s) (default as prepare: R128, ...)");
  cmd->add_option("--dummy-scans", r.grid.dummy_scans, "Drop this many leading triggers")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--missing-channels", r.grid.missing_channels,
                  "A model channel the recording lacks or marks bad: interpolate, zero or error (default: as trained)")
      ->check(CLI::IsMember({"interpolate", "zero", "error"}));
  cmd->add_flag("--values", o->print_values, "Print each prediction's values too");
  add_standard_options(*cmd);

  cmd->callback([o, cmd] {
    if (cmd->count("--tr") == 0)
      refuse_option(*cmd, "--first-volume-offset", "places the grid that --tr defines, and --tr is not given");
    apply_runtime();
    const auto& g = global_options();
    auto& r = o->replay;
    r.force = g.force;
    r.grid.device = g.device;
    r.chunk_seconds = o->chunk_ms / 1000.0;
    const auto summary = run_stream_replay(o->model, o->recording, r, [&](const StreamReplayEvent& e) {
      const auto& p = e.prediction;
      if (!p.complete) {
        note(fmt::format("volume {} at {:.3f} s: no full window", p.volume, p.time));
        return;
      }
      std::string line = fmt::format("volume {} at {:.3f} s: latency {:.1f} ms (model {:.1f} ms)", p.volume, p.time,
                                     1000 * e.latency_seconds, 1000 * p.compute_seconds);
      if (o->print_values) line += fmt::format("  {:.4g}", fmt::join(p.values, " "));
      note(line);
    });
    for (const auto& w : summary.warnings) warn(w);
    print_result(fmt::format(
        "{} of {} predicted ({}); {:.1f} s of recording in {:.1f} s; latency median {:.1f} ms, p99 {:.1f} ms, "
        "max {:.1f} ms (model median {:.1f} ms){}\n",
        summary.predicted, count_of(summary.volumes, "volume"), summary.grid_source, summary.recording_seconds,
        summary.wall_seconds, 1000 * percentile(summary.latencies, 0.5), 1000 * percentile(summary.latencies, 0.99),
        1000 * percentile(summary.latencies, 1.0), 1000 * percentile(summary.computes, 0.5),
        r.output.empty() ? "" : fmt::format("; wrote {}", r.output)));
  });
}

}  // namespace neurobolt::cli
