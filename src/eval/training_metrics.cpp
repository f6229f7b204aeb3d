// The trainer's metrics.jsonl, one JSON object per line (keys in report.hpp).
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "neurobolt/error.hpp"
#include "neurobolt/report.hpp"

namespace neurobolt {

std::vector<TrainingRecord> read_training_metrics(const std::string& jsonl_path) {
  using nlohmann::json;
  std::ifstream in(jsonl_path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open training metrics '{}'", jsonl_path));
  std::vector<TrainingRecord> out;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = fmt::format("'{}' line {}", jsonl_path, number);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
      throw FormatError(fmt::format("{}: invalid JSON ({})", where, e.what()));
    }
    if (!j.is_object()) throw FormatError(fmt::format("{}: expected a JSON object, found {}", where, j.type_name()));
    const auto fail = [&](const char* key, const char* expected, const json& found) {
      std::string text = found.dump();
      if (text.size() > 60) text = text.substr(0, 57) + "...";
      throw FormatError(fmt::format("{}: key '{}': expected {}, found {}", where, key, expected, text));
    };
    // A number, or null for a value the trainer could not compute (NaN is not JSON).
    const auto real = [&](const char* key, bool required, double& value) {
      if (!j.contains(key)) {
        if (required) throw FormatError(fmt::format("{}: key '{}' is missing", where, key));
        return;
      }
      const json& v = j[key];
      if (v.is_null()) return;
      if (!v.is_number()) fail(key, "a number or null", v);
      value = v.get<double>();
    };
    TrainingRecord r;
    if (!j.contains("epoch")) throw FormatError(fmt::format("{}: key 'epoch' is missing", where));
    if (!j["epoch"].is_number_integer()) fail("epoch", "an integer", j["epoch"]);
    r.epoch = j["epoch"].get<int64_t>();
    real("train_loss", true, r.train_loss);
    real("val_mean_r", true, r.val_mean_r);
    if (j.contains("val_mse") && j["val_mse"].is_array()) {
      // The trainers log MSE per ROI: the curve shows their mean over defined values.
      double sum = 0;
      int64_t n = 0;
      for (const auto& x : j["val_mse"]) {
        if (x.is_null()) continue;
        if (!x.is_number()) fail("val_mse", "a number, null or a list of them", j["val_mse"]);
        sum += x.get<double>();
        ++n;
      }
      if (n > 0) r.val_mse = sum / static_cast<double>(n);
    } else {
      real("val_mse", false, r.val_mse);
    }
    real("lr", false, r.lr);
    real("windows_per_s", false, r.windows_per_s);
    real("seconds", false, r.seconds);
    if (j.contains("step")) {
      if (!j["step"].is_number_integer()) fail("step", "an integer", j["step"]);
      r.step = j["step"].get<int64_t>();
    }
    if (j.contains("val_r")) {
      const json& v = j["val_r"];
      if (!v.is_array()) fail("val_r", "a list of numbers (null for NaN)", v);
      for (const auto& x : v) {
        if (x.is_null()) r.val_r.push_back(std::numeric_limits<double>::quiet_NaN());
        else if (x.is_number()) r.val_r.push_back(x.get<double>());
        else fail("val_r", "a list of numbers (null for NaN)", v);
      }
    }
    if (j.contains("arch")) {
      if (!j["arch"].is_string()) fail("arch", "a string", j["arch"]);
      r.arch = j["arch"].get<std::string>();
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace neurobolt
