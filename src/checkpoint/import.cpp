// Importing the reference's PyTorch checkpoints (.pth) into a NeuroBOLT model.
#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.hpp"

#include "neurobolt/checkpoint.hpp"
#include "core/plural.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/pth.hpp"

namespace neurobolt {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

const torch::Tensor* find(const StateDict& state, const std::string& key) {
  for (const auto& [name, tensor] : state) {
    if (name == key) return &tensor;
  }
  return nullptr;
}

// Keys of the temporal branch that a LaBraM pre-training checkpoint provides (it has no fc_norm:
// NeuroBOLT adds that for mean pooling).
bool labram_provides(const std::string& key) {
  return !starts_with(key, "mss_module.") && !starts_with(key, "head.") && !starts_with(key, "fc_norm.");
}

}  // namespace

ImportResult import_pth(const std::string& path, const ImportOptions& options) {
  try {
    auto contents = read_pth(path);
    ImportResult result;
    result.found_under = contents.found_under;
    result.skipped = contents.skipped;

    ModelConfig config = options.config ? *options.config : builtin_config("neurobolt-base");
    StateDict state;
    if (options.source == ImportSource::labram) {
      // As the reference's fine-tuning does: keep 'student.*' with the prefix stripped, drop the
      // rest (teacher, pre-training heads) and anything the NeuroBOLT model has no place for.
      bool any_student = false;
      for (const auto& [name, tensor] : contents.tensors) any_student |= starts_with(name, "student.");
      if (!any_student) {
        throw FormatError(fmt::format("no 'student.' weights found: this does not look like a LaBraM pre-training "
                                      "checkpoint (state dict under '{}')",
                                      contents.found_under.empty() ? "<top level>" : contents.found_under));
      }
      NeuroBOLT probe(config);
      std::set<std::string> model_keys;
      for (const auto& [name, tensor] : state_dict(*probe)) model_keys.insert(name);
      for (auto& [name, tensor] : contents.tensors) {
        const std::string stripped = starts_with(name, "student.") ? name.substr(8) : std::string();
        if (stripped.empty() || !model_keys.count(stripped) || !labram_provides(stripped) ||
            stripped.find("relative_position_index") != std::string::npos) {
          result.dropped.push_back(name);
        } else {
          state.emplace_back(stripped, tensor);
        }
      }
    } else {
      // LaBraM's pre-training checkpoints keep the encoder under 'student.' (and its EMA copy under
      // 'teacher.'): with no weight of the model at the top level, that is what this file is.
      bool any_student = false, any_model_key = false;
      {
        std::set<std::string> model_keys;
        for (const auto& [name, tensor] : state_dict(*NeuroBOLT(config))) model_keys.insert(name);
        for (const auto& [name, tensor] : contents.tensors) {
          any_student |= starts_with(name, "student.");
          any_model_key |= model_keys.count(name) > 0;
        }
      }
      if (any_student && !any_model_key) {
        throw ConfigError("its weights are under 'student.'/'teacher.' and none is a NeuroBOLT weight: this is a "
                          "LaBraM pre-training checkpoint (import it with --from labram)");
      }
      state = std::move(contents.tensors);
      if (options.rois.empty()) {
        if (const auto* head = find(state, "head.weight"); head && head->dim() == 2 &&
                                                           head->size(0) != config.num_rois()) {
          config.rois = default_roi_names(head->size(0));
          result.notes.push_back(fmt::format("{} taken from head.weight (named roi0..roi{})",
                                             count_of(head->size(0), "ROI"), head->size(0) - 1));
        }
      }
    }
    if (!options.rois.empty()) config.rois = options.rois;
    config.validate();

    torch::manual_seed(options.seed);
    result.model = NeuroBOLT(config);
    if (options.source == ImportSource::labram) {
      result.report = load_state_dict(*result.model, state, /*strict=*/false);
      // Only the temporal branch is expected from LaBraM; the rest is freshly initialised.
      std::vector<std::string> missing;
      for (const auto& key : result.report.missing) {
        if (labram_provides(key)) missing.push_back(key);
      }
      result.report.missing = missing;
      if (!options.partial && !result.report.complete()) {
        throw ConfigError(fmt::format("LaBraM weights do not fit the temporal branch of '{}': {}", config.name,
                                      result.report.summary()));
      }
      result.notes.push_back("spectral branch, fc_norm and head freshly initialised (seed " +
                             std::to_string(options.seed) + ")");
    } else {
      result.report = load_state_dict(*result.model, state, /*strict=*/!options.partial);
      if (!result.report.missing.empty()) {
        result.notes.push_back(fmt::format("{} missing weights freshly initialised (seed {})",
                                           result.report.missing.size(), options.seed));
      }
    }
    if (result.report.loaded.empty()) {
      throw ConfigError(fmt::format("no weight of the file fits model '{}' ({} read, {}): nothing to import",
                                    config.name, state.size(), result.report.summary()));
    }
    result.model->eval();
    return result;
  } catch (Error& e) {
    e.add_context(fmt::format("importing '{}'", path));
    throw;
  }
}

ImportResult convert_pth(const std::string& input, const std::string& output, const ImportOptions& options,
                         bool force) {
  detail::check_writable_output(output, force);
  auto result = import_pth(input, options);
  nlohmann::json metadata;
  metadata["imported_from"] = {
      {"file", std::filesystem::path(input).filename().string()},
      {"bytes", static_cast<int64_t>(std::filesystem::file_size(input))},
      {"format", options.source == ImportSource::labram ? "LaBraM pre-training checkpoint" : "NeuroBOLT reference"},
      {"state_dict_under", result.found_under},
      {"loaded", result.report.loaded.size()},
      {"missing", result.report.missing},
      {"dropped", result.dropped},
      {"notes", result.notes}};
  save_checkpoint(*result.model, output, force, metadata.dump());
  return result;
}

}  // namespace neurobolt
