// Our HDF5 checkpoint format and loading state dicts into a model.
#include "neurobolt/checkpoint.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_file.hpp"
#include "checkpoint/checkpoint_io.hpp"
#include "core/atomic_file.hpp"
#include "io/h5.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

std::string shape_string(torch::IntArrayRef sizes) { return fmt::format("[{}]", fmt::join(sizes, ", ")); }

h5::Type h5_type(const torch::Tensor& t, const std::string& key) {
  switch (t.scalar_type()) {
    case torch::kFloat: return h5::Type::f32;
    case torch::kDouble: return h5::Type::f64;
    case torch::kLong: return h5::Type::i64;
    case torch::kInt: return h5::Type::i32;
    default:
      throw ConfigError(fmt::format("tensor '{}' has unsupported dtype {}", key, std::string(t.dtype().name())));
  }
}

torch::ScalarType torch_type(h5::Type t) {
  switch (t) {
    case h5::Type::f32: return torch::kFloat;
    case h5::Type::f64: return torch::kDouble;
    case h5::Type::i64: return torch::kLong;
    case h5::Type::i32: return torch::kInt;
    case h5::Type::i16: return torch::kShort;
    case h5::Type::u8: return torch::kByte;
    case h5::Type::i8: return torch::kChar;
  }
  return torch::kFloat;
}

}  // namespace

std::string LoadReport::describe() const {
  std::string out;
  auto list = [&out](const char* title, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    out += fmt::format("{} ({}):\n", title, keys.size());
    for (const auto& k : keys) out += "  " + k + "\n";
  };
  list("missing from the checkpoint", missing);
  list("not in the model (unexpected)", unexpected);
  list("shape or dtype mismatch", mismatched);
  return out;
}

std::string summarize_names(const std::vector<std::string>& names) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> groups;
  for (const auto& name : names) {
    const auto head = name.substr(0, name.find('.'));
    auto& group = groups[head];
    if (group.empty()) order.push_back(head);
    group.push_back(name);
  }
  std::vector<std::string> parts;
  for (const auto& head : order) {
    const auto& group = groups[head];
    parts.push_back(group.size() == 1 ? group.front() : fmt::format("{}.* ({})", head, group.size()));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string LoadReport::summary() const {
  static constexpr size_t kShown = 3;
  std::vector<std::string> parts;
  auto add = [&parts](const char* what, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    std::vector<std::string> shown(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(std::min(kShown, keys.size())));
    std::string more = keys.size() > kShown ? fmt::format(", ... {} more", keys.size() - kShown) : "";
    parts.push_back(fmt::format("{} {} ({}{})", keys.size(), what, fmt::join(shown, "; "), more));
  };
  add("missing from the checkpoint", missing);
  add("not in the model", unexpected);
  add("with another shape or dtype", mismatched);
  return parts.empty() ? "all keys match" : fmt::format("{}", fmt::join(parts, ", "));
}

LoadReport load_state_dict(NeuroBOLTImpl& model, const StateDict& state, bool strict) {
  auto target = state_dict(model);
  std::map<std::string, torch::Tensor> wanted;
  for (const auto& [name, tensor] : target) wanted.emplace(name, tensor);

  LoadReport report;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : state) {
    auto it = wanted.find(name);
    if (it == wanted.end()) {
      report.unexpected.push_back(name);
      continue;
    }
    seen.insert(name);
    const auto& dst = it->second;
    const bool dtype_ok = dst.is_floating_point() ? tensor.is_floating_point() : dst.scalar_type() == tensor.scalar_type();
    if (tensor.sizes() != dst.sizes() || !dtype_ok) {
      report.mismatched.push_back(fmt::format("{}: checkpoint {} {} vs model {} {}", name, std::string(tensor.dtype().name()),
                                              shape_string(tensor.sizes()), std::string(dst.dtype().name()),
                                              shape_string(dst.sizes())));
      continue;
    }
    copies.emplace_back(dst, tensor);
    report.loaded.push_back(name);
  }
  for (const auto& [name, tensor] : target) {
    if (!seen.count(name)) report.missing.push_back(name);
  }
  if (strict && !report.complete()) {
    // --partial is worth suggesting only when something would load.
    throw ConfigError(fmt::format("state dict does not match model '{}': {} ({})", model.config().name,
                                  report.summary(),
                                  report.loaded.empty() ? "no weight fits: is it the right model or config?"
                                                        : fmt::format("--partial loads the {} that fit",
                                                                      report.loaded.size())));
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
  return report;
}

void save_checkpoint(NeuroBOLTImpl& model, const std::string& path, bool force, const std::string& metadata_json) {
  detail::write_checkpoint(model, path, force, metadata_json, {});
}

void detail::write_checkpoint(NeuroBOLTImpl& model, const std::string& path, bool force,
                              const std::string& metadata_json, const std::function<void(h5::File&)>& extra) {
  nlohmann::json metadata;
  try {
    metadata = nlohmann::json::parse(metadata_json);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    throw ConfigError(fmt::format("checkpoint metadata is not valid JSON: {}", e.what()));
  }
  if (!metadata.is_object()) throw ConfigError("checkpoint metadata must be a JSON object");
  if (!metadata.contains("neurobolt_version")) metadata["neurobolt_version"] = NEUROBOLT_VERSION;

  detail::AtomicOutput output(path, force);
  {
    auto file = h5::File::create(output.temp_path().string());
    file.set_attribute("/", "format", std::string(kCheckpointFormat));
    file.set_attribute("/", "format_version", kCheckpointVersion);
    file.set_attribute("/", "arch", std::string("neurobolt"));
    file.set_attribute("/", "config", model.config().to_json());
    file.set_attribute("/", "metadata", metadata.dump(2));
    file.create_group(detail::kWeightsGroup);
    for (const auto& [name, tensor] : state_dict(model)) {
      auto t = tensor.detach().to(torch::kCPU).contiguous();
      std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
      file.write(std::string(detail::kWeightsGroup) + "/" + name, h5_type(t, name), shape, t.data_ptr());
    }
    if (extra) extra(file);
    file.close();
  }
  output.commit();
}

ModelConfig read_checkpoint_config(const std::string& path) { return detail::CheckpointFile(path).config(); }

bool is_checkpoint_file(const std::string& path) { return detail::has_checkpoint_format(path); }

NeuroBOLT load_checkpoint(const std::string& path, std::string* metadata_json) {
  try {
    const detail::CheckpointFile file(path);
    NeuroBOLT model(file.config());
    std::map<std::string, std::vector<int64_t>> model_shapes;
    for (const auto& [name, tensor] : state_dict(*model)) model_shapes.emplace(name, tensor.sizes().vec());
    StateDict state;
    for (const auto& t : file.tensors()) {
      const auto options = torch::TensorOptions().dtype(torch_type(t.type));
      const auto wanted = model_shapes.find(t.name);
      if (wanted == model_shapes.end() || wanted->second != t.shape) {
        // Not loadable, so not read: a one-element tensor expanded to the stored shape (no
        // allocation of a size the file only claims) lets load_state_dict report it.
        state.emplace_back(t.name, torch::zeros(std::vector<int64_t>(t.shape.size(), 1), options).expand(t.shape));
        continue;
      }
      auto tensor = torch::empty(t.shape, options);
      file.read(t, t.type, tensor.data_ptr());
      state.emplace_back(t.name, tensor);
    }
    load_state_dict(*model, state, /*strict=*/true);
    if (metadata_json) *metadata_json = file.metadata_json();
    model->eval();
    return model;
  } catch (Error& e) {
    e.add_context(fmt::format("loading checkpoint '{}'", path));
    throw;
  }
}

}  // namespace neurobolt
