// Which derivatives folders hold targets (target_derivatives, is_prediction_folder in bids.hpp).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "neurobolt/bids.hpp"

namespace neurobolt {

namespace fs = std::filesystem;

bool generated_by(const std::string& folder, const std::string& tool) {
  std::ifstream in(fs::path(folder) / "dataset_description.json");
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  const auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("GeneratedBy")) return false;  // invalid JSON is not ours either
  const auto named = [&](const nlohmann::json& entry) {
    return entry.is_object() && entry.contains("Name") && entry["Name"].is_string() &&
           entry["Name"].get<std::string>() == tool;
  };
  const auto& by = j["GeneratedBy"];
  return by.is_array() ? std::any_of(by.begin(), by.end(), named) : named(by);
}

bool is_prediction_folder(const std::string& folder) { return generated_by(folder, "neurobolt infer"); }

bool is_simulation_truth_folder(const std::string& folder) {
  std::error_code ec;
  return generated_by(folder, "neurobolt simulate") && fs::is_regular_file(fs::path(folder) / "simulation.json", ec);
}

std::vector<std::string> target_derivatives(const std::string& root, std::vector<std::string>* skipped) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(root) / "derivatives", ec)) {
    if (!entry.is_directory(ec)) continue;
    bool has_subjects = false;
    for (const auto& sub : fs::directory_iterator(entry.path(), ec))
      has_subjects = has_subjects || (sub.is_directory(ec) && sub.path().filename().string().rfind("sub-", 0) == 0);
    if (!has_subjects) continue;
    const std::string relative = entry.path().lexically_relative(root).string();
    if (is_prediction_folder(entry.path().string())) {
      if (skipped) skipped->push_back(relative);
      continue;
    }
    out.push_back(relative);
  }
  std::sort(out.begin(), out.end());
  if (skipped) std::sort(skipped->begin(), skipped->end());
  return out;
}

}  // namespace neurobolt
