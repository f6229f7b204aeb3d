#pragma once
// neurobolt checkpoints: one HDF5 file holding the model config (JSON attribute "config"), the
// weights as datasets under /model named by the reference's state-dict keys, and free-form
// metadata (JSON attribute "metadata"). A checkpoint alone rebuilds the exact model:
//   python: {k: v[()] for k, v in h5py.File(path)["model"].items()} is a reference state dict.
//
// Importers for the reference's PyTorch files (.pth) live here too.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "neurobolt/checkpoint_format.hpp"
#include "neurobolt/config.hpp"
#include "neurobolt/model.hpp"
#include "neurobolt/state_dict.hpp"

namespace neurobolt {

// Writes atomically (temporary file + rename). Throws IoError if `path` exists and !force.
// `metadata_json` must be a JSON object (provenance, training history ...).
void save_checkpoint(NeuroBOLTImpl& model, const std::string& path, bool force,
                     const std::string& metadata_json = "{}");

// Rebuilds the model from the checkpoint's config and loads every weight (strict). The model is
// returned in eval mode on the CPU.
NeuroBOLT load_checkpoint(const std::string& path, std::string* metadata_json = nullptr);

// Only the config (cheap: no weights read).
ModelConfig read_checkpoint_config(const std::string& path);

// True if `path` is an HDF5 file carrying the neurobolt checkpoint format attribute.
bool is_checkpoint_file(const std::string& path);

// --- importing PyTorch .pth files ------------------------------------------------------------

enum class ImportSource {
  neurobolt,  // a reference NeuroBOLT state dict / training checkpoint
  labram,     // a LaBraM pre-training checkpoint: 'student.' weights go into the temporal branch
};

struct ImportOptions {
  ImportSource source = ImportSource::neurobolt;
  // Config to build; defaults to the built-in "neurobolt-base". For source neurobolt the number
  // of ROIs is taken from the checkpoint's head when `rois` was not given explicitly.
  std::optional<ModelConfig> config;
  std::vector<std::string> rois;  // explicit ROI names (must match the head's size)
  bool partial = false;           // load what matches, initialise the rest (seeded)
  uint64_t seed = 0;              // for weights the file does not provide
};

struct ImportResult {
  NeuroBOLT model{nullptr};
  LoadReport report;
  std::string found_under;             // where the state dict sat in the .pth ("" = top level)
  std::vector<std::string> skipped;    // non-tensor entries of the .pth
  std::vector<std::string> dropped;    // tensors deliberately not imported (e.g. LaBraM heads)
  std::vector<std::string> notes;      // decisions taken, e.g. "4 ROIs taken from head.weight"
};

// Reads a .pth and builds a model from it. Strict by default: any missing, unexpected or
// shape-mismatched key is a ConfigError listing them (`partial` relaxes this). Loading no weight
// at all is a ConfigError even with `partial`; a LaBraM checkpoint (every key under 'student.' or
// 'teacher.') read as a NeuroBOLT one is a ConfigError pointing to ImportSource::labram.
ImportResult import_pth(const std::string& path, const ImportOptions& options);

// import_pth, then save_checkpoint to `output` with the import's provenance as metadata. The
// output is checked for writability before any work is done.
ImportResult convert_pth(const std::string& input, const std::string& output, const ImportOptions& options,
                         bool force);

// --- describing a model ---------------------------------------------------------------------

// Parameter names summarised by their first component: "teacher.* (200), student.norm.weight";
// a group of one is shown by its full name. For long lists in messages and in `info`.
std::string summarize_names(const std::vector<std::string>& names);

struct ModelSummary {
  std::string source;       // what was read: "checkpoint", "config file", "built-in config", "PyTorch .pth"
  ModelConfig config;
  ParameterCounts parameters;
  std::string metadata_json = "{}";  // checkpoints only
};

// Describes a neurobolt checkpoint, a config JSON file, a built-in config name or a reference
// .pth (imported with the base config).
ModelSummary summarize_model(const std::string& path_or_name);
std::string format_summary(const ModelSummary& summary);

}  // namespace neurobolt
