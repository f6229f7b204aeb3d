// Portable random streams and spectral synthesis of Gaussian noise.
#include <fmt/format.h>

#include <cmath>
#include <complex>
#include <unsupported/Eigen/FFT>

#include "neurobolt/error.hpp"
#include "sim/sim_internal.hpp"

namespace neurobolt::sim {

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t tag(const char* name) {
  // FNV-1a: a stable number for a component's name.
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const char* p = name; *p; ++p) h = (h ^ static_cast<unsigned char>(*p)) * 0x100000001b3ULL;
  return h;
}

Rng Rng::derive(uint64_t seed, std::initializer_list<uint64_t> path) {
  uint64_t state = mix64(seed);
  for (uint64_t part : path) state = mix64(state ^ mix64(part + 0x632be59bd9b4e019ULL));
  return Rng(state);
}

double Rng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = 1.0 - uniform();  // (0, 1]
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * M_PI * u2;
  spare_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

double Rng::exponential(double mean) { return -mean * std::log(1.0 - uniform()); }

int64_t fft_size(int64_t n) {
  auto smooth = [](int64_t m) {
    for (int64_t p : {2, 3, 5})
      while (m % p == 0) m /= p;
    return m == 1;
  };
  int64_t m = std::max<int64_t>(4, (n + 3) / 4 * 4);
  while (!smooth(m)) m += 4;
  return m;
}

struct SpectralSynth::Impl {
  Eigen::FFT<double> fft;
  std::vector<std::complex<double>> spectrum;
  std::vector<double> time;
};

SpectralSynth::SpectralSynth() : impl_(std::make_unique<Impl>()) {}
SpectralSynth::~SpectralSynth() = default;

std::vector<double> SpectralSynth::noise(int64_t n, double rate, const std::function<double(double)>& psd, Rng& rng) {
  if (n < 1) throw Error(ErrorKind::internal, fmt::format("spectral synthesis of {} samples", n));
  const int64_t nfft = fft_size(n);
  const int64_t bins = nfft / 2 + 1;
  auto& spectrum = impl_->spectrum;
  spectrum.assign(static_cast<std::size_t>(bins), {0.0, 0.0});
  bool any = false;
  for (int64_t k = 1; k < bins; ++k) {
    const double p = psd(static_cast<double>(k) * rate / static_cast<double>(nfft));
    if (!(p > 0.0)) continue;
    const double a = std::sqrt(p);
    const double re = rng.normal(), im = rng.normal();
    spectrum[static_cast<std::size_t>(k)] = {a * re, k == bins - 1 ? 0.0 : a * im};
    any = true;
  }
  std::vector<double> out(static_cast<std::size_t>(n), 0.0);
  if (!any) return out;
  impl_->time.resize(static_cast<std::size_t>(nfft));
  impl_->fft.inv(impl_->time.data(), spectrum.data(), nfft);
  double mean = 0.0;
  for (int64_t i = 0; i < n; ++i) mean += impl_->time[static_cast<std::size_t>(i)];
  mean /= static_cast<double>(n);
  double power = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = impl_->time[static_cast<std::size_t>(i)] - mean;
    out[static_cast<std::size_t>(i)] = v;
    power += v * v;
  }
  const double rms = std::sqrt(power / static_cast<double>(n));
  if (rms > 0.0)
    for (auto& v : out) v /= rms;
  return out;
}

}  // namespace neurobolt::sim
