// libFuzzer target: the JSON and TSV texts that configure a run. The first byte picks the parser
// (its value modulo 7), the rest is the text:
//   0 model config (ModelConfig::from_json), written back and read again
//   1 simulation config (simulation_config_from_json), written back and read again
//   2 a BIDS _eeg.json sidecar          3 dataset_description.json
//   4 a BIDS _events.tsv                5 a BIDS _channels.tsv
//   6 a raw _bold.json that gives a derivatives target its RepetitionTime
// The BIDS texts are read by index_bids over a small dataset made for each input: one EEG run
// (an empty .vhdr: the index does not open it) and one ROI time-series target.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "fuzz_files.hpp"
#include "neurobolt/bids.hpp"
#include "neurobolt/config.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/simulate.hpp"

namespace fz = neurobolt::fuzz;
namespace fs = std::filesystem;

namespace {

enum Mode { model, simulation, eeg_sidecar, description, events, channels, bold_sidecar, kModes };

void write_at(const fs::path& path, std::string_view text) {
  fs::create_directories(path.parent_path());
  fz::write_file(fs::relative(path, fz::work_dir()).string(), text);
}

void index_dataset(Mode mode, std::string_view text) {
  fz::remove_files();
  const fs::path root = fz::work_dir() / "bids";
  std::error_code ec;
  fs::remove_all(root, ec);
  const fs::path eeg = root / "sub-01" / "eeg";
  write_at(eeg / "sub-01_task-rest_eeg.vhdr", "");
  write_at(root / "derivatives" / "roi" / "sub-01" / "func" / "sub-01_task-rest_timeseries.tsv",
           "roi_a\troi_b\n1\t2\n3\t4\n");
  const std::string_view minimal_description = R"({"Name": "fuzz", "BIDSVersion": "1.8.0"})";
  write_at(root / "dataset_description.json", mode == description ? text : minimal_description);
  if (mode == eeg_sidecar) write_at(eeg / "sub-01_task-rest_eeg.json", text);
  if (mode == events) write_at(eeg / "sub-01_task-rest_events.tsv", text);
  if (mode == channels) write_at(eeg / "sub-01_task-rest_channels.tsv", text);
  write_at(root / "task-rest_bold.json", mode == bold_sidecar ? text : std::string_view(R"({"RepetitionTime": 2})"));
  neurobolt::BidsOptions options;
  options.derivatives = {"derivatives/roi"};
  const neurobolt::BidsDataset dataset = neurobolt::index_bids(root.string(), options);
  for (const auto& run : dataset.runs) (void)run.sidecar.json.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto mode = static_cast<Mode>(data[0] % kModes);
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (mode == model) {
      const auto config = neurobolt::ModelConfig::from_json(text, "fuzz.json");
      // What the reader accepted, written back, must read again (checkpoints rely on it).
      try {
        (void)neurobolt::ModelConfig::from_json(config.to_json(), "written back");
      } catch (const neurobolt::Error&) {
        __builtin_trap();
      }
    } else if (mode == simulation) {
      const auto config = neurobolt::simulation_config_from_json(text, "fuzz.json");
      try {
        (void)neurobolt::simulation_config_from_json(neurobolt::to_json(config), "written back");
      } catch (const neurobolt::Error&) {
        __builtin_trap();
      }
    } else {
      index_dataset(mode, text);
    }
  } catch (const neurobolt::Error& e) {
    fz::report(e);
  }
  return 0;
}
