// DatasetReader: streams windows and targets from a prepared dataset (layout in dataset.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "data/h5_tables.hpp"
#include "neurobolt/dataset.hpp"
#include "neurobolt/error.hpp"

namespace neurobolt {

struct DatasetReader::Impl {
  h5::File file;
  h5::Handle windows;
  int64_t N = 0, C = 0, S = 0, R = 0;
  double sample_rate = 0;
  std::vector<std::string> channels, rois, subjects, runs;
  SplitMode mode = SplitMode::intra_run;
  int64_t folds = 0;
  int64_t fold = 0;
  std::vector<int8_t> stored_split, window_fold;
  std::vector<Split> split;
  std::array<std::vector<int64_t>, 3> indices;
  std::vector<int32_t> run, subject;
  std::vector<int64_t> volume;
  std::vector<double> onset;
  std::vector<float> targets_raw;
  TargetNormalisation stats;
  std::vector<double> fold_mean, fold_std;

  explicit Impl(h5::File f) : file(std::move(f)) {}

  std::string where() const { return fmt::format("'{}'", file.path()); }

  template <typename T>
  std::vector<T> read_column(const std::string& name, h5::Type type, int64_t expected) const {
    const auto info = file.info(name);
    if (info.shape.size() != 1 || info.shape[0] != expected) {
      throw FormatError(fmt::format("{}: dataset '{}' must have shape [{}], found {} dimensions", where(), name,
                                    expected, info.shape.size() == 1 ? fmt::format("[{}]", info.shape[0])
                                                                     : std::to_string(info.shape.size())));
    }
    std::vector<T> out(static_cast<std::size_t>(expected));
    if (expected > 0) file.read(name, type, out.data());
    return out;
  }

  void relabel() {
    split.clear();
    for (auto& v : indices) v.clear();
    for (int64_t i = 0; i < N; ++i) {
      const Split s = mode == SplitMode::kfold ? fold_split(window_fold[i], fold, folds) : static_cast<Split>(stored_split[i]);
      split.push_back(s);
      if (s != Split::excluded) indices[static_cast<int>(s)].push_back(i);
    }
    if (mode == SplitMode::kfold) {
      stats.mean.assign(fold_mean.begin() + fold * R, fold_mean.begin() + (fold + 1) * R);
      stats.std.assign(fold_std.begin() + fold * R, fold_std.begin() + (fold + 1) * R);
    }
  }
};

DatasetReader::DatasetReader(const std::string& path) {
  auto file = h5::File::open_read(path);
  if (!file.has_attribute("/", "format") || file.string_attribute("/", "format") != "neurobolt-dataset") {
    throw FormatError(fmt::format("'{}': not a neurobolt dataset (no format attribute 'neurobolt-dataset'; make one "
                                  "with 'neurobolt prepare')",
                                  path));
  }
  if (file.int_attribute("/", "format_version") != 1) {
    throw FormatError(fmt::format("'{}': dataset format version: expected 1, found {}", path,
                                  file.int_attribute("/", "format_version")));
  }
  impl_ = std::make_unique<Impl>(std::move(file));
  auto& m = *impl_;
  const auto info = m.file.info("/windows");
  if (info.shape.size() != 3 || info.type != h5::Type::f32) {
    throw FormatError(fmt::format("{}: '/windows' must be float32 [N, C, S]", m.where()));
  }
  m.N = info.shape[0];
  m.C = info.shape[1];
  m.S = info.shape[2];
  m.sample_rate = data::double_attribute(m.file, "/", "sample_rate");
  m.channels = data::read_strings(m.file, "/channel_names");
  m.rois = data::read_strings(m.file, "/roi_names");
  m.subjects = data::read_strings(m.file, "/subjects");
  m.runs = data::read_strings(m.file, "/runs/name");
  m.R = static_cast<int64_t>(m.rois.size());
  if (static_cast<int64_t>(m.channels.size()) != m.C) {
    throw FormatError(fmt::format("{}: {} channel names for {} channels in '/windows'", m.where(), m.channels.size(), m.C));
  }
  const auto tinfo = m.file.info("/targets_raw");
  if (tinfo.shape != std::vector<int64_t>{m.N, m.R}) {
    throw FormatError(fmt::format("{}: '/targets_raw' must be [{}, {}]", m.where(), m.N, m.R));
  }
  m.targets_raw.resize(static_cast<std::size_t>(m.N * m.R));
  if (m.N > 0) m.file.read("/targets_raw", h5::Type::f32, m.targets_raw.data());
  m.stored_split = m.read_column<int8_t>("/split", h5::Type::i8, m.N);
  m.run = m.read_column<int32_t>("/run", h5::Type::i32, m.N);
  m.subject = m.read_column<int32_t>("/subject", h5::Type::i32, m.N);
  m.volume = m.read_column<int64_t>("/volume", h5::Type::i64, m.N);
  m.onset = m.read_column<double>("/onset", h5::Type::f64, m.N);
  for (int64_t i = 0; i < m.N; ++i) {
    if (m.stored_split[i] < -1 || m.stored_split[i] > 2) {
      throw FormatError(fmt::format("{}: '/split' window {}: expected -1 to 2, found {}", m.where(), i, m.stored_split[i]));
    }
    if (m.run[i] < 0 || m.run[i] >= static_cast<int32_t>(m.runs.size()) || m.subject[i] < 0 ||
        m.subject[i] >= static_cast<int32_t>(m.subjects.size())) {
      throw FormatError(fmt::format("{}: window {} names run {} / subject {} outside the tables", m.where(), i, m.run[i],
                                    m.subject[i]));
    }
  }
  m.mode = parse_split_mode(m.file.string_attribute("/", "split_mode"));
  m.stats.mean = m.read_column<double>("/normalisation/mean", h5::Type::f64, m.R);
  m.stats.std = m.read_column<double>("/normalisation/std", h5::Type::f64, m.R);
  if (m.mode == SplitMode::kfold) {
    m.folds = m.file.int_attribute("/", "num_folds");
    // The rule of subject_folds (splits.cpp): 2 to the number of subjects.
    if (m.folds < 2 || m.folds > static_cast<int64_t>(m.subjects.size())) {
      throw FormatError(fmt::format("{}: attribute 'num_folds': expected 2 to {} (the subjects), found {}", m.where(),
                                    m.subjects.size(), m.folds));
    }
    m.window_fold = m.read_column<int8_t>("/fold", h5::Type::i8, m.N);
    for (int64_t i = 0; i < m.N; ++i) {
      if (m.window_fold[i] < 0 || m.window_fold[i] >= m.folds) {
        throw FormatError(fmt::format("{}: '/fold' window {}: expected 0 to {}, found {}", m.where(), i, m.folds - 1,
                                      m.window_fold[i]));
      }
    }
    for (const char* name : {"/normalisation/fold_mean", "/normalisation/fold_std"}) {
      if (m.file.info(name).shape != std::vector<int64_t>{m.folds, m.R}) {
        throw FormatError(fmt::format("{}: '{}' must be [{}, {}]", m.where(), name, m.folds, m.R));
      }
    }
    m.fold_mean.resize(static_cast<std::size_t>(m.folds * m.R));
    m.fold_std.resize(m.fold_mean.size());
    m.file.read("/normalisation/fold_mean", h5::Type::f64, m.fold_mean.data());
    m.file.read("/normalisation/fold_std", h5::Type::f64, m.fold_std.data());
  }
  m.relabel();
  // Room for a few chunks, so that reading neighbouring windows one call at a time decompresses
  // each chunk once.
  const std::size_t window_bytes = static_cast<std::size_t>(m.C * m.S) * sizeof(float);
  m.windows = data::open_cached(m.file, "/windows", std::max<std::size_t>(32u << 20, 64 * window_bytes));
}

DatasetReader::~DatasetReader() = default;
DatasetReader::DatasetReader(DatasetReader&&) noexcept = default;
DatasetReader& DatasetReader::operator=(DatasetReader&&) noexcept = default;

const std::string& DatasetReader::path() const { return impl_->file.path(); }
int64_t DatasetReader::num_windows() const { return impl_->N; }
int64_t DatasetReader::num_windows(Split split) const {
  return split == Split::excluded
             ? impl_->N - static_cast<int64_t>(impl_->indices[0].size() + impl_->indices[1].size() +
                                               impl_->indices[2].size())
             : static_cast<int64_t>(impl_->indices[static_cast<int>(split)].size());
}
const std::vector<int64_t>& DatasetReader::indices(Split split) const {
  if (split == Split::excluded) throw ConfigError("DatasetReader::indices: ask for train, val or test");
  return impl_->indices[static_cast<int>(split)];
}
Split DatasetReader::split_of(int64_t window) const { return impl_->split.at(static_cast<std::size_t>(window)); }
int64_t DatasetReader::num_channels() const { return impl_->C; }
int64_t DatasetReader::window_samples() const { return impl_->S; }
int64_t DatasetReader::num_rois() const { return impl_->R; }
double DatasetReader::sample_rate() const { return impl_->sample_rate; }
const std::vector<std::string>& DatasetReader::channel_names() const { return impl_->channels; }
const std::vector<std::string>& DatasetReader::roi_names() const { return impl_->rois; }
SplitMode DatasetReader::split_mode() const { return impl_->mode; }
int64_t DatasetReader::num_folds() const { return impl_->folds; }
int64_t DatasetReader::fold() const { return impl_->fold; }

void DatasetReader::select_fold(int64_t fold) {
  if (impl_->mode != SplitMode::kfold) {
    throw ConfigError(fmt::format("'{}': select_fold: the dataset's split is {}, not kfold", path(),
                                  to_string(impl_->mode)));
  }
  if (fold < 0 || fold >= impl_->folds) {
    throw ConfigError(fmt::format("'{}': fold must be 0 to {}, found {}", path(), impl_->folds - 1, fold));
  }
  impl_->fold = fold;
  impl_->relabel();
}

const TargetNormalisation& DatasetReader::normalisation() const { return impl_->stats; }

Batch DatasetReader::read_batch(const std::vector<int64_t>& indices) const {
  const auto& m = *impl_;
  Batch batch;
  batch.indices = indices;
  batch.num_channels = m.C;
  batch.window_samples = m.S;
  batch.num_rois = m.R;
  const auto B = static_cast<int64_t>(indices.size());
  for (auto i : indices) {
    if (i < 0 || i >= m.N) {
      throw FormatError(fmt::format("{}: window index {} out of range (the dataset has {})", m.where(), i, m.N));
    }
  }
  const int64_t row = m.C * m.S;
  batch.windows.resize(static_cast<std::size_t>(B * row));
  batch.targets.resize(static_cast<std::size_t>(B * m.R));
  batch.targets_raw.resize(batch.targets.size());
  // One read per run of consecutive indices.
  for (int64_t b = 0; b < B;) {
    int64_t e = b + 1;
    while (e < B && indices[e] == indices[e - 1] + 1) ++e;
    data::read_rows_f32(m.windows, fmt::format("{} '/windows'", m.where()), indices[b], e - b,
                        batch.windows.data() + b * row);
    b = e;
  }
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t r = 0; r < m.R; ++r) {
      const float raw = m.targets_raw[indices[b] * m.R + r];
      batch.targets_raw[b * m.R + r] = raw;
      batch.targets[b * m.R + r] = static_cast<float>((raw - m.stats.mean[r]) / m.stats.std[r]);
    }
  }
  return batch;
}

int64_t DatasetReader::run_of(int64_t window) const { return impl_->run.at(static_cast<std::size_t>(window)); }
int64_t DatasetReader::volume_of(int64_t window) const { return impl_->volume.at(static_cast<std::size_t>(window)); }
double DatasetReader::onset_of(int64_t window) const { return impl_->onset.at(static_cast<std::size_t>(window)); }
const std::string& DatasetReader::subject_of(int64_t window) const {
  return impl_->subjects.at(static_cast<std::size_t>(impl_->subject.at(static_cast<std::size_t>(window))));
}
const std::vector<std::string>& DatasetReader::run_names() const { return impl_->runs; }
const std::vector<std::string>& DatasetReader::subjects() const { return impl_->subjects; }
std::string DatasetReader::parameters_json() const { return impl_->file.string_attribute("/", "parameters"); }
std::string DatasetReader::provenance_json() const { return impl_->file.string_attribute("/", "provenance"); }
std::string DatasetReader::fingerprint() const { return impl_->file.string_attribute("/", "fingerprint"); }

}  // namespace neurobolt
