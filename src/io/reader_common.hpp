#pragma once
// What the EEG readers share: error messages in one shape, units, channel types from names,
// text decoding, channel selection, and the checks every Recording passes before it is returned.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "neurobolt/recording.hpp"

namespace neurobolt::io {

// FormatError "'<path>': <field>: expected <expected>, found <found>".
[[noreturn]] void fail_field(const std::string& path, const std::string& field, const std::string& expected,
                             const std::string& found);
// FormatError "'<path>': <message>".
[[noreturn]] void fail_format(const std::string& path, const std::string& message);

// Size of a regular file in bytes; IoError when it is missing, not a file or unreadable.
int64_t regular_file_size(const std::string& path);
// The whole file; IoError when missing or unreadable.
std::string read_file_bytes(const std::string& path);
// Reads exactly `size` bytes at `offset` of an open descriptor; IoError on a short read.
void read_exact(int fd, void* buffer, std::size_t size, int64_t offset, const std::string& path);

// Owns a read-only file descriptor.
class FileDescriptor {
 public:
  explicit FileDescriptor(const std::string& path);  // IoError when it cannot be opened
  ~FileDescriptor();
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// Microvolts per unit for a voltage unit ("V", "mV", "uV", "µV", "nV"; the micro sign may be
// U+00B5 or U+03BC), nullopt for anything else (a non-voltage channel keeps its unit).
std::optional<double> microvolts_per_unit(std::string_view unit);

// The type a channel name implies when the format does not say: EOG, ECG/EKG and EMG anywhere in
// the name (case-insensitive: "VEOGo", "Ekg1", "EMG chin"), trigger for "Status", "Trigger" or a
// name containing "TRIG" or starting with "STI"; EEG otherwise.
ChannelType channel_type_from_name(std::string_view name);

std::string_view trim(std::string_view text);
std::string lowercase(std::string_view text);
bool is_valid_utf8(std::string_view text);
std::string latin1_to_utf8(std::string_view text);
// Names and text quoted in messages: control bytes and invalid UTF-8 escaped (\xNN), valid UTF-8
// kept, cut to about `max_length` bytes. Every reader quotes names from a file through this.
std::string printable(std::string_view text, std::size_t max_length = 60);

// Indices of the channels to load, in the order requested (all, in file order, when
// options.channels is empty). Unknown or ambiguous names are a ConfigError naming them.
std::vector<int64_t> select_channels(const std::vector<Channel>& channels, const ReadOptions& options,
                                     const std::string& path);

// The sample range a read loads (ReadOptions::first_sample, sample_count) for a recording of
// `num_samples`: sets recording.data_first and data_samples when a range was asked for (any
// first_sample or sample_count other than 0 and -1) and returns the number of samples to load;
// a range outside the recording is a ConfigError naming the file.
int64_t resolve_sample_range(Recording& recording, const ReadOptions& options);

struct ValidationRules {
  bool allow_no_channels = false;  // an annotation-only EDF+ file (e.g. a hypnogram)
  bool length_known = true;        // false: a header-only read that could not learn the sample count
  bool check_finite = false;       // float sample formats: NaN/Inf samples are an error
  bool drop_after_end = false;     // ReadOptions::drop_annotations_after_end
};

// The sample checks of validate_recording alone (data size, finite samples when asked), for the
// ranges a RecordingReader loads after the header was validated.
void check_samples(const Recording& recording, const ValidationRules& rules);

// Where a reader's samples come from once the header is parsed: each format's open_* returns
// the header and a source that loads any sample range of the selected channels, so that a
// RecordingReader parses a header once and reads many ranges.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Fills rec.data with samples [first, first + count) of rec.channels; rec.data_first and
  // data_samples are set (resolve_sample_range) and rec.data is empty.
  virtual void load(Recording& rec, int64_t first, int64_t count) const = 0;
};

struct OpenedRecording {
  Recording header;  // everything read_recording gives but the samples (not yet validated)
  ValidationRules rules;
  std::unique_ptr<SampleSource> source;  // nullptr: there are no samples to load (no channels)
};

// The formats' open functions (options.header_only: no data-file checks where the format
// allows it) and the dispatcher by extension.
OpenedRecording open_edf(const std::string& path, const ReadOptions& options);
OpenedRecording open_brainvision(const std::string& path, const ReadOptions& options);
OpenedRecording open_eeglab(const std::string& path, const ReadOptions& options);
OpenedRecording open_recording(const std::string& path, const ReadOptions& options);
// What every read_* does with an opened recording: loads options' range (unless header_only)
// and validates.
Recording finish_read(OpenedRecording opened, const ReadOptions& options);

// Checks shared by all readers, run on the finished recording: a positive finite sampling rate,
// at least one channel, data of the right size, finite samples (when asked), annotations inside
// the recording (an event after the end is an error naming it, or left out with a warning when
// asked; one before the start is a warning). Sorts annotations by onset (stable).
void validate_recording(Recording& recording, const ValidationRules& rules = {});

}  // namespace neurobolt::io
