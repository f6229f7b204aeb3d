// neurobolt bench: inference throughput, training-step time and peak memory of a model config,
// the spectral front end (--spectral), or (--read FILE) the reading speed of an EEG file.
#include <fmt/format.h>

#include <iostream>

#include "common.hpp"
#include "core/plural.hpp"
#include "neurobolt/bench.hpp"
#include "neurobolt/config.hpp"

namespace neurobolt::cli {

void register_bench(CLI::App& app) {
  struct Options {
    std::string config = "neurobolt-base";
    int64_t batch = 16;
    int iterations = 3, warmup = 1;
    std::string phase = "both";
    bool stages = false;
    std::string read;
    bool spectral = false;
    int64_t channels = 26;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("bench", "Measure inference windows/s, training-step time and peak RSS, or (--read) EEG reading speed");
  cmd->add_option("--config", o->config, "Model config: JSON file or built-in name")->capture_default_str();
  cmd->add_option("--batch", o->batch, "Windows per batch")->capture_default_str()->check(between(1, 8192));
  cmd->add_option("--iterations", o->iterations, "Timed iterations per phase (timed reads with --read)")->capture_default_str()->check(between(1, 1e6));
  cmd->add_option("--warmup", o->warmup, "Untimed iterations (reads with --read) before timing")->capture_default_str()->check(between(0, 1e6));
  cmd->add_option("--phase", o->phase, "What to measure")->capture_default_str()->check(CLI::IsMember({"both", "inference", "training"}));
  cmd->add_flag("--stages", o->stages,
                "Also time each stage of the forward pass (temporal conv, blocks, spectral front end, ...): "
                "--iterations more inference batches, with each stage's GFLOP/s");
  cmd->add_option("--read", o->read,
                  "Instead of the model, time reading this EEG file (.edf .bdf .vhdr .set) --iterations times: "
                  "MB/s, samples/s, file size")
      ->check(existing_file("--read"));
  cmd->add_flag("--spectral", o->spectral,
                "Instead of the model, time the spectral front end: the fused CUDA kernel vs per-scale torch::stft "
                "(batch x --channels x 3200 samples; use --batch 256 on a GPU)");
  cmd->add_option("--channels", o->channels, "Channels for --spectral")->capture_default_str()->check(between(1, 1024));
  add_standard_options(*cmd);
  cmd->callback([o, cmd] {
    // Each mode measures its own thing: an option another mode uses is refused, not ignored.
    if (!o->read.empty()) {
      for (const char* option : {"--config", "--batch", "--phase", "--spectral", "--channels", "--device", "--precision", "--stages"})
        refuse_option(*cmd, option, "does not apply to --read (it times reading a file on the CPU)");
    } else if (o->spectral) {
      for (const char* option : {"--config", "--phase", "--stages"})
        refuse_option(*cmd, option, "does not apply to --spectral (it times the spectral front end alone)");
    } else {
      refuse_option(*cmd, "--channels", "applies to --spectral only (a model config fixes its channels)");
    }
    if (o->spectral) {
      apply_runtime();
      SpectralBenchOptions options;
      options.device = global_options().device;
      options.batch = o->batch;
      options.channels = o->channels;
      options.iterations = o->iterations;
      options.warmup = o->warmup;
      std::cout << format_spectral_bench(run_spectral_bench(options));
      return;
    }
    if (!o->read.empty()) {
      apply_runtime();
      note(fmt::format("reading '{}': {} untimed, then {} timed", o->read, count_of(o->warmup, "read"),
                       o->iterations));
      std::cout << format_read_bench(bench_read_recording(o->read, o->iterations, o->warmup));
      return;
    }
    apply_runtime();
    ModelBenchOptions options;
    options.config = load_config(o->config);
    options.batch = o->batch;
    options.iterations = o->iterations;
    options.warmup = o->warmup;
    options.inference = o->phase != "training";
    options.training = o->phase != "inference";
    options.stages = o->stages;
    options.device = global_options().device;
    options.progress = [](const std::string& line) { note(line); };
    std::cout << format_bench(run_model_bench(options));
  });
}

}  // namespace neurobolt::cli
