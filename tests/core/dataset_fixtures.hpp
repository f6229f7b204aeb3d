#pragma once
// Small synthetic EEG-fMRI inputs for the dataset tests: BrainVision and EDF+ recordings with
// known content and trigger markers, and BIDS-derivative ROI time series.
#include <edflib.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace neurobolt::test {

// The channels of the neurobolt-tiny config, as a recording would spell them.
inline std::vector<std::string> tiny_channels() { return {"Fp1", "Fp2", "C3", "C4", "T7", "T8", "O1", "O2"}; }

struct Marker {
  std::string type = "Response";
  std::string description = "R128";
  int64_t sample = 0;  // from 0; the file stores sample + 1
};

struct EegSpec {
  double rate = 200.0;
  double duration = 64.0;  // seconds
  std::vector<std::string> channels = tiny_channels();
  // Value of channel c at sample s (microvolts); zero when unset.
  std::function<float(int64_t c, int64_t s)> value;
  std::vector<Marker> markers;

  int64_t num_samples() const { return static_cast<int64_t>(std::llround(duration * rate)); }
};

// Triggers every `tr` seconds from `first` (on the sample grid), one per volume.
inline std::vector<Marker> volume_triggers(double rate, double first, double tr, int64_t count,
                                           const std::string& description = "R128") {
  std::vector<Marker> out;
  for (int64_t k = 0; k < count; ++k) {
    out.push_back(Marker{"Response", description, std::llround((first + static_cast<double>(k) * tr) * rate)});
  }
  return out;
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// BrainVision, IEEE_FLOAT_32 multiplexed, resolution 1 µV. `vhdr` ends in .vhdr.
inline void write_brainvision(const std::filesystem::path& vhdr, const EegSpec& spec) {
  const std::string stem = vhdr.stem().string();
  const auto C = static_cast<int64_t>(spec.channels.size());
  std::string header =
      "Brain Vision Data Exchange Header File Version 1.0\n[Common Infos]\nCodepage=UTF-8\nDataFile=" + stem +
      ".eeg\nMarkerFile=" + stem + ".vmrk\nDataFormat=BINARY\nDataOrientation=MULTIPLEXED\nNumberOfChannels=" +
      std::to_string(C) + "\nSamplingInterval=" + std::to_string(1e6 / spec.rate) +
      "\n[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n[Channel Infos]\n";
  for (int64_t c = 0; c < C; ++c) header += "Ch" + std::to_string(c + 1) + "=" + spec.channels[c] + ",,1,\xC2\xB5V\n";
  write_text(vhdr, header);
  std::string markers = "Brain Vision Data Exchange Marker File, Version 1.0\n[Marker Infos]\nMk1=New Segment,,1,1,0\n";
  for (std::size_t i = 0; i < spec.markers.size(); ++i) {
    const auto& m = spec.markers[i];
    markers += "Mk" + std::to_string(i + 2) + "=" + m.type + "," + m.description + "," + std::to_string(m.sample + 1) +
               ",1,0\n";
  }
  write_text(vhdr.parent_path() / (stem + ".vmrk"), markers);
  const int64_t n = spec.num_samples();
  std::vector<float> data(static_cast<std::size_t>(n * C), 0.0f);
  if (spec.value)
    for (int64_t s = 0; s < n; ++s)
      for (int64_t c = 0; c < C; ++c) data[s * C + c] = spec.value(c, s);
  std::ofstream(vhdr.parent_path() / (stem + ".eeg"), std::ios::binary)
      .write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
}

// EDF+ with 1 s records (the rate must be whole), 16-bit samples over +-3276.7 µV (0.1 µV steps);
// markers become annotations with the description only.
inline void write_edf(const std::filesystem::path& path, const EegSpec& spec) {
  const auto C = static_cast<int>(spec.channels.size());
  const int rate = static_cast<int>(spec.rate);
  const int hdl = edfopen_file_writeonly(path.string().c_str(), EDFLIB_FILETYPE_EDFPLUS, C);
  if (hdl < 0) throw std::runtime_error("edfopen_file_writeonly failed");
  for (int c = 0; c < C; ++c) {
    edf_set_samplefrequency(hdl, c, rate);
    edf_set_physical_maximum(hdl, c, 3276.7);
    edf_set_physical_minimum(hdl, c, -3276.8);
    edf_set_digital_maximum(hdl, c, 32767);
    edf_set_digital_minimum(hdl, c, -32768);
    edf_set_physical_dimension(hdl, c, "uV");
    edf_set_label(hdl, c, spec.channels[c].c_str());
  }
  const int64_t seconds = static_cast<int64_t>(spec.duration);
  std::vector<double> buffer(static_cast<std::size_t>(rate));
  for (int64_t sec = 0; sec < seconds; ++sec) {
    for (int c = 0; c < C; ++c) {
      for (int i = 0; i < rate; ++i) buffer[i] = spec.value ? spec.value(c, sec * rate + i) : 0.0;
      edfwrite_physical_samples(hdl, buffer.data());
    }
  }
  for (const auto& m : spec.markers) {
    edfwrite_annotation_utf8(hdl, std::llround(static_cast<double>(m.sample) / spec.rate * 10000.0), -1,
                             m.description.c_str());
  }
  edfclose_file(hdl);
}

// A ROI time series TSV (+ JSON with RepetitionTime): value(v, r) for v < volumes.
inline void write_targets(const std::filesystem::path& tsv, const std::vector<std::string>& rois, int64_t volumes,
                          double tr, const std::function<double(int64_t v, int64_t r)>& value) {
  std::string text;
  for (std::size_t r = 0; r < rois.size(); ++r) text += (r ? "\t" : "") + rois[r];
  text += "\n";
  char cell[64];
  for (int64_t v = 0; v < volumes; ++v) {
    for (std::size_t r = 0; r < rois.size(); ++r) {
      std::snprintf(cell, sizeof cell, "%.17g", value(v, static_cast<int64_t>(r)));
      text += (r ? "\t" : "") + std::string(cell);
    }
    text += "\n";
  }
  write_text(tsv, text);
  auto json = tsv;
  json.replace_extension(".json");
  write_text(json, "{\"RepetitionTime\": " + std::to_string(tr) + "}");
}

// One BIDS run: sub-<sub>/eeg/sub-<sub>_task-rest_run-<run>_eeg.vhdr and its target under
// derivatives/roi. Returns the EEG path.
struct BidsRun {
  std::string sub = "01";
  std::string run = "1";
  EegSpec eeg;
  std::vector<std::string> rois{"V1", "PCC"};
  int64_t volumes = 30;
  double tr = 2.0;
  std::function<double(int64_t v, int64_t r)> target = [](int64_t v, int64_t r) {
    return static_cast<double>(v) + 0.5 * static_cast<double>(r);
  };
};

inline std::string bids_stem(const BidsRun& run) { return "sub-" + run.sub + "_task-rest_run-" + run.run; }

inline std::filesystem::path write_bids_run(const std::filesystem::path& root, const BidsRun& run) {
  if (!std::filesystem::exists(root / "dataset_description.json")) {
    write_text(root / "dataset_description.json", R"({"Name": "synthetic", "BIDSVersion": "1.8.0"})");
  }
  const auto stem = bids_stem(run);
  const auto eeg = root / ("sub-" + run.sub) / "eeg" / (stem + "_eeg.vhdr");
  write_brainvision(eeg, run.eeg);
  write_targets(root / "derivatives/roi" / ("sub-" + run.sub) / "func" / (stem + "_timeseries.tsv"), run.rois,
                run.volumes, run.tr, run.target);
  return eeg;
}

}  // namespace neurobolt::test
