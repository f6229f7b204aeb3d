#pragma once
// What the recording targets (EDF/BDF, BrainVision, EEGLAB) check of every recording a reader
// returns: the data size it promises, every value touched (ASan sees an overrun), and what
// `neurobolt info` makes of it, as text and as JSON (JSON needs valid UTF-8 everywhere).
#include <cstdint>

#include "fuzz_files.hpp"
#include "neurobolt/describe.hpp"
#include "neurobolt/recording.hpp"

namespace neurobolt::fuzz {

inline void check_recording(const Recording& rec) {
  if (static_cast<int64_t>(rec.data.size()) != rec.num_channels() * rec.samples_in_data()) __builtin_trap();
  touch(rec.data);
  const RecordingSummary summary = summarize_recording(rec);
  (void)format_recording(summary);
  (void)recording_json(summary);
  for (const auto& a : rec.annotations) (void)a.description();
}

}  // namespace neurobolt::fuzz
