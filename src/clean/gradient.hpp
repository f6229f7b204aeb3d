#pragma once
// The gradient-artefact correction of one channel at a time (internal to src/clean).
//
// Epoch i covers the samples [start_i, start_i + length_i) that follow its trigger. For the
// arithmetic each epoch is taken with `pad` samples on both sides, tapered there (raised cosine),
// zero-padded to `nfft` and transformed: a fractional shift by d samples is then a phase ramp
// exp(-2 pi i k d / nfft) on bin k, exact for a band-limited artefact. Epoch i's artefact is the
// common artefact delayed by shift_i samples: aligned spectra (shift removed) are averaged over
// neighbouring epochs into a template, the template is delayed back by shift_i and subtracted.
#include <complex>
#include <cstdint>
#include <vector>

#include "neurobolt/clean.hpp"

namespace neurobolt::clean_detail {

struct EpochLayout {
  std::vector<int64_t> starts;   // the trigger samples
  std::vector<int64_t> lengths;  // samples each epoch corrects
  std::vector<char> complete;    // the padded window lies inside the recording: used for templates
  int64_t span = 0;              // the longest regular interval (+1): the template's length
  int64_t pad = 0;
  int64_t window = 0;            // span + 2 pad
  int64_t nfft = 0;
  int64_t num_samples = 0;       // of the recording
};

// Epochs from repaired triggers: each corrects up to the next trigger, or `span` samples after a
// pause and at the end of the recording.
EpochLayout make_layout(const std::vector<int64_t>& triggers, int64_t median_interval, int64_t num_samples);

// The smallest n' >= n whose only prime factors are 2, 3 and 5.
int64_t fft_size(int64_t n);

struct GradientSettings {
  int template_epochs = 30;
  int components = 4;
  double max_shift = 2.0;
  double component_min_hz = 70.0;  // residual components fitted on bins from this ...
  double component_max_hz = 0.0;   // ... to this (0: to the Nyquist frequency)
  double sample_rate = 0.0;
  double mask_snr = 10.0;
  bool scale_templates = true;  // each epoch's template scaled to it (least squares)  // a bin is artefact when |mean|^2 exceeds this many times its noise
};

class GradientCorrector {
 public:
  GradientCorrector(EpochLayout layout, GradientSettings settings);

  const EpochLayout& layout() const { return layout_; }

  // Each epoch's delay against the mean artefact, from the given channels together (two rounds:
  // against the integer-aligned mean, then against the mean of the aligned epochs). Also keeps the
  // mean artefact of the strongest channel, for slice_period().
  void estimate_shifts(const std::vector<const float*>& channels);
  const std::vector<double>& shifts() const { return shifts_; }

  // The mean artefact over the epoch (span samples) of the strongest reference channel.
  const std::vector<double>& mean_artefact() const { return mean_artefact_; }

  // x (num_samples) minus its gradient artefact; samples outside every epoch are copied.
  std::vector<float> correct(const float* x) const;
  // Residual components the last correct() fitted (fewer than asked with few epochs).
  int components_used() const { return components_used_; }

 private:
  using Spectrum = std::vector<std::complex<double>>;
  // Epoch i's tapered, zero-padded spectrum (nfft / 2 + 1 bins) into `out`.
  void epoch_spectrum(const float* x, std::size_t i, std::vector<double>& buffer, std::complex<double>* out) const;

  EpochLayout layout_;
  GradientSettings settings_;
  std::vector<double> taper_;
  std::vector<double> shifts_;
  std::vector<double> mean_artefact_;
  std::vector<std::size_t> complete_;  // indices of complete epochs
  mutable int components_used_ = 0;
};

// The slice period in samples at the file's rate, from the autocorrelation of the mean volume
// artefact (0 when it shows none; periods below min_lag samples are not considered), and the
// slices it makes per volume (the artefact's active part divided by the period).
struct SlicePeriod {
  double period = 0.0;  // samples
  int64_t slices = 0;
};
SlicePeriod slice_period(const std::vector<double>& mean_artefact, int64_t min_lag);

}  // namespace neurobolt::clean_detail
