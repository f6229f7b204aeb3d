// Spherical-spline interpolation (rules in include/neurobolt/interpolate.hpp).
#include "neurobolt/interpolate.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

#include "neurobolt/error.hpp"

namespace neurobolt {
namespace {

// Fiducials are landmarks of the head, not electrodes (MNE removes them from the montage's channels).
bool is_fiducial(const std::string& canonical) { return canonical == "LPA" || canonical == "RPA" || canonical == "Nz"; }

// The series' coefficients c[0..terms]: c[0] = 0, c[n] = (2n + 1) / (n^m (n + 1)^m 4 pi). The
// integer part of the denominator is exact in int64 for the sizes allowed.
std::vector<double> g_coefficients(const SphericalSplineOptions& o) {
  std::vector<double> c(static_cast<std::size_t>(o.legendre_terms) + 1, 0.0);
  for (int64_t n = 1; n <= o.legendre_terms; ++n) {
    int64_t denominator = 4;
    for (int k = 0; k < o.stiffness; ++k) denominator *= n * (n + 1);
    c[n] = static_cast<double>(2 * n + 1) / (static_cast<double>(denominator) * M_PI);
  }
  return c;
}

// sum_n c[n] P_n(x) by Clenshaw's recurrence for Legendre series (the order numpy's legval uses).
double legendre_series(const std::vector<double>& c, double x) {
  const auto len = static_cast<int64_t>(c.size());
  double c0 = c[len - 2];
  double c1 = c[len - 1];
  int64_t nd = len;
  for (int64_t i = 3; i <= len; ++i) {
    const double previous = c0;
    nd -= 1;
    const double d = static_cast<double>(nd);
    c0 = c[len - i] - (c1 * (d - 1)) / d;
    c1 = previous + (c1 * x * (2 * d - 1)) / d;
  }
  return c0 + c1 * x;
}

Eigen::MatrixX3d unit_vectors(const std::vector<ElectrodePosition>& positions, const ElectrodePosition& origin,
                              const char* what) {
  Eigen::MatrixX3d u(static_cast<Eigen::Index>(positions.size()), 3);
  for (std::size_t i = 0; i < positions.size(); ++i) {
    const double x = positions[i].x - origin.x, y = positions[i].y - origin.y, z = positions[i].z - origin.z;
    const double norm = std::sqrt(x * x + y * y + z * z);
    if (!(norm > 0) || !std::isfinite(norm)) {
      throw ConfigError(
          fmt::format("spherical spline: {} position {} ({}, {}, {}): expected a finite point away from "
                      "the sphere's origin ({}, {}, {})",
                      what, i, positions[i].x, positions[i].y, positions[i].z, origin.x, origin.y, origin.z));
    }
    u.row(static_cast<Eigen::Index>(i)) << x / norm, y / norm, z / norm;
  }
  return u;
}

// MNE 1.3 puts the standard_1005 template (its 'mri' frame) into the head frame with
// get_ras_to_neuromag_trans of fsaverage's fiducials (mne/data/fsaverage/fsaverage-fiducials.fif:
// LPA (-80.616, -29.089, -41.311), nasion (1.468, 85.067, -34.836), RPA (84.363, -28.503,
// -41.277) mm). The fiducials are float32 and numpy keeps that type, so the rotation was computed
// in float32: these are its rows exactly, and the translation (m) as MNE applies it. Rebuilding
// the transform in float64 would move electrodes by up to 6e-9 m.
constexpr double kHeadRotation[3][3] = {
    {0.99999368190765381, 0.0035518738441169262, 0.00020204810425639153},
    {-0.0035575686488300562, 0.99838912487030029, 0.056625857949256897},
    {-5.9473677538335323e-07, -0.056626219302415848, 0.99839544296264648},
};
constexpr double kHeadTranslation[3] = {-0.0017627249525299085, 0.031094350427794789, 0.039597249076132754};

// The head-frame position in metres, computed in MNE's order (mm -> m, rotate, translate).
ElectrodePosition head_position_m(std::string_view name) {
  const std::string canonical = canonical_channel_name(name);
  if (is_fiducial(canonical)) {
    throw ConfigError(fmt::format("'{}' is a fiducial, not an electrode: it has no position to interpolate", name));
  }
  const ElectrodePosition mm = electrode_position(name, StandardMontage::standard_1005);
  const double p[3] = {mm.x / 1000.0, mm.y / 1000.0, mm.z / 1000.0};
  double h[3];
  for (int r = 0; r < 3; ++r) {
    h[r] = p[0] * kHeadRotation[r][0] + p[1] * kHeadRotation[r][1] + p[2] * kHeadRotation[r][2] + kHeadTranslation[r];
  }
  return {h[0], h[1], h[2]};
}

}  // namespace

std::vector<double> spherical_spline_matrix(const std::vector<ElectrodePosition>& from,
                                            const std::vector<ElectrodePosition>& to, const ElectrodePosition& origin,
                                            const SphericalSplineOptions& options) {
  if (from.empty()) throw ConfigError("spherical spline: no source positions to interpolate from");
  if (options.stiffness < 1 || options.stiffness > 6) {
    throw ConfigError(fmt::format("spherical spline: stiffness must be 1 to 6, found {}", options.stiffness));
  }
  if (options.legendre_terms < 2 || options.legendre_terms > 200) {
    throw ConfigError(
        fmt::format("spherical spline: Legendre terms must be 2 to 200, found {}", options.legendre_terms));
  }
  if (!(options.alpha >= 0) || !std::isfinite(options.alpha)) {
    throw ConfigError(fmt::format("spherical spline: alpha must be >= 0, found {}", options.alpha));
  }
  const auto n_from = static_cast<Eigen::Index>(from.size());
  const auto n_to = static_cast<Eigen::Index>(to.size());
  const Eigen::MatrixX3d u_from = unit_vectors(from, origin, "source");
  const Eigen::MatrixX3d u_to = unit_vectors(to, origin, "target");
  const std::vector<double> coefficients = g_coefficients(options);

  // The bordered system C = [[G + alpha I, 1], [1^T, 0]] (symmetric).
  Eigen::MatrixXd c = Eigen::MatrixXd::Zero(n_from + 1, n_from + 1);
  for (Eigen::Index i = 0; i < n_from; ++i) {
    for (Eigen::Index j = 0; j < n_from; ++j) c(i, j) = legendre_series(coefficients, u_from.row(i).dot(u_from.row(j)));
    c(i, i) += options.alpha;
    c(i, n_from) = 1.0;
    c(n_from, i) = 1.0;
  }
  // pinv(C) as scipy.linalg.pinv defines it (singular values below max(shape) * eps * the largest
  // are dropped); C is symmetric, so its singular values are the magnitudes of its eigenvalues.
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(c);
  if (eig.info() != Eigen::Success) throw Error(ErrorKind::internal, "spherical spline: eigendecomposition failed");
  const Eigen::VectorXd& lambda = eig.eigenvalues();
  const double cutoff =
      static_cast<double>(n_from + 1) * std::numeric_limits<double>::epsilon() * lambda.cwiseAbs().maxCoeff();
  Eigen::VectorXd inverse(lambda.size());
  for (Eigen::Index k = 0; k < lambda.size(); ++k) inverse(k) = std::abs(lambda(k)) > cutoff ? 1.0 / lambda(k) : 0.0;
  const Eigen::MatrixXd& v = eig.eigenvectors();
  const Eigen::MatrixXd c_inverse = v * inverse.asDiagonal() * v.transpose();

  Eigen::MatrixXd g_to(n_to, n_from + 1);
  for (Eigen::Index k = 0; k < n_to; ++k) {
    for (Eigen::Index j = 0; j < n_from; ++j)
      g_to(k, j) = legendre_series(coefficients, u_to.row(k).dot(u_from.row(j)));
    g_to(k, n_from) = 1.0;
  }
  const Eigen::MatrixXd w = g_to * c_inverse.leftCols(n_from);
  std::vector<double> out(static_cast<std::size_t>(n_to * n_from));
  for (Eigen::Index k = 0; k < n_to; ++k)
    for (Eigen::Index j = 0; j < n_from; ++j) out[static_cast<std::size_t>(k * n_from + j)] = w(k, j);
  return out;
}

bool has_standard_position(std::string_view name) {
  const std::string canonical = canonical_channel_name(name);
  if (is_fiducial(canonical)) return false;
  return standard_montage(StandardMontage::standard_1005).find(canonical).has_value();
}

ElectrodePosition standard_head_position(std::string_view name) {
  const ElectrodePosition m = head_position_m(name);
  return {m.x * 1000.0, m.y * 1000.0, m.z * 1000.0};
}

std::vector<float> ChannelInterpolation::apply(const float* sources_data, int64_t num_samples) const {
  const auto S = static_cast<int64_t>(sources.size());
  const auto T = static_cast<int64_t>(targets.size());
  std::vector<float> out(static_cast<std::size_t>(T * num_samples));
  std::vector<double> sum(static_cast<std::size_t>(num_samples));
  for (int64_t t = 0; t < T; ++t) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int64_t s = 0; s < S; ++s) {
      const double w = weight(t, s);
      const float* x = sources_data + s * num_samples;
      for (int64_t i = 0; i < num_samples; ++i) sum[i] += w * x[i];
    }
    std::copy(sum.begin(), sum.end(), out.begin() + t * num_samples);
  }
  return out;
}

ChannelInterpolation standard_interpolation(const std::vector<std::string>& sources,
                                            const std::vector<std::string>& targets,
                                            const SphericalSplineOptions& options) {
  if (sources.empty()) {
    throw ConfigError(fmt::format("cannot interpolate {}: no channel to interpolate from", fmt::join(targets, ", ")));
  }
  // MNE's origin, (0, 0, 0.04) m, in the metres the positions are computed in.
  const ElectrodePosition origin{kInterpolationOrigin.x / 1000.0, kInterpolationOrigin.y / 1000.0,
                                 kInterpolationOrigin.z / 1000.0};
  auto positions = [](const std::vector<std::string>& names, const char* role) {
    std::vector<ElectrodePosition> out;
    for (const auto& name : names) {
      if (!has_standard_position(name)) {
        throw ConfigError(
            fmt::format("cannot interpolate with channel '{}' ({}): it has no position in the standard "
                        "10-05 system",
                        name, role));
      }
      out.push_back(head_position_m(name));
    }
    return out;
  };
  ChannelInterpolation result;
  result.sources = sources;
  result.targets = targets;
  result.weights =
      spherical_spline_matrix(positions(sources, "a source"), positions(targets, "a target"), origin, options);
  return result;
}

}  // namespace neurobolt
