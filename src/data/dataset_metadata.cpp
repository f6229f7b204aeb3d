// The dataset description that checkpoints carry (see checkpoint_dataset_json in dataset.hpp).
#include <filesystem>
#include <nlohmann/json.hpp>

#include "neurobolt/dataset.hpp"

namespace neurobolt {

std::string checkpoint_dataset_json(const DatasetReader& reader) {
  using nlohmann::json;
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(reader.path(), ec);
  const auto& stats = reader.normalisation();
  json parameters = json::parse(reader.parameters_json(), nullptr, /*allow_exceptions=*/false);
  if (parameters.is_discarded()) parameters = json::object();
  const json out{{"path", ec ? reader.path() : absolute.string()},
                 {"fingerprint", reader.fingerprint()},
                 {"sample_rate", reader.sample_rate()},
                 {"window_samples", reader.window_samples()},
                 {"channel_names", reader.channel_names()},
                 {"roi_names", reader.roi_names()},
                 {"split_mode", to_string(reader.split_mode())},
                 {"fold", reader.fold()},
                 {"normalisation", {{"mean", stats.mean}, {"std", stats.std}}},
                 {"parameters", parameters}};
  return out.dump();
}

}  // namespace neurobolt
