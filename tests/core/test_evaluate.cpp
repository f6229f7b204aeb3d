// Evaluation metrics, grouping and protocols, and reading predictions against a BIDS dataset.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "neurobolt/evaluate.hpp"

using namespace neurobolt;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

TEST_CASE("ROI metrics equal a hand computation", "[evaluate]") {
  // Column 0: p = 1 2 3 4, t = 2 4 5 4. Means 2.5 and 3.75; deviations p: -1.5 -0.5 0.5 1.5,
  // t: -1.75 0.25 1.25 0.25. Sxy = 3.5, Sxx = 5, Syy = 4.75: r = 3.5 / sqrt(23.75) = 7 / sqrt(95).
  // SSE = 1 + 4 + 4 + 0 = 9: MSE = 2.25, R2 = 1 - 9 / 4.75 = -17/19.
  // Column 1: t = 2p + 1 exactly: r = 1; SSE = sum (p + 1)^2 = 4 + 9 + 16 + 25 = 54; t mean 6,
  // Syy = 4 * 5 = 20: MSE = 13.5, R2 = 1 - 54/20 = -1.7.
  const std::vector<float> predicted{1, 1, 2, 2, 3, 3, 4, 4};
  const std::vector<float> target{2, 3, 4, 5, 5, 7, 4, 9};
  const auto m = roi_metrics(predicted.data(), target.data(), 4, 2);
  REQUIRE(m.size() == 2);
  CHECK(m[0].n == 4);
  CHECK(m[0].r == Approx(7.0 / std::sqrt(95.0)).epsilon(1e-15));
  CHECK(m[0].mse == Approx(2.25).epsilon(1e-15));
  CHECK(m[0].r2 == Approx(-17.0 / 19.0).epsilon(1e-15));
  CHECK(m[0].note.empty());
  CHECK(m[1].r == 1.0);
  CHECK(m[1].mse == Approx(13.5).epsilon(1e-15));
  CHECK(m[1].r2 == Approx(-1.7).epsilon(1e-15));
  CHECK(mean_r(m) == Approx((7.0 / std::sqrt(95.0) + 1.0) / 2).epsilon(1e-15));
}

TEST_CASE("ROI metrics skip NaN rows per ROI and explain undefined r", "[evaluate]") {
  // Column 0 has a NaN prediction in row 1 and a NaN target in row 4: pairs are rows 0, 2, 3 with
  // p = 1 3 4 and t = 2 5 4 (means 8/3 and 11/3): Sxy = (-5/3)(-5/3) + (1/3)(4/3) + (4/3)(1/3)
  // = 33/9, Sxx = 42/9, Syy = 42/9: r = 33/42. SSE = 1 + 4 + 0 = 5: MSE 5/3, R2 = 1 - 5/(42/9).
  // Column 1 is constant in the target, column 2 constant in the prediction, column 3 has two
  // pairs only.
  const std::vector<float> predicted{
      1, 1, 5, 1,     //
      kNaN, 2, 5, 2,  //
      3, 3, 5, kNaN,  //
      4, 4, 5, kNaN,  //
      7, 5, 5, kNaN,
  };
  const std::vector<float> target{
      2, 7, 1, 1,  //
      4, 7, 2, 3,  //
      5, 7, 3, 4,  //
      4, 7, 4, 5,  //
      kNaN, 7, 5, kNaN,
  };
  const auto m = roi_metrics(predicted.data(), target.data(), 5, 4);
  REQUIRE(m.size() == 4);
  CHECK(m[0].n == 3);
  CHECK(m[0].r == Approx(33.0 / 42.0).epsilon(1e-14));
  CHECK(m[0].mse == Approx(5.0 / 3.0).epsilon(1e-15));
  CHECK(m[0].r2 == Approx(1.0 - 5.0 * 9.0 / 42.0).epsilon(1e-14));

  CHECK(m[1].n == 5);
  CHECK(std::isnan(m[1].r));
  CHECK(m[1].note == "constant target");
  CHECK(std::isnan(m[1].r2));  // SST = 0
  CHECK(m[1].mse == Approx((36 + 25 + 16 + 9 + 4) / 5.0).epsilon(1e-15));

  CHECK(std::isnan(m[2].r));
  CHECK(m[2].note == "constant prediction");
  // t = 1..5 (mean 3, SST 10), p = 5: SSE = 16 + 9 + 4 + 1 + 0 = 30: R2 = 1 - 3.
  CHECK(m[2].r2 == Approx(-2.0).epsilon(1e-15));

  CHECK(m[3].n == 2);
  CHECK(std::isnan(m[3].r));
  CHECK(m[3].note == "fewer than 3 pairs");
  CHECK(m[3].mse == Approx(0.5).epsilon(1e-15));

  // The mean r over ROIs counts defined values only.
  CHECK(mean_r(m) == Approx(33.0 / 42.0).epsilon(1e-14));
  CHECK(std::isnan(mean_r({m[1], m[2]})));
}

TEST_CASE("ROI metrics accumulate in double", "[evaluate]") {
  // A large offset with small, exactly known fluctuations: float sums of squares would lose them.
  const int64_t rows = 100000;
  std::vector<float> predicted(rows), target(rows);
  for (int64_t i = 0; i < rows; ++i) {
    const float s = (i % 2 == 0) ? 1.0f : -1.0f;
    predicted[i] = 1000.0f + s;
    target[i] = 1000.0f + 0.5f * s;
  }
  const auto m = roi_metrics(predicted.data(), target.data(), rows, 1);
  CHECK(m[0].r == Approx(1.0).epsilon(1e-12));
  CHECK(m[0].mse == Approx(0.25).epsilon(1e-12));
  CHECK(m[0].r2 == Approx(0.0).margin(1e-12));  // SSE = SST = 0.25 n
}
