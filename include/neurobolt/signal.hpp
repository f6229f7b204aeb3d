#pragma once
// Signal processing for the data pipeline: resampling, Butterworth design and zero-phase
// filtering, the SPM canonical HRF, Welch power spectra, standardisation, correlation and
// confound regression.
//
// Each routine reproduces a named scipy (1.10) or SPM12 function, named in its comment, and is
// tested against that function's outputs (tests/core/test_signal.cpp, fixtures in
// ../shared/fixtures/scipy). Arithmetic is float64 throughout, whatever the input type.
// Invalid arguments throw ConfigError naming the argument, what was expected and what was found.
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace neurobolt::signal {

// ---------------------------------------------------------------------------------------------
// Resampling

// An up/down ratio in lowest terms.
struct ResampleRatio {
  int64_t up = 1;
  int64_t down = 1;
};

// The ratio that takes `from_rate` to `to_rate` (Hz, both > 0, each a whole number of mHz):
// 5000 -> 200 Hz is 1/25, 2048 -> 200 Hz is 25/256. Ratios whose larger term exceeds 100000 are
// refused (the anti-aliasing filter would have millions of taps).
ResampleRatio resample_ratio(double from_rate, double to_rate);

// scipy.signal.resample_poly(x, up, down) with its defaults: up/down reduced by their gcd, a
// linear-phase FIR low-pass from firwin(2*half_len+1, 1/max(up,down), window=('kaiser', 5.0))
// with half_len = 10*max(up,down), gain `up`, zero padding beyond both ends, and
// ceil(n*up/down) output samples. The filter is built once; only the output phases that are
// kept are computed (cost per output sample ~ 20*max(up,down)/up multiply-adds).
class PolyphaseResampler {
 public:
  // up, down >= 1.
  PolyphaseResampler(int64_t up, int64_t down);

  int64_t up() const { return up_; }      // after gcd reduction
  int64_t down() const { return down_; }  // after gcd reduction
  int64_t output_length(int64_t input_length) const;
  // The FIR filter in scipy's layout (length 2*half_len+1, already multiplied by up).
  const std::vector<double>& filter() const { return filter_; }

  // Resamples x[0..n) into y[0..output_length(n)).
  void apply(const double* x, int64_t n, double* y) const;
  void apply(const float* x, int64_t n, float* y) const;

  // Streaming a long signal of n samples in pieces: the input samples [first, end) (within
  // [0, n)) that outputs [out_first, out_first + out_count) depend on ...
  struct Span {
    int64_t first = 0;
    int64_t end = 0;
  };
  Span input_span(int64_t out_first, int64_t out_count, int64_t n) const;
  // ... and those outputs from x[0..x_count) = signal[x_first, x_first + x_count), which must
  // cover input_span(out_first, out_count, n) (an internal Error otherwise). The result equals
  // the same outputs of apply() on the whole signal, bit for bit.
  void apply_span(const double* x, int64_t x_first, int64_t x_count, int64_t n, int64_t out_first, int64_t out_count,
                  double* y) const;
  void apply_span(const float* x, int64_t x_first, int64_t x_count, int64_t n, int64_t out_first, int64_t out_count,
                  float* y) const;

 private:
  int64_t up_ = 1;
  int64_t down_ = 1;
  int64_t half_len_ = 0;
  std::vector<double> filter_;
  // phase_taps_[r]: the taps h[r], h[r+up], ... in reverse order, so that each output sample is
  // one contiguous dot product with the input.
  std::vector<std::vector<double>> phase_taps_;
};

std::vector<double> resample_poly(const std::vector<double>& x, int64_t up, int64_t down);
std::vector<float> resample_poly(const std::vector<float>& x, int64_t up, int64_t down);
// resample_poly with the ratio from resample_ratio(from_rate, to_rate).
std::vector<double> resample(const std::vector<double>& x, double from_rate, double to_rate);
std::vector<float> resample(const std::vector<float>& x, double from_rate, double to_rate);
// Channel-major data (data[c * num_samples + s], as in Recording::data) resampled channel by
// channel with one filter; returns channel-major data of output_length(num_samples) per channel.
std::vector<float> resample_channels(const float* data, int64_t num_channels, int64_t num_samples,
                                     double from_rate, double to_rate);

// ---------------------------------------------------------------------------------------------
// IIR filters

enum class FilterType { lowpass, highpass, bandpass, bandstop };
const char* to_string(FilterType type);

// One second-order section (b0, b1, b2, a0 = 1, a1, a2), scipy's sos row layout.
using Section = std::array<double, 6>;

struct IirFilter {
  std::vector<double> b;       // numerator, highest power of z^-1 last (scipy's b)
  std::vector<double> a;       // denominator, a[0] == 1 (scipy's a)
  std::vector<Section> sos;    // the same filter as second-order sections (scipy's sos)
};

// scipy.signal.butter(order, cutoff, btype, fs=sample_rate) for both output='ba' and 'sos':
// the analog Butterworth prototype, frequency transform (lp2lp/lp2hp/lp2bp/lp2bs) at the
// pre-warped cutoff(s), bilinear transform, then zpk2tf and zpk2sos(pairing='nearest').
// Low/high-pass take one cutoff in Hz, band-pass/stop two (low < high); every cutoff must lie
// strictly between 0 and the Nyquist frequency sample_rate/2. order >= 1.
IirFilter butter(int order, double cutoff_hz, double sample_rate, FilterType type);
IirFilter butter(int order, const std::vector<double>& cutoff_hz, double sample_rate, FilterType type);

// scipy.signal.iirnotch(freq, quality, fs=sample_rate): a second-order notch at freq Hz
// (0 < freq < sample_rate/2) with -3 dB bandwidth freq/quality.
IirFilter iirnotch(double freq_hz, double quality, double sample_rate);

// scipy.signal.filtfilt(b, a, x) with its defaults: odd extension of padlen =
// 3*max(len(a), len(b)) samples at each end, lfilter_zi initial conditions scaled by the first
// sample, forward then backward direct-form-II-transposed filtering. b and a are normalised by
// a[0]. x must be longer than padlen.
std::vector<double> filtfilt(const std::vector<double>& b, const std::vector<double>& a,
                             const std::vector<double>& x);
// scipy.signal.sosfiltfilt(sos, x) with its defaults: padlen = 3*(2*n_sections + 1 -
// min(#sections with b2 == 0, #sections with a2 == 0)), sosfilt_zi initial conditions.
// Every section needs a0 == 1. x must be longer than padlen.
std::vector<double> sosfiltfilt(const std::vector<Section>& sos, const std::vector<double>& x);

// The default padlen of filtfilt and sosfiltfilt for these coefficients (see above).
int64_t filtfilt_padlen(const std::vector<double>& b, const std::vector<double>& a);
int64_t sosfiltfilt_padlen(const std::vector<Section>& sos);

// ---------------------------------------------------------------------------------------------
// Haemodynamic response

// The parameters of SPM's spm_hrf, p(1)..p(7); the defaults are SPM's canonical HRF. Vary
// them per ROI to model regional differences in response timing and shape.
struct HrfParams {
  double peak_delay = 6.0;              // p(1), s: delay of the response
  double undershoot_delay = 16.0;       // p(2), s: delay of the undershoot
  double peak_dispersion = 1.0;         // p(3), s: dispersion of the response
  double undershoot_dispersion = 1.0;   // p(4), s: dispersion of the undershoot
  double ratio = 6.0;                   // p(5): ratio of response to undershoot
  double onset = 0.0;                   // p(6), s: onset
  double length = 32.0;                 // p(7), s: length of the kernel
};

// SPM12 spm_hrf(dt, p): the difference of two gamma densities (shape delay/dispersion, scale
// dispersion), the second divided by `ratio`, sampled at t = 0, dt, ..., floor(length/dt)*dt
// after shifting by `onset`, and normalised to unit sum (as spm_hrf does). dt > 0 in seconds;
// delays and dispersions > 0, ratio != 0.
std::vector<double> spm_hrf(double dt, const HrfParams& params = {});

// ---------------------------------------------------------------------------------------------
// Spectra

enum class Detrend { none, constant, linear };
enum class SpectrumScaling { density, spectrum };

struct WelchOptions {
  int64_t noverlap = -1;  // samples shared by neighbouring segments; -1: nperseg/2
  int64_t nfft = -1;      // FFT length (>= nperseg, zero-padded); -1: nperseg
  Detrend detrend = Detrend::constant;                 // per segment, before windowing
  SpectrumScaling scaling = SpectrumScaling::density;  // V^2/Hz or V^2
};

struct Spectrum {
  std::vector<double> frequencies;  // Hz, 0 .. fs/2, nfft/2 + 1 values
  std::vector<double> power;        // one-sided
};

// scipy.signal.welch(x, fs, nperseg=nperseg, ...) with its defaults: periodic Hann window,
// nperseg/2 overlap, constant detrend, one-sided density scaling, mean over segments. As in
// scipy, nperseg larger than the input is reduced to the input length.
Spectrum welch(const std::vector<double>& x, double fs, int64_t nperseg = 256, const WelchOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Statistics and regression

// Pearson correlation (scipy.stats.pearsonr's r). Equal lengths >= 2. NaN if either input is
// constant (the correlation is undefined).
double pearson(const std::vector<double>& x, const std::vector<double>& y);

struct MeanStd {
  double mean = 0.0;
  double std = 1.0;
};

// Mean and standard deviation with `ddof` delta degrees of freedom (numpy's std: ddof = 0
// divides by n). Needs more than ddof samples.
MeanStd mean_std(const std::vector<double>& x, int ddof = 0);

// Accumulates mean and standard deviation over many pieces (e.g. all recordings of a training
// split, channel by channel) without holding them in memory; exact pairwise merging (Chan et
// al.) so the result equals mean_std of the concatenation up to rounding.
class MeanStdAccumulator {
 public:
  void add(const double* x, int64_t n);
  void add(const float* x, int64_t n);
  int64_t count() const { return count_; }
  MeanStd result(int ddof = 0) const;

 private:
  void merge(int64_t n, double mean, double m2);
  int64_t count_ = 0;
  double mean_ = 0.0;
  double m2_ = 0.0;  // sum of squared deviations from the mean
};

// (x - stats.mean) / stats.std, e.g. with statistics from the training split applied to the
// validation and test splits. stats.std must be > 0.
std::vector<double> zscore(const std::vector<double>& x, const MeanStd& stats);
void zscore_inplace(float* x, int64_t n, const MeanStd& stats);
// zscore with the input's own mean_std(x) (scipy.stats.zscore, ddof = 0).
std::vector<double> zscore(const std::vector<double>& x);

// scipy.signal.detrend(x, type='linear'): x minus its least-squares straight line. n >= 2.
std::vector<double> detrend_linear(const std::vector<double>& x);

// Least-squares residual of series on the regressors [1, t, confounds...] (intercept, linear
// trend, and each confound a column of length n), as used to clean fMRI ROI series of
// motion/physiological confounds. The design is factorised once (column-pivoting QR, so
// collinear confounds are tolerated) and applied to any number of series.
class ConfoundRegression {
 public:
  // n samples; every confound must have n values; n must exceed 2 + confounds.size().
  ConfoundRegression(int64_t n, const std::vector<std::vector<double>>& confounds);
  ~ConfoundRegression();
  ConfoundRegression(ConfoundRegression&&) noexcept;
  ConfoundRegression& operator=(ConfoundRegression&&) noexcept;

  int64_t length() const { return n_; }
  int64_t num_regressors() const { return regressors_; }
  std::vector<double> residual(const std::vector<double>& y) const;

 private:
  struct Impl;
  int64_t n_ = 0;
  int64_t regressors_ = 0;
  std::unique_ptr<Impl> impl_;
};

// ConfoundRegression(y.size(), confounds).residual(y).
std::vector<double> regress_out(const std::vector<double>& y, const std::vector<std::vector<double>>& confounds);

}  // namespace neurobolt::signal
