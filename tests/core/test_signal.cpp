// Signal processing against scipy 1.10.1's outputs (../shared/fixtures/scipy/signal_reference.h5;
// each group's `note` attribute gives the scipy call) and against analytic properties where no
// fixture exists (band-pass/band-stop/notch responses, regression residuals).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <complex>
#include <numeric>
#include <random>

#include "io/h5.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"
#include "test_support.hpp"

using namespace neurobolt;
using namespace neurobolt::signal;

namespace {

h5::File open_fixture() {
  return h5::File::open_read((test::shared_dir() / "fixtures" / "scipy" / "signal_reference.h5").string());
}

std::vector<double> read_vector(const h5::File& file, const std::string& name) {
  std::vector<double> v(static_cast<std::size_t>(file.info(name).numel()));
  file.read(name, h5::Type::f64, v.data());
  return v;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

double max_abs(const std::vector<double>& a) {
  double m = 0.0;
  for (double v : a) m = std::max(m, std::abs(v));
  return m;
}

double rms(const std::vector<double>& a) {
  double s = 0.0;
  for (double v : a) s += v * v;
  return std::sqrt(s / static_cast<double>(a.size()));
}

// |H(e^{jw})| of b/a at f Hz.
double gain(const std::vector<double>& b, const std::vector<double>& a, double f, double fs) {
  const std::complex<double> z = std::polar(1.0, -2.0 * M_PI * f / fs);  // z^-1
  std::complex<double> num = 0.0, den = 0.0, power = 1.0;
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < b.size()) num += b[i] * power;
    if (i < a.size()) den += a[i] * power;
    power *= z;
  }
  return std::abs(num / den);
}

double sos_gain(const std::vector<Section>& sos, double f, double fs) {
  double g = 1.0;
  for (const auto& s : sos) g *= gain({s[0], s[1], s[2]}, {s[3], s[4], s[5]}, f, fs);
  return g;
}

std::vector<double> noise(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

template <typename F>
std::string config_error_message(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("expected a ConfigError");
  return {};
}

}  // namespace

TEST_CASE("resample_poly matches scipy.signal.resample_poly at every rate the pipeline meets", "[signal]") {
  const auto file = open_fixture();
  for (int rate : {250, 500, 1000, 2048, 5000}) {
    const std::string group = "resample_poly/fs" + std::to_string(rate);
    INFO(group);
    const auto x = read_vector(file, group + "/x");
    const auto y = read_vector(file, group + "/y");
    const auto up = file.int_attribute(group, "up");
    const auto down = file.int_attribute(group, "down");
    const auto ratio = resample_ratio(rate, 200.0);
    CHECK(ratio.up == up);
    CHECK(ratio.down == down);

    const auto ours = resample_poly(x, up, down);
    REQUIRE(ours.size() == y.size());
    // We build scipy's exact filter (firwin, Kaiser beta 5, half-length 10*max(up, down)) and its
    // zero padding, so the whole output, edges included, agrees to summation-order rounding:
    // measured <= 1.1e-14 relative to the signal's RMS (worst at 2048 Hz, 205-tap phases).
    CHECK(max_abs_diff(ours, y) <= 1e-12 * rms(y));
    CHECK(resample(x, rate, 200.0) == ours);

    // The float path computes in double and rounds once: float resolution of the output.
    const std::vector<float> xf(x.begin(), x.end());
    const auto yf = resample_poly(xf, up, down);
    REQUIRE(yf.size() == y.size());
    CHECK(max_abs_diff(std::vector<double>(yf.begin(), yf.end()), y) <= 1e-6 * max_abs(y));
  }
}

TEST_CASE("resampling lengths, ratios and channel-major data", "[signal]") {
  CHECK(PolyphaseResampler(2, 5).output_length(11) == 5);  // ceil(11 * 2 / 5)
  CHECK(PolyphaseResampler(50, 125).up() == 2);            // reduced by the gcd
  CHECK(PolyphaseResampler(50, 125).down() == 5);
  CHECK(PolyphaseResampler(1, 25).filter().size() == 501);  // 2 * 10 * 25 + 1 taps
  CHECK(resample_poly(std::vector<double>{1, 2, 3}, 3, 3) == std::vector<double>{1, 2, 3});
  CHECK(resample_poly(std::vector<double>{}, 1, 5).empty());
  CHECK(resample_ratio(2048, 200).up == 25);
  CHECK(resample_ratio(2048, 200).down == 256);
  CHECK(resample_ratio(250.5, 200).up == 400);
  CHECK(resample_ratio(250.5, 200).down == 501);

  // Each channel of channel-major data equals resampling that channel alone.
  const auto a = noise(1000, 1), b = noise(1000, 2);
  std::vector<float> data;
  data.insert(data.end(), a.begin(), a.end());
  data.insert(data.end(), b.begin(), b.end());
  const auto out = resample_channels(data.data(), 2, 1000, 1000.0, 200.0);
  REQUIRE(out.size() == 400);
  const auto ra = resample_poly(std::vector<float>(a.begin(), a.end()), 1, 5);
  const auto rb = resample_poly(std::vector<float>(b.begin(), b.end()), 1, 5);
  CHECK(std::equal(ra.begin(), ra.end(), out.begin()));
  CHECK(std::equal(rb.begin(), rb.end(), out.begin() + 200));
}

TEST_CASE("resampling in pieces gives the whole signal's outputs bit for bit", "[signal]") {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  const int64_t n = 5003;
  std::vector<double> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = normal(rng);
  // 5 kHz -> 200 Hz, 250 -> 200, 200 -> 250, identity, 1000 -> 200.
  for (auto [up, down] : {std::pair<int64_t, int64_t>{1, 25}, {4, 5}, {5, 4}, {1, 1}, {1, 5}}) {
    INFO("up " << up << " down " << down);
    const PolyphaseResampler r(up, down);
    const int64_t m = r.output_length(n);
    std::vector<double> whole(static_cast<std::size_t>(m));
    r.apply(x.data(), n, whole.data());
    for (int64_t piece : {int64_t{1}, int64_t{7}, int64_t{64}, m}) {
      for (int64_t a = 0; a < m; a += piece) {
        const int64_t count = std::min(piece, m - a);
        const auto span = r.input_span(a, count, n);
        REQUIRE(span.first >= 0);
        REQUIRE(span.end <= n);
        std::vector<double> y(static_cast<std::size_t>(count));
        r.apply_span(x.data() + span.first, span.first, span.end - span.first, n, a, count, y.data());
        for (int64_t i = 0; i < count; ++i) REQUIRE(y[i] == whole[a + i]);
        if (span.end - span.first > 1 && up * down > 1) {  // one input short of the span is refused
          CHECK_THROWS_AS(r.apply_span(x.data() + span.first + 1, span.first + 1, span.end - span.first - 1, n, a,
                                       count, y.data()),
                          Error);
        }
      }
    }
  }
}

TEST_CASE("resampling rejects invalid factors and rates", "[signal]") {
  const std::vector<double> x(100, 1.0);
  CHECK(config_error_message([&] { resample_poly(x, 0, 5); }) ==
        "resampling: upsampling factor: expected an integer >= 1, found 0");
  CHECK(config_error_message([&] { resample_poly(x, 2, -1); }) ==
        "resampling: downsampling factor: expected an integer >= 1, found -1");
  CHECK(config_error_message([&] { resample(x, 0.0, 200.0); }) ==
        "resampling: source sampling rate: expected a positive number of Hz, found 0");
  CHECK(config_error_message([&] { resample(x, 5000.0, 199.9999); }) ==
        "resampling: target sampling rate: expected a whole number of millihertz, found 199.9999 Hz");
  CHECK_THAT(config_error_message([&] { resample(x, 5000.0, 199.999); }),
             Catch::Contains("needs up/down = 199999/5000000"));
}

TEST_CASE("butter and filtfilt match scipy for the fMRI low-pass", "[signal]") {
  const auto file = open_fixture();
  const std::string group = "filtfilt/fmri_lowpass";
  const auto b = read_vector(file, group + "/b");
  const auto a = read_vector(file, group + "/a");
  const auto x = read_vector(file, group + "/x");
  const auto y = read_vector(file, group + "/y");

  const auto filter = butter(5, 0.15, 1.0 / 2.1, FilterType::lowpass);
  // Same pole/zero arithmetic in the same order as scipy: measured 0 (b) and 2.8e-17 (a).
  CHECK(max_abs_diff(filter.b, b) <= 1e-15 * max_abs(b));
  CHECK(max_abs_diff(filter.a, a) <= 1e-15 * max_abs(a));
  // With scipy's coefficients our filtfilt is the same arithmetic: measured bit-identical.
  // 1e-13 leaves room for compilers that reorder; our own coefficients give 2.3e-15.
  CHECK(max_abs_diff(filtfilt(b, a, x), y) <= 1e-13 * max_abs(y));
  CHECK(max_abs_diff(filtfilt(filter.b, filter.a, x), y) <= 1e-13 * max_abs(y));
  // The section form is the same filter, better conditioned: 1.6e-15 measured.
  CHECK(max_abs_diff(sosfiltfilt(filter.sos, x), y) <= 1e-12 * max_abs(y));
  CHECK(filtfilt_padlen(b, a) == 18);
  // A pure gain is applied twice (forward and backward).
  CHECK(filtfilt({2.0}, {1.0}, std::vector<double>{1, 2, 3, 4}) == std::vector<double>{4, 8, 12, 16});
}

TEST_CASE("butter, filtfilt and sosfiltfilt match scipy for the EEG high-pass", "[signal]") {
  const auto file = open_fixture();
  const auto b = read_vector(file, "filtfilt/eeg_highpass/b");
  const auto a = read_vector(file, "filtfilt/eeg_highpass/a");
  const auto x = read_vector(file, "filtfilt/eeg_highpass/x");
  const auto y_ba = read_vector(file, "filtfilt/eeg_highpass/y");
  const auto sos_flat = read_vector(file, "sosfiltfilt/eeg_highpass/sos");
  const auto y_sos = read_vector(file, "sosfiltfilt/eeg_highpass/y");
  REQUIRE(read_vector(file, "sosfiltfilt/eeg_highpass/x") == x);
  REQUIRE(sos_flat.size() == 12);
  std::vector<Section> sos(2);
  for (std::size_t i = 0; i < 12; ++i) sos[i / 6][i % 6] = sos_flat[i];

  const auto filter = butter(4, 0.5, 200.0, FilterType::highpass);
  // Coefficients and section pairing (zpk2sos 'nearest') as scipy's: measured bit-identical.
  CHECK(max_abs_diff(filter.b, b) <= 1e-15 * max_abs(b));
  CHECK(max_abs_diff(filter.a, a) <= 1e-15 * max_abs(a));
  REQUIRE(filter.sos.size() == 2);
  for (std::size_t s = 0; s < 2; ++s)
    for (std::size_t k = 0; k < 6; ++k) CHECK(filter.sos[s][k] == Approx(sos[s][k]).epsilon(1e-14).margin(1e-15));

  // Second-order sections with scipy's sosfilt_zi: measured bit-identical to scipy.
  CHECK(max_abs_diff(sosfiltfilt(sos, x), y_sos) <= 1e-12 * max_abs(y_sos));
  CHECK(max_abs_diff(sosfiltfilt(filter.sos, x), y_sos) <= 1e-12 * max_abs(y_sos));
  CHECK(sosfiltfilt_padlen(sos) == 15);

  // A 4th-order high-pass at 0.25% of the sampling rate in (b, a) form has four poles within
  // 0.02 of z = 1, so every rounding difference is amplified ~1e8 times: scipy's own filtfilt
  // and sosfiltfilt outputs differ by 3.0e-8, and ours differs from scipy's filtfilt by 3.3e-8.
  // 1e-6 of the peak bounds that conditioning, not an algorithmic difference.
  CHECK(max_abs_diff(filtfilt(b, a, x), y_ba) <= 1e-6 * max_abs(y_ba));
  CHECK(max_abs_diff(filtfilt(filter.b, filter.a, x), y_ba) <= 1e-6 * max_abs(y_ba));
}

TEST_CASE("band-pass, band-stop and notch designs have the analytic responses", "[signal]") {
  // No scipy fixture: check what defines them. A Butterworth band edge is its -3 dB point (the
  // pre-warping puts the analog edges exactly there) and the response at the band centre is 1
  // (pass) or 0 (stop). The section form holds these to rounding (1e-12). The 8th-order (b, a)
  // polynomial of a narrow band is ill-conditioned: its response is off by 1.7e-9 at the
  // band-pass centre, hence 1e-7 when comparing it with the sections.
  const double fs = 200.0;
  const auto bp = butter(4, {8.0, 13.0}, fs, FilterType::bandpass);
  CHECK(bp.b.size() == 9);
  CHECK(bp.a.size() == 9);
  CHECK(bp.sos.size() == 4);
  const double centre = fs / M_PI * std::atan(std::sqrt(std::tan(M_PI * 8.0 / fs) * std::tan(M_PI * 13.0 / fs)));
  CHECK(sos_gain(bp.sos, centre, fs) == Approx(1.0).epsilon(1e-12));
  CHECK(sos_gain(bp.sos, 8.0, fs) == Approx(M_SQRT1_2).epsilon(1e-12));
  CHECK(sos_gain(bp.sos, 13.0, fs) == Approx(M_SQRT1_2).epsilon(1e-12));
  CHECK(sos_gain(bp.sos, 0.0, fs) < 1e-12);
  CHECK(sos_gain(bp.sos, 100.0, fs) < 1e-12);
  for (double f : {2.0, 8.0, 10.0, 13.0, 30.0})
    CHECK(gain(bp.b, bp.a, f, fs) == Approx(sos_gain(bp.sos, f, fs)).epsilon(1e-7).margin(1e-12));

  const auto bs = butter(2, {45.0, 55.0}, fs, FilterType::bandstop);
  CHECK(bs.sos.size() == 2);
  const double stop = fs / M_PI * std::atan(std::sqrt(std::tan(M_PI * 45.0 / fs) * std::tan(M_PI * 55.0 / fs)));
  CHECK(sos_gain(bs.sos, 0.0, fs) == Approx(1.0).epsilon(1e-12));
  CHECK(sos_gain(bs.sos, 100.0, fs) == Approx(1.0).epsilon(1e-12));
  CHECK(sos_gain(bs.sos, 45.0, fs) == Approx(M_SQRT1_2).epsilon(1e-12));
  CHECK(sos_gain(bs.sos, 55.0, fs) == Approx(M_SQRT1_2).epsilon(1e-12));
  CHECK(sos_gain(bs.sos, stop, fs) < 1e-12);
  for (double f : {0.0, 30.0, 45.0, 55.0, 80.0})
    CHECK(gain(bs.b, bs.a, f, fs) == Approx(sos_gain(bs.sos, f, fs)).epsilon(1e-7).margin(1e-12));

  const auto notch = iirnotch(50.0, 30.0, fs);
  CHECK(gain(notch.b, notch.a, 50.0, fs) < 1e-12);
  CHECK(gain(notch.b, notch.a, 0.0, fs) == Approx(1.0).epsilon(1e-12));
  // Its -3 dB points lie exactly freq/Q = 5/3 Hz apart (the design's definition of Q).
  const auto crossing = [&](double lo, double hi) {  // gain falls from lo to hi
    for (int i = 0; i < 200; ++i) {
      const double mid = 0.5 * (lo + hi);
      (gain(notch.b, notch.a, mid, fs) > M_SQRT1_2 ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
  };
  CHECK(crossing(100.0, 50.0) - crossing(0.0, 50.0) == Approx(50.0 / 30.0).epsilon(1e-9));
  CHECK(notch.sos.size() == 1);

  // Zero-phase filtering in both forms agrees for a well-conditioned design.
  const auto x = noise(2000, 3);
  CHECK(max_abs_diff(filtfilt(bp.b, bp.a, x), sosfiltfilt(bp.sos, x)) < 1e-6);
}

TEST_CASE("filter design and filtering reject invalid arguments", "[signal]") {
  CHECK(config_error_message([] { butter(0, 10.0, 200.0, FilterType::lowpass); }) ==
        "butter: order must be >= 1, found 0");
  CHECK(config_error_message([] { butter(4, 100.0, 200.0, FilterType::lowpass); }) ==
        "butter: cutoff frequency must be > 0 and < the Nyquist frequency 100 Hz (sample_rate 200 Hz), found 100 Hz");
  CHECK(config_error_message([] { butter(4, 0.0, 200.0, FilterType::highpass); }) ==
        "butter: cutoff frequency must be > 0 and < the Nyquist frequency 100 Hz (sample_rate 200 Hz), found 0 Hz");
  CHECK(config_error_message([] { butter(4, {13.0, 8.0}, 200.0, FilterType::bandpass); }) ==
        "butter: band edges must be increasing (low < high), found 13 Hz and 8 Hz");
  CHECK(config_error_message([] { butter(4, 10.0, 200.0, FilterType::bandpass); }) ==
        "butter: a bandpass filter needs 2 cutoff frequencies, found 1");
  CHECK(config_error_message([] { iirnotch(120.0, 30.0, 200.0); }) ==
        "iirnotch: frequency must be > 0 and < the Nyquist frequency 100 Hz (sample_rate 200 Hz), found 120 Hz");

  const auto lp = butter(5, 0.15, 1.0 / 2.1, FilterType::lowpass);
  const std::vector<double> short_series(18, 1.0);
  CHECK(config_error_message([&] { filtfilt(lp.b, lp.a, short_series); }) ==
        "filtfilt: the input has 18 samples; expected more than padlen = 18 (3 * max(len(a), len(b)))");
  CHECK(filtfilt(lp.b, lp.a, std::vector<double>(19, 1.0)).size() == 19);
  const auto hp = butter(4, 0.5, 200.0, FilterType::highpass);
  CHECK(config_error_message([&] { sosfiltfilt(hp.sos, std::vector<double>(15, 0.0)); }) ==
        "sosfiltfilt: the input has 15 samples; expected more than padlen = 15 (3 * (2 * sections + 1 - min(sections "
        "with b2 == 0, sections with a2 == 0)))");
  auto bad = hp.sos;
  bad[1][3] = 2.0;
  CHECK(config_error_message([&] { sosfiltfilt(bad, std::vector<double>(100, 0.0)); }) ==
        "sosfiltfilt: section 1 has a0 = 2; expected 1");
  CHECK(config_error_message([&] { filtfilt({1.0}, {0.0, 1.0}, std::vector<double>(100, 0.0)); }) ==
        "filtfilt: a[0] must be non-zero, found 0");
  CHECK(config_error_message([&] { filtfilt({1.0}, {1.0, -1.0}, std::vector<double>(100, 0.0)); }) ==
        "filtfilt: sum(a) is 0 (a pole at z = 1): the filter has no steady state");
}

TEST_CASE("spm_hrf is SPM's canonical HRF and varies with its parameters", "[signal]") {
  const auto file = open_fixture();
  const auto t = read_vector(file, "hrf/spm_canonical/t");
  const auto h = read_vector(file, "hrf/spm_canonical/h");
  // The fixture: gamma(6,1) - gamma(16,1)/6 at 0.1 s over 0..32 s, normalised to sum 1, which
  // is spm_hrf(0.1) with the defaults. Same formula in log space: measured 1.1e-16 (0.5 ulp of
  // the peak 0.021).
  const auto ours = spm_hrf(0.1);
  REQUIRE(ours.size() == h.size());
  CHECK(max_abs_diff(ours, h) <= 1e-13 * max_abs(h));
  CHECK(t.back() == Approx(32.0));
  CHECK(std::accumulate(ours.begin(), ours.end(), 0.0) == Approx(1.0).epsilon(1e-14));

  const auto peak_time = [](const std::vector<double>& v, double dt) {
    return dt * static_cast<double>(std::max_element(v.begin(), v.end()) - v.begin());
  };
  CHECK(peak_time(ours, 0.1) == Approx(5.0));  // the mode of gamma(6, 1)
  HrfParams late;
  late.peak_delay = 7.0;
  CHECK(peak_time(spm_hrf(0.1, late), 0.1) == Approx(6.0));
  HrfParams shifted;
  shifted.onset = 1.0;
  const auto s = spm_hrf(0.1, shifted);
  // A 1 s onset delays the kernel by 10 samples (before renormalisation of the truncated tail).
  const double scale = s[60] / ours[50];
  for (std::size_t k = 0; k + 10 < ours.size(); ++k) CHECK(s[k + 10] == Approx(ours[k] * scale).margin(1e-15));
  CHECK(spm_hrf(2.0).size() == 17);  // floor(32 / 2) + 1 samples at TR 2 s

  CHECK(config_error_message([] { spm_hrf(0.0); }) == "spm_hrf: dt must be a positive number, found 0");
  HrfParams flat;
  flat.ratio = 0.0;
  CHECK(config_error_message([&] { spm_hrf(0.1, flat); }) == "spm_hrf: ratio must be a non-zero number, found 0");
}

TEST_CASE("welch matches scipy.signal.welch", "[signal]") {
  const auto file = open_fixture();
  const auto x = read_vector(file, "welch/sine10/x");
  const auto f = read_vector(file, "welch/sine10/f");
  const auto pxx = read_vector(file, "welch/sine10/pxx");
  const auto spectrum = welch(x, 200.0, 256);
  // Same window, detrending, scaling and averaging; only the FFT differs (kissfft vs pocketfft):
  // measured 1.1e-15 relative per bin. 1e-10 relative stays far below any meaningful change.
  CHECK(max_abs_diff(spectrum.frequencies, f) == 0.0);
  REQUIRE(spectrum.power.size() == pxx.size());
  for (std::size_t k = 0; k < pxx.size(); ++k) CHECK(spectrum.power[k] == Approx(pxx[k]).epsilon(1e-10));
  const auto peak = std::max_element(spectrum.power.begin(), spectrum.power.end()) - spectrum.power.begin();
  CHECK(spectrum.frequencies[static_cast<std::size_t>(peak)] == Approx(10.0).margin(200.0 / 256));

  // Parseval for the density: the integral of a white noise PSD is its variance.
  const auto w = noise(20000, 4);
  const auto pw = welch(w, 100.0, 128);
  double integral = 0.0;
  for (double p : pw.power) integral += p * (100.0 / 128);
  CHECK(integral == Approx(1.0).epsilon(0.05));
  CHECK(config_error_message([&] { welch(x, 200.0, 256, WelchOptions{256, -1}); }) ==
        "welch: noverlap must be less than nperseg = 256, found 256");
}

TEST_CASE("pearson, mean_std and zscore", "[signal]") {
  const auto file = open_fixture();
  const auto a = read_vector(file, "pearson/a");
  const auto b = read_vector(file, "pearson/b");
  double r = 0.0;
  file.read("pearson/r", h5::Type::f64, &r);
  // Same centring and normalisation as scipy.stats.pearsonr; measured 4.4e-16 (2 ulp).
  CHECK(pearson(a, b) == Approx(r).epsilon(1e-13));
  CHECK(std::isnan(pearson({1, 1, 1}, {1, 2, 3})));
  CHECK(config_error_message([] { pearson({1, 2}, {1, 2, 3}); }) ==
        "pearson: x and y must have equal lengths, found 2 and 3");

  const std::vector<double> x{2, 4, 4, 4, 5, 5, 7, 9};
  const auto stats = mean_std(x);
  CHECK(stats.mean == Approx(5.0));
  CHECK(stats.std == Approx(2.0));
  CHECK(mean_std(x, 1).std == Approx(std::sqrt(32.0 / 7.0)));
  const auto z = zscore(x);
  CHECK(z.front() == Approx(-1.5));
  CHECK(mean_std(z).std == Approx(1.0));

  // Training-split statistics applied to another split.
  const MeanStd train{10.0, 2.0};
  CHECK(zscore({10, 12, 6}, train) == std::vector<double>{0.0, 1.0, -2.0});
  std::vector<float> values{10.0f, 14.0f};
  zscore_inplace(values.data(), 2, train);
  CHECK(values == std::vector<float>{0.0f, 2.0f});
  CHECK(config_error_message([] { zscore({1.0}, MeanStd{0.0, 0.0}); }) ==
        "zscore: expected a finite mean and a std > 0, found mean 0 and std 0");

  // Accumulating pieces equals the statistics of their concatenation.
  const auto p1 = noise(1000, 5), p2 = noise(37, 6);
  std::vector<double> both = p1;
  both.insert(both.end(), p2.begin(), p2.end());
  for (auto& v : both) v = v * 3.0 + 100.0;
  MeanStdAccumulator acc;
  acc.add(both.data(), 1000);
  const std::vector<float> tail(both.begin() + 1000, both.end());
  acc.add(tail.data(), 37);
  const auto whole = mean_std(both);
  CHECK(acc.count() == 1037);
  CHECK(acc.result().mean == Approx(whole.mean).epsilon(1e-7));  // the float piece rounds to ~1e-7
  CHECK(acc.result().std == Approx(whole.std).epsilon(1e-6));
  CHECK(config_error_message([] { mean_std({1.0}, 1); }) == "mean_std: expected more than ddof = 1 samples, found 1");
}

TEST_CASE("detrend_linear and regress_out leave least-squares residuals", "[signal]") {
  const std::size_t n = 300;
  const auto e = noise(n, 7);
  std::vector<double> line(n), y(n), motion(n), drift(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i);
    line[i] = 3.0 - 0.02 * t;
    motion[i] = std::sin(t / 7.0);
    drift[i] = std::cos(t / 50.0);
  }
  // A pure line is removed to rounding (values up to 6: 1e-12 absolute).
  CHECK(max_abs(detrend_linear(line)) < 1e-12);
  // Residuals are orthogonal to every regressor (least-squares normal equations).
  const auto d = detrend_linear(e);
  double dot1 = 0.0, dott = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    dot1 += d[i];
    dott += d[i] * static_cast<double>(i);
  }
  CHECK(std::abs(dot1) < 1e-10);
  CHECK(std::abs(dott) < 1e-8);

  for (std::size_t i = 0; i < n; ++i) y[i] = line[i] + 2.0 * motion[i] - 0.5 * drift[i] + e[i];
  const auto r = regress_out(y, {motion, drift});
  // y minus its exactly modelled part leaves the residual of the noise alone.
  const auto r_noise = regress_out(e, {motion, drift});
  CHECK(max_abs_diff(r, r_noise) < 1e-12);
  for (const auto& column : {motion, drift}) {
    double dot = 0.0;
    for (std::size_t i = 0; i < n; ++i) dot += r[i] * column[i];
    CHECK(std::abs(dot) < 1e-10);
  }
  // Without confounds it is linear detrending; a collinear confound changes nothing.
  CHECK(max_abs_diff(regress_out(e, {}), detrend_linear(e)) < 1e-12);
  std::vector<double> doubled(motion);
  for (auto& v : doubled) v *= 2.0;
  CHECK(max_abs_diff(regress_out(y, {motion, drift, doubled}), r) < 1e-10);

  CHECK(config_error_message([&] { regress_out(y, {std::vector<double>(10, 0.0)}); }) ==
        "regress_out: confound 0 has 10 values; expected 300 (the series length)");
  CHECK(config_error_message([] { regress_out({1, 2, 3}, {{1, 2, 4}}); }) ==
        "regress_out: expected more samples than regressors (intercept, trend and 1 confounds = 3), found 3 samples");
}
