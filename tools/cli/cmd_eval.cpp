// neurobolt eval: predictions vs targets -> metrics table, JSON and the HTML report
// (include/neurobolt/eval_job.hpp).
#include <fmt/format.h>

#include <iostream>

#include "common.hpp"
#include "neurobolt/eval_job.hpp"

namespace neurobolt::cli {

void register_eval(CLI::App& app) {
  auto job = std::make_shared<EvalJob>();
  auto* cmd = app.add_subcommand("eval", "Evaluate predictions against measured fMRI: metrics, JSON and an HTML report");
  cmd->footer(
      "Two ways: 'eval MODEL.h5 DATA.h5 --split test' runs a checkpoint over a prepared dataset; 'eval PRED_DIR "
      "--targets BIDS_ROOT' reads what neurobolt infer wrote and pairs it with the BIDS targets (low-passed and "
      "z-scored as the model's training data). Per ROI: Pearson r, MSE, R2; pooled over runs, per run, subject and "
      "split. --baseline puts a second model (e.g. the ridge baseline) beside it; for simulated data the noise "
      "ceiling is found in derivatives/*-truth.");
  cmd->add_option("SOURCE", job->source, "A checkpoint (.h5) or a prediction folder of neurobolt infer")->required();
  cmd->add_option("DATA", job->data, "Prepared dataset: what the checkpoint runs on (with a prediction folder: the "
                                     "split labels)");
  cmd->add_option("--targets", job->targets, "BIDS root with the measured ROI time series (prediction folders)");
  cmd->add_option("--derivatives", job->bids.derivatives, "Derivatives folder(s) with the targets (default: all)");
  cmd->add_option("--subjects", job->subjects, "Prediction folders: only these subjects")->delimiter(',');
  cmd->add_option("--split", job->split, "Rows evaluated")->capture_default_str()->check(
      CLI::IsMember({"train", "val", "test", "all"}));
  cmd->add_option("--baseline", job->baseline, "A second checkpoint or prediction folder, evaluated the same way");
  cmd->add_option("--ceiling", job->ceiling, "Noise ceilings: the simulator's summary.tsv, auto or none")
      ->capture_default_str();
  cmd->add_option("--metrics", job->metrics, "The model's metrics.jsonl for the training curves: a file, auto (beside "
                                             "the checkpoint) or none")
      ->capture_default_str();
  cmd->add_option("--json", job->json_path, "Write the metrics as JSON (top-level mean_r)");
  cmd->add_option("--report", job->report_path, "Write the self-contained HTML report");
  cmd->add_option("--run", job->time_course_run, "The run whose time courses the report draws first");
  cmd->add_option("--title", job->title, "Report title")->capture_default_str();
  cmd->add_option("--batch", job->batch, "Windows per model call")->capture_default_str()->check(between(1, 8192));
  add_standard_options(*cmd);
  cmd->callback([job] {
    apply_runtime();
    job->force = global_options().force;
    job->device = global_options().device;
    const auto outcome = run_evaluation(*job, [](const std::string& line) { note(line); });
    for (const auto& line : outcome.log) note(line);
    std::cout << format_evaluation_table(outcome);
    if (!job->json_path.empty()) print_result("wrote " + job->json_path + "\n");
    if (!job->report_path.empty()) print_result("wrote " + job->report_path + "\n");
  });
}

}  // namespace neurobolt::cli
