// Butterworth design and zero-phase IIR filtering, following scipy.signal step by step (butter ->
// iirfilter -> buttap, lp2*_zpk, bilinear_zpk, zpk2tf, zpk2sos; filtfilt, sosfiltfilt with
// lfilter_zi/sosfilt_zi). The order of the poles and zeros and the pairing rules are scipy's, so
// that coefficients agree to rounding, not just in response.
#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <numeric>

#include "neurobolt/error.hpp"
#include "neurobolt/signal.hpp"

namespace neurobolt::signal {
namespace {

using Complex = std::complex<double>;

struct Zpk {
  std::vector<Complex> z;
  std::vector<Complex> p;
  double k = 1.0;
};

// numpy's complex division (Smith's algorithm), so that rounding matches scipy's.
Complex divide(Complex n, Complex d) {
  const double dr = d.real(), di = d.imag(), nr = n.real(), ni = n.imag();
  if (std::abs(dr) >= std::abs(di)) {
    const double rat = di / dr;
    const double scl = 1.0 / (dr + di * rat);
    return {(nr + ni * rat) * scl, (ni - nr * rat) * scl};
  }
  const double rat = dr / di;
  const double scl = 1.0 / (di + dr * rat);
  return {(nr * rat + ni) * scl, (ni * rat - nr) * scl};
}

Complex product(const std::vector<Complex>& values, double offset, double sign) {
  Complex result(1.0, 0.0);
  for (const auto& v : values) result *= Complex(offset, 0.0) + sign * v;
  return result;
}

// Analog Butterworth prototype with cutoff 1 rad/s (scipy.signal.buttap).
Zpk buttap(int order) {
  Zpk zpk;
  for (int m = -order + 1; m < order; m += 2) {
    const double theta = (M_PI * m) / (2.0 * order);
    zpk.p.emplace_back(-std::cos(theta), -std::sin(theta));
  }
  return zpk;
}

int relative_degree(const Zpk& zpk) { return static_cast<int>(zpk.p.size() - zpk.z.size()); }

Zpk lp2lp(const Zpk& in, double wo) {
  Zpk out;
  for (const auto& z : in.z) out.z.push_back(z * wo);
  for (const auto& p : in.p) out.p.push_back(p * wo);
  out.k = in.k * std::pow(wo, relative_degree(in));
  return out;
}

Zpk lp2hp(const Zpk& in, double wo) {
  Zpk out;
  for (const auto& z : in.z) out.z.push_back(divide(wo, z));
  for (const auto& p : in.p) out.p.push_back(divide(wo, p));
  out.z.insert(out.z.end(), static_cast<std::size_t>(relative_degree(in)), Complex(0.0, 0.0));
  out.k = in.k * divide(product(in.z, 0.0, -1.0), product(in.p, 0.0, -1.0)).real();
  return out;
}

// Each root r becomes the pair r' +- sqrt(r'^2 - wo^2), all "+" roots first.
std::vector<Complex> shift_to_band(const std::vector<Complex>& roots, double wo) {
  std::vector<Complex> out;
  for (const auto& r : roots) out.push_back(r + std::sqrt(r * r - wo * wo));
  for (const auto& r : roots) out.push_back(r - std::sqrt(r * r - wo * wo));
  return out;
}

Zpk lp2bp(const Zpk& in, double wo, double bw) {
  std::vector<Complex> z, p;
  for (const auto& r : in.z) z.push_back(r * bw / 2.0);
  for (const auto& r : in.p) p.push_back(r * bw / 2.0);
  Zpk out;
  out.z = shift_to_band(z, wo);
  out.p = shift_to_band(p, wo);
  out.z.insert(out.z.end(), static_cast<std::size_t>(relative_degree(in)), Complex(0.0, 0.0));
  out.k = in.k * std::pow(bw, relative_degree(in));
  return out;
}

Zpk lp2bs(const Zpk& in, double wo, double bw) {
  std::vector<Complex> z, p;
  for (const auto& r : in.z) z.push_back(divide(bw / 2.0, r));
  for (const auto& r : in.p) p.push_back(divide(bw / 2.0, r));
  Zpk out;
  out.z = shift_to_band(z, wo);
  out.p = shift_to_band(p, wo);
  const auto degree = static_cast<std::size_t>(relative_degree(in));
  out.z.insert(out.z.end(), degree, Complex(0.0, wo));
  out.z.insert(out.z.end(), degree, Complex(0.0, -wo));
  out.k = in.k * divide(product(in.z, 0.0, -1.0), product(in.p, 0.0, -1.0)).real();
  return out;
}

Zpk bilinear(const Zpk& in, double fs) {
  const double fs2 = 2.0 * fs;
  Zpk out;
  for (const auto& z : in.z) out.z.push_back(divide(fs2 + z, fs2 - z));
  for (const auto& p : in.p) out.p.push_back(divide(fs2 + p, fs2 - p));
  out.z.insert(out.z.end(), static_cast<std::size_t>(relative_degree(in)), Complex(-1.0, 0.0));
  out.k = in.k * divide(product(in.z, fs2, -1.0), product(in.p, fs2, -1.0)).real();
  return out;
}

// numpy.poly: coefficients of prod(x - r), highest power first; the real part, as the roots
// come in conjugate pairs.
std::vector<double> poly(const std::vector<Complex>& roots) {
  std::vector<Complex> c{Complex(1.0, 0.0)};
  for (const auto& r : roots) {
    std::vector<Complex> next(c.size() + 1);
    next[0] = c[0];
    for (std::size_t j = 1; j < c.size(); ++j) next[j] = c[j] + c[j - 1] * (-r);
    next[c.size()] = c.back() * (-r);
    c = std::move(next);
  }
  std::vector<double> out(c.size());
  std::transform(c.begin(), c.end(), out.begin(), [](Complex v) { return v.real(); });
  return out;
}

bool is_real(Complex v) { return v.imag() == 0.0; }

// scipy's _cplxreal: the complex roots (one per conjugate pair, positive imaginary part, pairs
// averaged) sorted by real part then |imag|, followed by the real roots sorted by value.
std::vector<Complex> complex_then_real(std::vector<Complex> z) {
  const double tol = 100.0 * std::numeric_limits<double>::epsilon();
  std::stable_sort(z.begin(), z.end(), [](Complex a, Complex b) {
    if (a.real() != b.real()) return a.real() < b.real();
    return std::abs(a.imag()) < std::abs(b.imag());
  });
  std::vector<Complex> reals, positive, negative;
  for (const auto& v : z) {
    if (std::abs(v.imag()) <= tol * std::abs(v))
      reals.emplace_back(v.real(), 0.0);
    else
      (v.imag() > 0 ? positive : negative).push_back(v);
  }
  if (positive.size() != negative.size())
    throw Error(ErrorKind::internal, "zpk2sos: a complex root has no conjugate");
  // Runs of (nearly) equal real part are ordered by |imag| within each half.
  auto by_imag = [](Complex a, Complex b) { return std::abs(a.imag()) < std::abs(b.imag()); };
  std::size_t start = 0;
  while (start < positive.size()) {
    std::size_t stop = start;
    while (stop + 1 < positive.size() &&
           positive[stop + 1].real() - positive[stop].real() <= tol * std::abs(positive[stop]))
      ++stop;
    if (stop > start) {
      std::stable_sort(positive.begin() + static_cast<std::ptrdiff_t>(start),
                       positive.begin() + static_cast<std::ptrdiff_t>(stop + 1), by_imag);
      std::stable_sort(negative.begin() + static_cast<std::ptrdiff_t>(start),
                       negative.begin() + static_cast<std::ptrdiff_t>(stop + 1), by_imag);
    }
    start = stop + 1;
  }
  std::vector<Complex> out;
  for (std::size_t i = 0; i < positive.size(); ++i) {
    if (std::abs(positive[i] - std::conj(negative[i])) > tol * std::abs(negative[i]))
      throw Error(ErrorKind::internal, "zpk2sos: a complex root has no conjugate");
    out.push_back((positive[i] + std::conj(negative[i])) / 2.0);
  }
  out.insert(out.end(), reals.begin(), reals.end());
  return out;
}

enum class Kind { real, complex, any };

// scipy's _nearest_real_complex_idx: the closest element of `from` to `to` of the given kind.
std::size_t nearest(const std::vector<Complex>& from, Complex to, Kind kind) {
  std::vector<std::size_t> order(from.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return std::abs(from[a] - to) < std::abs(from[b] - to); });
  for (auto i : order)
    if (kind == Kind::any || (kind == Kind::real) == is_real(from[i])) return i;
  throw Error(ErrorKind::internal, "zpk2sos: no zero of the required kind left");
}

// The pole closest to the unit circle.
std::size_t worst_pole(const std::vector<Complex>& p) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < p.size(); ++i)
    if (std::abs(1.0 - std::abs(p[i])) < std::abs(1.0 - std::abs(p[best]))) best = i;
  return best;
}

Complex take(std::vector<Complex>& v, std::size_t i) {
  Complex value = v[i];
  v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
  return value;
}

std::size_t count_real(const std::vector<Complex>& v) {
  return static_cast<std::size_t>(std::count_if(v.begin(), v.end(), is_real));
}

Section single_section(const std::vector<Complex>& z, const std::vector<Complex>& p) {
  Section s{};
  const auto b = poly(z);
  const auto a = poly(p);
  std::copy(b.begin(), b.end(), s.begin() + static_cast<std::ptrdiff_t>(3 - b.size()));
  std::copy(a.begin(), a.end(), s.begin() + static_cast<std::ptrdiff_t>(6 - a.size()));
  return s;
}

// scipy.signal.zpk2sos(z, p, k, pairing='nearest') for a digital filter: poles closest to the
// unit circle go to the last sections, each paired with its nearest zeros.
std::vector<Section> zpk2sos(Zpk zpk) {
  auto& z = zpk.z;
  auto& p = zpk.p;
  if (z.empty() && p.empty()) return {Section{zpk.k, 0.0, 0.0, 1.0, 0.0, 0.0}};
  if (z.size() < p.size()) z.insert(z.end(), p.size() - z.size(), Complex(0.0, 0.0));
  if (p.size() < z.size()) p.insert(p.end(), z.size() - p.size(), Complex(0.0, 0.0));
  const std::size_t n_sections = (p.size() + 1) / 2;
  if (p.size() % 2 == 1) {
    p.emplace_back(0.0, 0.0);
    z.emplace_back(0.0, 0.0);
  }
  z = complex_then_real(z);
  p = complex_then_real(p);

  std::vector<Section> sos(n_sections);
  for (std::size_t si = n_sections; si-- > 0;) {
    const Complex p1 = take(p, worst_pole(p));
    if (is_real(p1) && count_real(p) == 0) {
      // The last real pole: a first-order section with the nearest real zero.
      const Complex z1 = take(z, nearest(z, p1, Kind::real));
      sos[si] = single_section({z1, 0.0}, {p1, 0.0});
    } else if (p.size() + 1 == z.size() && !is_real(p1) && count_real(p) == 1 && count_real(z) == 1) {
      // One real pole and one real zero remain for later: this pole must take a complex zero.
      const Complex z1 = take(z, nearest(z, p1, Kind::complex));
      sos[si] = single_section({z1, std::conj(z1)}, {p1, std::conj(p1)});
    } else {
      Complex p2;
      if (is_real(p1)) {
        std::vector<std::size_t> real_index;
        std::vector<Complex> real_poles;
        for (std::size_t i = 0; i < p.size(); ++i)
          if (is_real(p[i])) {
            real_index.push_back(i);
            real_poles.push_back(p[i]);
          }
        p2 = take(p, real_index[worst_pole(real_poles)]);
      } else {
        p2 = std::conj(p1);
      }
      if (z.empty()) {
        sos[si] = single_section({}, {p1, p2});
        continue;
      }
      const Complex z1 = take(z, nearest(z, p1, Kind::any));
      if (!is_real(z1)) {
        sos[si] = single_section({z1, std::conj(z1)}, {p1, p2});
      } else if (!z.empty()) {
        const Complex z2 = take(z, nearest(z, p1, Kind::real));
        sos[si] = single_section({z1, z2}, {p1, p2});
      } else {
        sos[si] = single_section({z1}, {p1, p2});
      }
    }
  }
  for (int i = 0; i < 3; ++i) sos[0][static_cast<std::size_t>(i)] *= zpk.k;
  return sos;
}

void require_positive_rate(const char* function, double sample_rate) {
  if (!std::isfinite(sample_rate) || sample_rate <= 0.0)
    throw ConfigError(fmt::format("{}: sample_rate must be a positive number of Hz, found {}", function, sample_rate));
}

// Direct form II transposed, in place, as scipy's lfilter: b and a of equal length n with
// a[0] == 1; `state` holds the n-1 delays and is updated.
void lfilter_inplace(const std::vector<double>& b, const std::vector<double>& a, std::vector<double>& state,
                     std::vector<double>& x) {
  const std::size_t n = b.size();
  if (n == 1) {
    for (auto& v : x) v *= b[0];
    return;
  }
  for (auto& v : x) {
    const double xn = v;
    const double yn = state[0] + b[0] * xn;
    for (std::size_t k = 0; k + 2 < n; ++k) state[k] = state[k + 1] + xn * b[k + 1] - yn * a[k + 1];
    state[n - 2] = xn * b[n - 1] - yn * a[n - 1];
    v = yn;
  }
}

// Steady-state delays of lfilter for a unit step (scipy.signal.lfilter_zi), b and a of equal
// length with a[0] == 1: the solution of (I - companion(a)^T) zi = b[1:] - a[1:] b[0], solved
// by LU as scipy 1.10 does (its sosfiltfilt outputs are then reproduced bit for bit). The
// system's determinant is sum(a).
std::vector<double> lfilter_zi(const char* function, const std::vector<double>& b, const std::vector<double>& a) {
  if (std::accumulate(a.begin(), a.end(), 0.0) == 0.0)
    throw ConfigError(fmt::format("{}: sum(a) is 0 (a pole at z = 1): the filter has no steady state", function));
  const auto m = static_cast<Eigen::Index>(b.size()) - 1;
  if (m == 0) return {};
  Eigen::MatrixXd system = Eigen::MatrixXd::Identity(m, m);
  Eigen::VectorXd rhs(m);
  for (Eigen::Index i = 0; i < m; ++i) {
    system(i, 0) += a[static_cast<std::size_t>(i) + 1];
    if (i + 1 < m) system(i, i + 1) -= 1.0;
    rhs(i) = b[static_cast<std::size_t>(i) + 1] - a[static_cast<std::size_t>(i) + 1] * b[0];
  }
  const Eigen::VectorXd zi = system.partialPivLu().solve(rhs);
  return {zi.data(), zi.data() + zi.size()};
}

// scipy's odd_ext: 2*x[0] - x[pad..1] before, 2*x[-1] - x[-2..-pad-1] after.
std::vector<double> odd_extension(const std::vector<double>& x, std::size_t pad) {
  const std::size_t n = x.size();
  std::vector<double> ext;
  ext.reserve(n + 2 * pad);
  for (std::size_t i = pad; i >= 1; --i) ext.push_back(2.0 * x[0] - x[i]);
  ext.insert(ext.end(), x.begin(), x.end());
  for (std::size_t i = 2; i <= pad + 1; ++i) ext.push_back(2.0 * x[n - 1] - x[n - i]);
  return ext;
}

void require_longer_than_padlen(const char* function, std::size_t n, int64_t padlen, const char* rule) {
  if (static_cast<int64_t>(n) <= padlen)
    throw ConfigError(fmt::format("{}: the input has {} samples; expected more than padlen = {} ({})", function, n,
                                  padlen, rule));
}

void sosfilt_inplace(const std::vector<Section>& sos, std::vector<std::array<double, 2>>& state,
                     std::vector<double>& x) {
  for (std::size_t s = 0; s < sos.size(); ++s) {
    const auto& c = sos[s];
    double z0 = state[s][0], z1 = state[s][1];
    for (auto& v : x) {
      const double xn = v;
      const double yn = c[0] * xn + z0;
      z0 = c[1] * xn - c[4] * yn + z1;
      z1 = c[2] * xn - c[5] * yn;
      v = yn;
    }
  }
}

}  // namespace

const char* to_string(FilterType type) {
  switch (type) {
    case FilterType::lowpass: return "lowpass";
    case FilterType::highpass: return "highpass";
    case FilterType::bandpass: return "bandpass";
    case FilterType::bandstop: return "bandstop";
  }
  return "unknown";
}

IirFilter butter(int order, double cutoff_hz, double sample_rate, FilterType type) {
  return butter(order, std::vector<double>{cutoff_hz}, sample_rate, type);
}

IirFilter butter(int order, const std::vector<double>& cutoff_hz, double sample_rate, FilterType type) {
  if (order < 1) throw ConfigError(fmt::format("butter: order must be >= 1, found {}", order));
  require_positive_rate("butter", sample_rate);
  const bool band = type == FilterType::bandpass || type == FilterType::bandstop;
  const std::size_t expected = band ? 2 : 1;
  if (cutoff_hz.size() != expected)
    throw ConfigError(fmt::format("butter: a {} filter needs {} cutoff frequenc{}, found {}", to_string(type), expected,
                                  expected == 1 ? "y" : "ies", cutoff_hz.size()));
  const double nyquist = sample_rate / 2.0;
  for (double f : cutoff_hz)
    if (!(f > 0.0 && f < nyquist))
      throw ConfigError(fmt::format(
          "butter: cutoff frequency must be > 0 and < the Nyquist frequency {} Hz (sample_rate {} Hz), found {} Hz",
          nyquist, sample_rate, f));
  if (band && !(cutoff_hz[0] < cutoff_hz[1]))
    throw ConfigError(fmt::format("butter: band edges must be increasing (low < high), found {} Hz and {} Hz",
                                  cutoff_hz[0], cutoff_hz[1]));

  // Pre-warp the normalised frequencies for the bilinear transform at fs = 2 (scipy's iirfilter).
  constexpr double fs = 2.0;
  std::vector<double> warped;
  for (double f : cutoff_hz) warped.push_back(2.0 * fs * std::tan(M_PI * (f / nyquist) / fs));

  Zpk zpk = buttap(order);
  switch (type) {
    case FilterType::lowpass: zpk = lp2lp(zpk, warped[0]); break;
    case FilterType::highpass: zpk = lp2hp(zpk, warped[0]); break;
    case FilterType::bandpass: zpk = lp2bp(zpk, std::sqrt(warped[0] * warped[1]), warped[1] - warped[0]); break;
    case FilterType::bandstop: zpk = lp2bs(zpk, std::sqrt(warped[0] * warped[1]), warped[1] - warped[0]); break;
  }
  zpk = bilinear(zpk, fs);

  IirFilter filter;
  filter.b = poly(zpk.z);
  for (auto& v : filter.b) v *= zpk.k;
  filter.a = poly(zpk.p);
  filter.sos = zpk2sos(zpk);
  return filter;
}

IirFilter iirnotch(double freq_hz, double quality, double sample_rate) {
  require_positive_rate("iirnotch", sample_rate);
  if (!(freq_hz > 0.0 && freq_hz < sample_rate / 2.0))
    throw ConfigError(fmt::format(
        "iirnotch: frequency must be > 0 and < the Nyquist frequency {} Hz (sample_rate {} Hz), found {} Hz",
        sample_rate / 2.0, sample_rate, freq_hz));
  if (!(quality > 0.0) || !std::isfinite(quality))
    throw ConfigError(fmt::format("iirnotch: quality factor must be > 0, found {}", quality));
  const double w0 = 2.0 * freq_hz / sample_rate;
  const double bw = w0 / quality * M_PI;
  const double beta = std::tan(bw / 2.0);
  const double gain = 1.0 / (1.0 + beta);
  const double cos_w0 = std::cos(w0 * M_PI);
  IirFilter filter;
  filter.b = {gain, gain * (-2.0 * cos_w0), gain};
  filter.a = {1.0, -2.0 * gain * cos_w0, 2.0 * gain - 1.0};
  filter.sos = {Section{filter.b[0], filter.b[1], filter.b[2], filter.a[0], filter.a[1], filter.a[2]}};
  return filter;
}

int64_t filtfilt_padlen(const std::vector<double>& b, const std::vector<double>& a) {
  return 3 * static_cast<int64_t>(std::max(a.size(), b.size()));
}

int64_t sosfiltfilt_padlen(const std::vector<Section>& sos) {
  const auto zero_b2 = std::count_if(sos.begin(), sos.end(), [](const Section& s) { return s[2] == 0.0; });
  const auto zero_a2 = std::count_if(sos.begin(), sos.end(), [](const Section& s) { return s[5] == 0.0; });
  const int64_t ntaps = 2 * static_cast<int64_t>(sos.size()) + 1 - std::min(zero_b2, zero_a2);
  return 3 * ntaps;
}

std::vector<double> filtfilt(const std::vector<double>& b_in, const std::vector<double>& a_in,
                             const std::vector<double>& x) {
  if (b_in.empty() || a_in.empty())
    throw ConfigError(fmt::format("filtfilt: b and a must be non-empty, found {} and {} coefficients", b_in.size(),
                                  a_in.size()));
  if (a_in[0] == 0.0) throw ConfigError("filtfilt: a[0] must be non-zero, found 0");
  const int64_t padlen = filtfilt_padlen(b_in, a_in);
  require_longer_than_padlen("filtfilt", x.size(), padlen, "3 * max(len(a), len(b))");

  const std::size_t n = std::max(a_in.size(), b_in.size());
  std::vector<double> b(n, 0.0), a(n, 0.0);
  for (std::size_t i = 0; i < b_in.size(); ++i) b[i] = b_in[i] / a_in[0];
  for (std::size_t i = 0; i < a_in.size(); ++i) a[i] = a_in[i] / a_in[0];
  const auto zi = lfilter_zi("filtfilt", b, a);

  auto y = odd_extension(x, static_cast<std::size_t>(padlen));
  std::vector<double> state(zi.size());
  const double x0 = y.front();
  std::transform(zi.begin(), zi.end(), state.begin(), [&](double v) { return v * x0; });
  lfilter_inplace(b, a, state, y);
  std::reverse(y.begin(), y.end());
  const double y0 = y.front();
  std::transform(zi.begin(), zi.end(), state.begin(), [&](double v) { return v * y0; });
  lfilter_inplace(b, a, state, y);
  std::reverse(y.begin(), y.end());
  return {y.begin() + padlen, y.end() - padlen};
}

std::vector<double> sosfiltfilt(const std::vector<Section>& sos, const std::vector<double>& x) {
  if (sos.empty()) throw ConfigError("sosfiltfilt: expected at least one second-order section, found none");
  for (std::size_t s = 0; s < sos.size(); ++s)
    if (sos[s][3] != 1.0)
      throw ConfigError(fmt::format("sosfiltfilt: section {} has a0 = {}; expected 1", s, sos[s][3]));
  const int64_t padlen = sosfiltfilt_padlen(sos);
  require_longer_than_padlen("sosfiltfilt", x.size(), padlen,
                             "3 * (2 * sections + 1 - min(sections with b2 == 0, sections with a2 == 0))");

  // sosfilt_zi: each section's lfilter_zi, scaled by the DC gain of the sections before it.
  std::vector<std::array<double, 2>> zi(sos.size());
  double scale = 1.0;
  for (std::size_t s = 0; s < sos.size(); ++s) {
    const std::vector<double> b{sos[s][0], sos[s][1], sos[s][2]};
    const std::vector<double> a{sos[s][3], sos[s][4], sos[s][5]};
    const auto section_zi = lfilter_zi("sosfiltfilt", b, a);
    zi[s] = {scale * section_zi[0], scale * section_zi[1]};
    scale *= (b[0] + b[1] + b[2]) / (a[0] + a[1] + a[2]);
  }

  auto y = odd_extension(x, static_cast<std::size_t>(padlen));
  auto scaled = [&](double by) {
    auto state = zi;
    for (auto& s : state) s = {s[0] * by, s[1] * by};
    return state;
  };
  auto state = scaled(y.front());
  sosfilt_inplace(sos, state, y);
  std::reverse(y.begin(), y.end());
  state = scaled(y.front());
  sosfilt_inplace(sos, state, y);
  std::reverse(y.begin(), y.end());
  return {y.begin() + padlen, y.end() - padlen};
}

}  // namespace neurobolt::signal
