#pragma once
// Building blocks of the simulator: portable random streams, spectral synthesis of Gaussian
// noise, and the spherical head model.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "neurobolt/montage.hpp"
#include "neurobolt/simulate.hpp"

namespace neurobolt::sim {

// ---------------------------------------------------------------------------------------------
// Random streams

// SplitMix64's finaliser: mixes a 64-bit value (Steele, Lea & Flood 2014).
uint64_t mix64(uint64_t x);

// A stream seeded from a root seed and a path of tags, e.g. (seed, "run", subject, session, run),
// so that every component draws from its own stream whatever else is simulated. Uniforms and
// normals are computed here from the engine's bits (std::normal_distribution is not specified
// bit-for-bit across standard libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  static Rng derive(uint64_t seed, std::initializer_list<uint64_t> path);

  double uniform();  // [0, 1)
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  double normal();  // standard normal (Box-Muller; both values used)
  // Exponential with the given mean (Poisson process intervals).
  double exponential(double mean);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// A tag for Rng::derive from a short name.
uint64_t tag(const char* name);

// ---------------------------------------------------------------------------------------------
// Spectral synthesis

// Gaussian noise of `n` samples at `rate` Hz whose power spectral density is proportional to
// psd(f): random complex Fourier coefficients with variance psd(f) on the bins of an FFT length
// >= n with small prime factors, one inverse real FFT, the first n samples kept. Bins where psd
// is 0 draw nothing. The result has zero mean and unit RMS (normalised over the n samples); all
// zeros if psd vanishes everywhere.
class SpectralSynth {
 public:
  SpectralSynth();
  ~SpectralSynth();
  SpectralSynth(const SpectralSynth&) = delete;
  SpectralSynth& operator=(const SpectralSynth&) = delete;

  std::vector<double> noise(int64_t n, double rate, const std::function<double(double)>& psd, Rng& rng);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The smallest m >= n, m a multiple of 4, with no prime factors other than 2, 3 and 5.
int64_t fft_size(int64_t n);

// ---------------------------------------------------------------------------------------------
// Head model

// The concentric-sphere head: centre and scalp radius fitted (least squares) to the standard
// 10-20 template electrodes (fiducials left out), shells from HeadModel.
struct HeadSphere {
  std::array<double, 3> center{};  // mm, template head coordinates
  double radius = 0.0;             // mm, scalp
  std::vector<double> radii;       // mm, innermost first
  std::vector<double> conductivities;
  // The series coefficients f_n (n = 1..) relative to a homogeneous sphere with the scalp's
  // conductivity (de Munck 1988; Zhang 1995); all 1 for a single shell.
  std::vector<double> coefficients;

  double brain_radius() const { return radii.front(); }
  // A template position (mm) projected radially onto the scalp sphere.
  std::array<double, 3> on_scalp(const ElectrodePosition& p) const;
};

HeadSphere make_head_sphere(const HeadModel& model);

// Potential (V) at scalp point `electrode` (m, relative to the centre, on the outer sphere) of a
// current dipole `moment` (A m) at `dipole` (m, relative to the centre, inside the innermost
// shell), by the series solution
//   V = 1/(4 pi sigma_N R^2) sum_n f_n (2n+1)/n (b/R)^(n-1) [n (q.r0) P_n(cos g) + (q.t) P_n^1(cos g)]
// with b = |dipole|, r0 = dipole/b, g the angle between dipole and electrode, t the unit vector
// orthogonal to r0 in the plane of r0 and the electrode, pointing towards the electrode, and
// P_n^1 = sqrt(1 - x^2) P_n'(x). Terms are summed until (b/R)^(n-1) < 1e-13.
double sphere_potential(const HeadSphere& head, const std::array<double, 3>& dipole,
                        const std::array<double, 3>& moment, const std::array<double, 3>& electrode);

// The closed form for a homogeneous sphere of conductivity sigma (Frank 1952; Brody, Terry &
// Ideker 1973; as in Mosher, Leahy & Lewis 1999 and MNE-Python's _eeg_spherepot_coil with one
// equivalent dipole), for checking the series.
double homogeneous_sphere_potential(double sigma, const std::array<double, 3>& dipole,
                                    const std::array<double, 3>& moment, const std::array<double, 3>& electrode);

// The unit vector from the head centre towards a template position.
std::array<double, 3> radial_direction(const HeadSphere& head, const ElectrodePosition& p);

// Channel names that are not electrodes of the montage: ECG (names containing ECG or EKG) and
// EOG (names containing EOG), any case.
bool is_ecg_name(const std::string& name);
bool is_eog_name(const std::string& name);
// The EDF+ label (and BIDS channel name) of a configured channel: EEG electrodes as they are,
// ECG/EOG channels with their type word in front ("ECG" -> "ECG ECG", "VEOG" -> "EOG VEOG")
// unless they already start with it ("ECG II").
std::string edf_label(const std::string& name);

}  // namespace neurobolt::sim
