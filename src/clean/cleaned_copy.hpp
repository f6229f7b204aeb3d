#pragma once
// A cleaned copy of a raw recording for `prepare --clean` and `infer --clean`: the recording is
// cleaned (clean.hpp) into a temporary EDF+ at the pipeline's rate, which the usual reading and
// windowing then use; the file is removed when the object goes.
#include <string>

#include "neurobolt/clean.hpp"

namespace neurobolt::clean_detail {

class CleanedCopy {
 public:
  // `sample_rate`: the rate the pipeline resamples to (the copy is made at this rate, or at the
  // file's when that is lower).
  CleanedCopy(const std::string& eeg_path, CleanOptions options, double sample_rate);
  ~CleanedCopy();
  CleanedCopy(const CleanedCopy&) = delete;
  CleanedCopy& operator=(const CleanedCopy&) = delete;

  const std::string& path() const { return path_; }
  const CleanReport& report() const { return report_; }
  // One line: what was corrected ("gradient: 240 volume epochs ...; BCG: 520 R peaks ...").
  std::string summary() const;

 private:
  std::string path_;
  CleanReport report_;
};

}  // namespace neurobolt::clean_detail
