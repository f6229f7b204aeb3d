// libFuzzer target: the HDF5 files we read back — a prepared dataset (DatasetReader: attributes,
// string tables, columns, normalisation, every window) and a ridge checkpoint — on a whole file.
// Both readers run on every input; each refuses the other's file by its format attribute. A
// dataset that reads is also described as `neurobolt info` does.
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string_view>
#include <vector>

#include "fuzz_files.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/describe.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/ridge.hpp"

namespace fz = neurobolt::fuzz;

namespace {

void read_dataset(const std::string& path) {
  neurobolt::DatasetReader reader(path);
  const int64_t folds = reader.split_mode() == neurobolt::SplitMode::kfold ? reader.num_folds() : 1;
  for (int64_t fold = 0; fold < folds; ++fold) {
    if (reader.split_mode() == neurobolt::SplitMode::kfold) reader.select_fold(fold);
    for (auto split : {neurobolt::Split::train, neurobolt::Split::val, neurobolt::Split::test}) {
      const neurobolt::Batch batch = reader.read_batch(reader.indices(split));
      fz::touch(batch.windows);
      fz::touch(batch.targets);
    }
  }
  std::vector<int64_t> all(static_cast<std::size_t>(reader.num_windows()));
  std::iota(all.begin(), all.end(), 0);
  for (int64_t w : all) {
    (void)reader.subject_of(w);
    (void)reader.run_of(w);
    (void)reader.volume_of(w);
    (void)reader.onset_of(w);
  }
  fz::touch(reader.read_batch(all).windows);
  (void)reader.parameters_json();
  (void)reader.provenance_json();
  (void)reader.fingerprint();
  // What `neurobolt info` prints of it, as text and as JSON (JSON needs valid UTF-8 everywhere).
  const neurobolt::DatasetSummary summary = neurobolt::describe_dataset(path);
  (void)neurobolt::format_dataset(summary);
  (void)neurobolt::dataset_json(summary);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fz::write_file("fuzz.h5", std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    read_dataset(path);
  } catch (const neurobolt::Error& e) {
    fz::report(e);
  }
  try {
    const neurobolt::RidgeCheckpoint c = neurobolt::read_ridge_checkpoint(path);
    fz::touch(c.model.weights);
  } catch (const neurobolt::Error& e) {
    fz::report(e);
  }
  return 0;
}
