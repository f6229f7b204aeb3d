// Writes small valid files for the fuzz targets that no real file of ours fits (at most 64 KiB, or
// a format we have no sample of): make_fuzz_seeds <folder> fills <folder>/<target>/ for
// fuzz_h5_dataset, fuzz_checkpoint, fuzz_eeglab, fuzz_nifti (through the writers the library
// uses), fuzz_edf (EDF+D and BDF+D, written byte by byte) and fuzz_json (the default simulation
// config).
#include <matio.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "checkpoint/checkpoint_file.hpp"
#include "data/h5_tables.hpp"
#include "fuzz_files.hpp"
#include "io/h5.hpp"
#include "neurobolt/checkpoint_format.hpp"
#include "neurobolt/config.hpp"
#include "neurobolt/nifti.hpp"
#include "neurobolt/ridge.hpp"
#include "neurobolt/simulate.hpp"

namespace fs = std::filesystem;
namespace h5 = neurobolt::h5;
namespace data = neurobolt::data;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A prepared dataset as DatasetReader expects it: N windows of C channels x S samples, R ROIs;
// kfold adds the fold column and per-fold normalisation.
void write_dataset(const fs::path& path, bool kfold, bool compressed) {
  const int64_t N = 4, C = 2, S = 8, R = 2, folds = 2;
  auto file = h5::File::create(path.string());
  file.set_attribute("/", "format", std::string("neurobolt-dataset"));
  file.set_attribute("/", "format_version", int64_t{1});
  data::set_double_attribute(file, "/", "sample_rate", 200.0);
  file.set_attribute("/", "split_mode", std::string(kfold ? "kfold" : "intra-run"));
  file.set_attribute("/", "num_folds", kfold ? folds : int64_t{0});
  file.set_attribute("/", "parameters", std::string("{}"));
  file.set_attribute("/", "provenance", std::string("{}"));
  file.set_attribute("/", "fingerprint", std::string("0"));
  std::vector<float> windows(N * C * S);
  for (std::size_t i = 0; i < windows.size(); ++i) windows[i] = static_cast<float>(i % 7);
  file.write("/windows", h5::Type::f32, {N, C, S}, windows.data(), compressed ? 2 : 0);
  data::write_strings(file, "/channel_names", {"Cz", "Pz"});
  data::write_strings(file, "/roi_names", {"roi_a", "roi_b"});
  data::write_strings(file, "/subjects", {"01", "02"});
  data::write_strings(file, "/runs/name", {"sub-01_task-rest"});
  const std::vector<float> targets = {1, 2, 3, 4, 5, 6, 7, 8};
  file.write("/targets_raw", h5::Type::f32, {N, R}, targets.data());
  const std::vector<int8_t> split = {0, 0, 1, 2};
  file.write("/split", h5::Type::i8, {N}, split.data());
  const std::vector<int32_t> zeros = {0, 0, 0, 0}, subjects = {0, 1, 0, 1};
  file.write("/run", h5::Type::i32, {N}, zeros.data());
  file.write("/subject", h5::Type::i32, {N}, subjects.data());
  const std::vector<int64_t> volume = {3, 4, 5, 6};
  file.write("/volume", h5::Type::i64, {N}, volume.data());
  const std::vector<double> onset = {6, 8, 10, 12};
  file.write("/onset", h5::Type::f64, {N}, onset.data());
  const std::vector<double> mean = {4, 5}, std = {2, 2};
  file.write("/normalisation/mean", h5::Type::f64, {R}, mean.data());
  file.write("/normalisation/std", h5::Type::f64, {R}, std.data());
  if (kfold) {
    const std::vector<int8_t> fold = {0, 1, 0, 1};
    file.write("/fold", h5::Type::i8, {N}, fold.data());
    const std::vector<double> fold_mean = {4, 5, 4, 5}, fold_std = {2, 2, 2, 2};
    file.write("/normalisation/fold_mean", h5::Type::f64, {folds, R}, fold_mean.data());
    file.write("/normalisation/fold_std", h5::Type::f64, {folds, R}, fold_std.data());
  }
}

void write_ridge(const fs::path& path) {
  neurobolt::RidgeCheckpoint c;
  c.channels = {"Cz", "Pz"};
  c.rois = {"roi_a"};
  c.sample_rate = 200.0;
  c.window_samples = 200;
  c.features.bands = {{8, 13}};
  c.features.sub_windows = 1;
  auto& m = c.model;
  m.num_features = 2;
  m.num_rois = 1;
  m.feature_mean = {0.5, 0.25};
  m.feature_std = {1, 2};
  m.weights = {0.1, -0.2};
  m.intercept = {1};
  m.alpha = {10};
  neurobolt::save_ridge_checkpoint(c, path.string(), true);
}

// A neurobolt checkpoint as load_checkpoint reads it (format attributes, the neurobolt-tiny
// config, metadata, weights under /model), with a few of the tiny model's weights (all of them
// would exceed the fuzzer's 64 KiB inputs) in each stored form: contiguous, chunked with gzip,
// float64 and int64.
void write_checkpoint_seed(const fs::path& path) {
  const neurobolt::ModelConfig config = neurobolt::builtin_config("neurobolt-tiny");
  auto file = h5::File::create(path.string());
  file.set_attribute("/", "format", std::string(neurobolt::kCheckpointFormat));
  file.set_attribute("/", "format_version", neurobolt::kCheckpointVersion);
  file.set_attribute("/", "arch", std::string("neurobolt"));
  file.set_attribute("/", "config", config.to_json());
  file.set_attribute("/", "metadata", std::string(R"({"neurobolt_version": "0", "training": {"val_mean_r": 0.25}})"));
  file.create_group(neurobolt::detail::kWeightsGroup);
  const std::string group = std::string(neurobolt::detail::kWeightsGroup) + "/";
  const int64_t d = config.embed_dim, rois = config.num_rois();
  std::vector<float> head(static_cast<std::size_t>(rois * d));
  for (std::size_t i = 0; i < head.size(); ++i) head[i] = static_cast<float>(i % 11) * 0.01f - 0.05f;
  file.write(group + "head.weight", h5::Type::f32, {rois, d}, head.data());
  const std::vector<float> bias(static_cast<std::size_t>(rois), 0.5f);
  file.write(group + "head.bias", h5::Type::f32, {rois}, bias.data());
  std::vector<float> norm(static_cast<std::size_t>(4 * d), 1.0f);
  file.write(group + "fc_norm.weight", h5::Type::f32, {4, d}, norm.data(), /*chunk_rows=*/2);
  const std::vector<double> scale = {0.25, 0.5};
  file.write(group + "spectral.scale", h5::Type::f64, {2}, scale.data());
  const std::vector<int64_t> tracked = {7};
  file.write(group + "temporal.norm.num_batches_tracked", h5::Type::i64, {}, tracked.data());
}

matvar_t* number(double v) {
  std::size_t dims[2] = {1, 1};
  return Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &v, 0);
}

matvar_t* text(const std::string& s) {
  std::size_t dims[2] = {1, s.size()};
  return Mat_VarCreate(nullptr, MAT_C_CHAR, MAT_T_UTF8, 2, dims, const_cast<char*>(s.data()), 0);
}

// An EEGLAB .set of 2 channels x 6 points with two events; the data inside (a float32 matrix) or
// in "fuzz.fdt" (then also returned).
std::string write_set(const fs::path& path, mat_ft version, matio_compression compression, bool fdt) {
  const int64_t C = 2, P = 6;
  std::vector<float> samples(C * P);
  for (std::size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<float>(i) - 3.5f;
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, version);
  if (!mat) throw std::runtime_error("cannot create " + path.string());
  const char* fields[] = {"nbchan", "pnts", "trials", "srate", "data", "chanlocs", "event"};
  std::size_t one[2] = {1, 1};
  matvar_t* eeg = Mat_VarCreateStruct("EEG", 2, one, fields, 7);
  Mat_VarSetStructFieldByName(eeg, "nbchan", 0, number(C));
  Mat_VarSetStructFieldByName(eeg, "pnts", 0, number(P));
  Mat_VarSetStructFieldByName(eeg, "trials", 0, number(1));
  Mat_VarSetStructFieldByName(eeg, "srate", 0, number(128));
  if (fdt) {
    Mat_VarSetStructFieldByName(eeg, "data", 0, text("fuzz.fdt"));
  } else {
    std::size_t dims[2] = {static_cast<std::size_t>(C), static_cast<std::size_t>(P)};
    Mat_VarSetStructFieldByName(eeg, "data", 0, Mat_VarCreate(nullptr, MAT_C_SINGLE, MAT_T_SINGLE, 2, dims, samples.data(), 0));
  }
  const char* chan_fields[] = {"labels", "type"};
  std::size_t nchan[2] = {1, static_cast<std::size_t>(C)};
  matvar_t* chanlocs = Mat_VarCreateStruct(nullptr, 2, nchan, chan_fields, 2);
  Mat_VarSetStructFieldByName(chanlocs, "labels", 0, text("Cz"));
  Mat_VarSetStructFieldByName(chanlocs, "type", 0, text("EEG"));
  Mat_VarSetStructFieldByName(chanlocs, "labels", 1, text("VEOG"));
  Mat_VarSetStructFieldByName(chanlocs, "type", 1, text("EOG"));
  Mat_VarSetStructFieldByName(eeg, "chanlocs", 0, chanlocs);
  const char* event_fields[] = {"type", "latency", "duration"};
  std::size_t nev[2] = {1, 2};
  matvar_t* events = Mat_VarCreateStruct(nullptr, 2, nev, event_fields, 3);
  Mat_VarSetStructFieldByName(events, "type", 0, text("R128"));
  Mat_VarSetStructFieldByName(events, "latency", 0, number(2));
  Mat_VarSetStructFieldByName(events, "duration", 0, number(0));
  Mat_VarSetStructFieldByName(events, "type", 1, number(7));
  Mat_VarSetStructFieldByName(events, "latency", 1, number(4.5));
  Mat_VarSetStructFieldByName(events, "duration", 1, number(1));
  Mat_VarSetStructFieldByName(eeg, "event", 0, events);
  if (Mat_VarWrite(mat, eeg, compression) != 0) throw std::runtime_error("cannot write " + path.string());
  Mat_VarFree(eeg);
  Mat_Close(mat);
  return fdt ? std::string(reinterpret_cast<const char*>(samples.data()), samples.size() * sizeof(float)) : "";
}

// A discontinuous EDF+D (or BDF+D) file written byte by byte (EDFlib writes no EDF+D): one EEG
// signal of 4 samples per 1 s record and the annotation signal; the second record starts at 3 s,
// so the reader must place it there and report a 2 s gap. The first record holds one annotation.
std::string discontinuous_edf(bool bdf) {
  const int bytes = bdf ? 3 : 2;
  const int tal_samples = bdf ? 6 : 8;  // 16 or 18 bytes of TAL per record
  auto field = [](std::string text, std::size_t width) {
    text.resize(width, ' ');
    return text;
  };
  std::string h;
  h += bdf ? field("\xff" "BIOSEMI", 8) : field("0", 8);
  h += field("X X X X", 80) + field("Startdate 01-JAN-2020 X X X", 80) + field("01.01.20", 8) + field("00.00.00", 8);
  h += field(std::to_string(256 * 3), 8) + field(bdf ? "BDF+D" : "EDF+D", 44) + field("2", 8) + field("1", 8) + field("2", 4);
  const std::string dig_min = bdf ? "-8388608" : "-32768", dig_max = bdf ? "8388607" : "32767";
  h += field("EEG Cz", 16) + field(bdf ? "BDF Annotations" : "EDF Annotations", 16);
  h += field("AgAgCl electrode", 80) + field("", 80);
  h += field("uV", 8) + field("", 8);
  h += field("-100", 8) + field("-1", 8);
  h += field("100", 8) + field("1", 8);
  h += field(dig_min, 8) + field(dig_min, 8);
  h += field(dig_max, 8) + field(dig_max, 8);
  h += field("HP:0.1Hz", 80) + field("", 80);
  h += field("4", 8) + field(std::to_string(tal_samples), 8);
  h += field("", 32) + field("", 32);
  const std::string tals[2] = {std::string("+0\x14\x14\0+0.5\x14" "A\x14\0", 13), std::string("+3\x14\x14\0", 5)};
  for (int r = 0; r < 2; ++r) {
    for (int s = 0; s < 4; ++s) {
      const int value = (r * 4 + s) * 1000 - 3000;
      for (int b = 0; b < bytes; ++b) h += static_cast<char>((value >> (8 * b)) & 0xff);
    }
    std::string tal = tals[r];
    tal.resize(static_cast<std::size_t>(tal_samples * bytes), '\0');
    h += tal;
  }
  return h;
}

neurobolt::SimulationConfig simulation_config() {
  neurobolt::SimulationConfig config;
  config.channels = {"Fp1", "Cz", "O1", "O2"};
  return config;
}

void write_nifti1(const fs::path& path) {
  neurobolt::NiftiImage image;
  image.grid.dims = {3, 2, 2};
  image.grid.voxel_size = {2, 2, 2};
  image.grid.affine = {{{2, 0, 0, -3}, {0, 2, 0, -2}, {0, 0, 2, -2}}};
  image.num_volumes = 3;
  image.repetition_time = 2.0;
  image.data.resize(static_cast<std::size_t>(image.grid.num_voxels() * image.num_volumes));
  for (std::size_t i = 0; i < image.data.size(); ++i) image.data[i] = static_cast<float>(i);
  neurobolt::write_nifti(path.string(), image);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FOLDER\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  try {
    fs::create_directories(out / "fuzz_h5_dataset");
    write_dataset(out / "fuzz_h5_dataset" / "dataset.h5", false, false);
    write_dataset(out / "fuzz_h5_dataset" / "dataset_kfold_gzip.h5", true, true);
    write_ridge(out / "fuzz_h5_dataset" / "ridge.h5");

    fs::create_directories(out / "fuzz_checkpoint");
    write_checkpoint_seed(out / "fuzz_checkpoint" / "tiny_part.h5");

    const fs::path eeglab = out / "fuzz_eeglab";
    fs::create_directories(eeglab);
    write_set(eeglab / "v5.set", MAT_FT_MAT5, MAT_COMPRESSION_NONE, false);
    write_set(eeglab / "v7.set", MAT_FT_MAT5, MAT_COMPRESSION_ZLIB, false);
    write_set(eeglab / "v73.set", MAT_FT_MAT73, MAT_COMPRESSION_NONE, false);
    const std::string fdt = write_set(eeglab / "v5_fdt.set", MAT_FT_MAT5, MAT_COMPRESSION_NONE, true);
    const std::string with_fdt = slurp(eeglab / "v5_fdt.set") + std::string(neurobolt::fuzz::kSeparator) + fdt;
    std::ofstream(eeglab / "v5_fdt.set", std::ios::binary | std::ios::trunc) << with_fdt;

    fs::create_directories(out / "fuzz_edf");
    std::ofstream(out / "fuzz_edf" / "edf_d.edf", std::ios::binary) << discontinuous_edf(false);
    std::ofstream(out / "fuzz_edf" / "bdf_d.bdf", std::ios::binary) << discontinuous_edf(true);

    // fuzz_json: its first byte picks the parser (1: the simulation config).
    fs::create_directories(out / "fuzz_json");
    std::ofstream(out / "fuzz_json" / "simulation.json", std::ios::binary)
        << '\x01' << neurobolt::to_json(simulation_config());

    fs::create_directories(out / "fuzz_nifti");
    write_nifti1(out / "fuzz_nifti" / "nifti1.nii");
    write_nifti1(out / "fuzz_nifti" / "nifti1.nii.gz");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
