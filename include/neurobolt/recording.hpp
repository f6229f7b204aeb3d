#pragma once
// One in-memory EEG recording, whatever file format it came from, and the readers that fill it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace neurobolt {

enum class ChannelType { eeg, eog, ecg, emg, misc, trigger };
const char* to_string(ChannelType type);

struct Channel {
  std::string name;
  ChannelType type = ChannelType::eeg;
  // Unit of the samples as stored in Recording::data. Voltages are always converted to
  // microvolts ("uV"); other channels keep their physical unit as the file states it.
  std::string unit = "uV";
};

struct Annotation {
  double onset = 0.0;     // seconds from the first sample
  double duration = 0.0;  // seconds (0 for instantaneous markers)
  std::string label;      // e.g. "R128", "Scanner/Scan Start", "Stimulus/S  1"
  // The marker type where the format has one (BrainVision: "Stimulus", "Scanner", ...), else "".
  // BrainVision labels are always "<type>/<description>" (as MNE-Python writes them).
  std::string type;
  // The label without its "<type>/" prefix: "Scan Start" for "Scanner/Scan Start".
  std::string description() const;
};

// A stretch of time without samples in a discontinuous recording (EDF+D/BDF+D).
struct Gap {
  double onset = 0.0;     // seconds from the first sample: where the gap starts
  double duration = 0.0;  // seconds
};

struct Recording {
  std::string source;  // the file read
  std::string format;  // "EDF", "EDF+C", "EDF+D", "BDF", "BDF+", "BrainVision", "EEGLAB"
  double sample_rate = 0.0;  // Hz
  std::string start_time;    // ISO 8601 local time of the first sample ("" if unknown)
  std::vector<Channel> channels;
  int64_t num_samples = 0;   // per channel
  // Samples, channel-major: data[c * num_samples + s]. For discontinuous files, samples are
  // placed at their true times and the gaps listed in `gaps` are filled with NaN.
  std::vector<float> data;
  // A read of a sample range (ReadOptions::first_sample, sample_count) holds samples
  // [data_first, data_first + data_samples) of each channel in `data`, channel-major with stride
  // data_samples; every other field still describes the whole recording. A whole read leaves
  // data_first 0 and data_samples -1 (all num_samples).
  int64_t data_first = 0;
  int64_t data_samples = -1;
  std::vector<Annotation> annotations;
  std::vector<Gap> gaps;
  std::vector<std::string> warnings;  // tolerable oddities found while reading

  int64_t num_channels() const { return static_cast<int64_t>(channels.size()); }
  double duration() const { return sample_rate > 0 ? static_cast<double>(num_samples) / sample_rate : 0.0; }
  // Samples per channel held in `data`.
  int64_t samples_in_data() const { return data_samples < 0 ? num_samples : data_samples; }
  const float* channel_data(int64_t c) const { return data.data() + c * samples_in_data(); }
  float* channel_data(int64_t c) { return data.data() + c * samples_in_data(); }
  // Index of a channel by exact name, or -1.
  int64_t find_channel(const std::string& name) const;
};

struct ReadOptions {
  // Channels to load by name (empty: all). Unknown names are an error naming them.
  std::vector<std::string> channels;
  // Read only the header, channel list and annotations; leave `data` empty (num_samples set).
  bool header_only = false;
  // An annotation that starts after the last sample is an error naming it. With this set it is
  // left out with a warning instead (what MNE-Python does).
  bool drop_annotations_after_end = false;
  // Load only samples [first_sample, first_sample + sample_count) of each channel (sample_count
  // -1: to the end; a range reaching past the end is cut there): a long recording can be
  // processed in time blocks with bounded memory. Recording::data_first and data_samples then say
  // which samples `data` holds. A first_sample outside [0, num_samples] is a ConfigError.
  // EDF/BDF, BrainVision and EEGLAB .fdt read only the bytes of the range; an EEGLAB .set that
  // holds its data inside is loaded whole by matio and then cut.
  int64_t first_sample = 0;
  int64_t sample_count = -1;
};

// Picks the reader from the extension (.edf .bdf .vhdr .set); an unknown extension is a
// FormatError naming it. Missing files are IoErrors; corrupt content is a FormatError naming
// the file, the field and what was expected versus found.
Recording read_recording(const std::string& path, const ReadOptions& options = {});

// A recording opened once and read in pieces: the header, channels and annotations are parsed
// and checked at construction (options: channel selection and annotation rules; the data files
// are checked too), and read() loads any sample range of the selected channels without parsing
// them again. What long recordings are processed with (EegStream, `infer`).
class RecordingReader {
 public:
  explicit RecordingReader(const std::string& path, const ReadOptions& options = {});
  ~RecordingReader();
  RecordingReader(const RecordingReader&) = delete;
  RecordingReader& operator=(const RecordingReader&) = delete;

  const Recording& header() const;  // no samples
  // The header with samples [first, first + count) (cut at the end; data_first and data_samples
  // say so), exactly as read_recording with that range returns them; a first outside
  // [0, num_samples] or a count < -1 is a ConfigError.
  Recording read(int64_t first, int64_t count) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Recording read_edf(const std::string& path, const ReadOptions& options = {});          // EDF, EDF+, BDF, BDF+
Recording read_brainvision(const std::string& path, const ReadOptions& options = {});  // .vhdr (+ .vmrk, data)
Recording read_eeglab(const std::string& path, const ReadOptions& options = {});       // .set (+ .fdt)

}  // namespace neurobolt
