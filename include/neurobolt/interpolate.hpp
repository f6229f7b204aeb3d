#pragma once
// Spherical-spline interpolation of EEG channels (Perrin, Pernier, Bertrand & Echallier 1989,
// "Spherical splines for scalp potential and current density mapping"), computed as MNE-Python
// 1.3's `raw.interpolate_bads(origin=(0, 0, 0.04))` does for EEG channels:
//  * positions are taken relative to the sphere's origin and projected onto the unit sphere;
//  * g(cos) = sum_{n=1..50} (2n + 1) / (n^4 (n + 1)^4 4 pi) P_n(cos)  (stiffness m = 4, Legendre
//    polynomials P_n), G[i][j] = g(cos angle(from_i, from_j)) + alpha [i == j] with alpha = 1e-5;
//  * C = [[G, 1], [1^T, 0]]; weights = [g(cos angle(to_k, from_j)), 1] @ pinv(C)[:, :-1], so that
//    weights @ (signals at `from`) estimates the signals at `to`. Rows of weights sum to 1.
// Checked against MNE's matrices and signals on a real 64-channel recording
// (tests/core/test_interpolate.cpp, ../shared/fixtures/mne_interp).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "neurobolt/montage.hpp"

namespace neurobolt {

struct SphericalSplineOptions {
  int stiffness = 4;        // m: higher is smoother
  int legendre_terms = 50;  // terms n = 1..legendre_terms of the series
  double alpha = 1e-5;      // added to G's diagonal (regularisation)
};

// The interpolation matrix [to.size(), from.size()], row-major. Positions and `origin` in one
// frame and unit (any). ConfigError when `from` is empty or a position coincides with the origin.
std::vector<double> spherical_spline_matrix(const std::vector<ElectrodePosition>& from,
                                            const std::vector<ElectrodePosition>& to,
                                            const ElectrodePosition& origin = {},
                                            const SphericalSplineOptions& options = {});

// The position (mm) of a standard 10-05 electrode in MNE-Python's head frame: where MNE 1.3
// places it after `set_montage(make_standard_montage('standard_1005'))` (the template positions,
// moved into the head frame that fsaverage's fiducials define). The name is matched as
// Montage::find does; ConfigError naming it when the 10-05 system has no such electrode (the
// fiducials LPA, RPA and Nz are not electrodes).
ElectrodePosition standard_head_position(std::string_view name);

// The sphere centre MNE-Python uses for EEG interpolation by default: (0, 0, 0.04) m in the head
// frame, here in mm.
constexpr ElectrodePosition kInterpolationOrigin{0.0, 0.0, 40.0};

// Which standard electrodes are rebuilt, from which, with what weights.
struct ChannelInterpolation {
  std::vector<std::string> sources;  // channels read, as given
  std::vector<std::string> targets;  // channels rebuilt, as given
  std::vector<double> weights;       // [targets, sources], row-major

  double weight(int64_t target, int64_t source) const {
    return weights[static_cast<std::size_t>(target) * sources.size() + static_cast<std::size_t>(source)];
  }
  // The targets' signals [targets, n] from the sources' [sources, n] (channel-major), summed in
  // float64.
  std::vector<float> apply(const float* sources_data, int64_t num_samples) const;
};

// The spherical-spline interpolation of `targets` from `sources`, by their standard 10-05
// positions in MNE's head frame about kInterpolationOrigin (what MNE's interpolate_bads computes
// with standard_1005 positions). ConfigError naming a channel without a standard position, or
// when there are no sources.
ChannelInterpolation standard_interpolation(const std::vector<std::string>& sources,
                                            const std::vector<std::string>& targets,
                                            const SphericalSplineOptions& options = {});

// Whether `name` (after canonical_channel_name) is an electrode of the 10-05 system with a
// standard position; false for the fiducials and for non-electrode names ("ECG", "Status").
bool has_standard_position(std::string_view name);

}  // namespace neurobolt
