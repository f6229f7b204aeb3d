#include <fmt/format.h>
#include <nifti2_io.h>

#include <catch2/catch.hpp>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>

#include "neurobolt/error.hpp"
#include "neurobolt/nifti.hpp"
#include "neurobolt/roi.hpp"
#include "test_support.hpp"

using Catch::Matchers::Contains;
using neurobolt::Atlas;
using neurobolt::ExtractionOptions;
using neurobolt::NiftiGrid;
using neurobolt::NiftiImage;

namespace {

std::string real_nifti(const std::string& name) {
  return (neurobolt::test::shared_dir() / "data/real/nifti" / name).string();
}

NiftiGrid small_grid(int64_t nx, int64_t ny, int64_t nz) {
  NiftiGrid grid;
  grid.dims = {nx, ny, nz};
  grid.voxel_size = {3.0, 3.0, 4.0};
  grid.affine = {{{-3.0, 0.0, 0.0, 30.0}, {0.0, 3.0, 0.0, -40.0}, {0.0, 0.0, 4.0, -10.0}}};
  grid.affine_source = "sform";
  return grid;
}

NiftiImage make_image(const NiftiGrid& grid, int64_t volumes, double tr) {
  NiftiImage image;
  image.grid = grid;
  image.num_volumes = volumes;
  image.repetition_time = tr;
  image.data.assign(static_cast<std::size_t>(grid.num_voxels() * volumes), 0.0f);
  return image;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// scipy.signal.detrend(type="linear") of one series: the residual of the least-squares line.
std::vector<double> detrended(const std::vector<double>& y) {
  const double n = static_cast<double>(y.size());
  double st = 0, sy = 0, stt = 0, sty = 0;
  for (std::size_t t = 0; t < y.size(); ++t) {
    st += t, sy += y[t], stt += double(t) * t, sty += t * y[t];
  }
  const double slope = (n * sty - st * sy) / (n * stt - st * st);
  const double intercept = (sy - slope * st) / n;
  std::vector<double> out(y.size());
  for (std::size_t t = 0; t < y.size(); ++t) out[t] = y[t] - intercept - slope * t;
  return out;
}

// Least squares by the normal equations and Gauss-Jordan elimination with partial pivoting
// (independent of the QR decomposition the library uses).
std::array<double, 4> least_squares(const std::vector<std::array<double, 4>>& x, const std::vector<double>& y) {
  double a[4][5] = {};
  for (std::size_t t = 0; t < x.size(); ++t)
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) a[i][j] += x[t][i] * x[t][j];
      a[i][4] += x[t][i] * y[t];
    }
  for (int c = 0; c < 4; ++c) {
    int pivot = c;
    for (int r = c + 1; r < 4; ++r)
      if (std::fabs(a[r][c]) > std::fabs(a[pivot][c])) pivot = r;
    for (int k = 0; k < 5; ++k) std::swap(a[c][k], a[pivot][k]);
    for (int r = 0; r < 4; ++r) {
      if (r == c) continue;
      const double f = a[r][c] / a[c][c];
      for (int k = 0; k < 5; ++k) a[r][k] -= f * a[c][k];
    }
  }
  return {a[0][4] / a[0][0], a[1][4] / a[1][1], a[2][4] / a[2][2], a[3][4] / a[3][3]};
}

struct NiftiFree {
  void operator()(nifti_image* nim) const { nifti_image_free(nim); }
};

}  // namespace

TEST_CASE("NIfTI: a written image reads back with its grid, repetition time and values", "[nifti]") {
  neurobolt::test::TempDir dir;
  auto image = make_image(small_grid(4, 3, 2), 5, 1.5);
  for (std::size_t i = 0; i < image.data.size(); ++i) image.data[i] = 0.5f * static_cast<float>(i);
  for (const char* name : {"a.nii", "a.nii.gz"}) {
    neurobolt::write_nifti((dir / name).string(), image);
    const auto back = neurobolt::read_nifti((dir / name).string());
    CHECK(back.grid.dims == image.grid.dims);
    CHECK(back.grid.same_as(image.grid, 1e-5));
    CHECK(back.grid.affine_source == "sform");
    CHECK(back.num_volumes == 5);
    CHECK(back.repetition_time == Approx(1.5));
    CHECK(back.data == image.data);
    CHECK(back.warnings.empty());
    const auto header = neurobolt::read_nifti((dir / name).string(), true);
    CHECK(header.data.empty());
    CHECK(header.num_volumes == 5);
  }
}

TEST_CASE("NIfTI: real files, TR units and the example4d millisecond quirk", "[nifti]") {
  const auto example = neurobolt::read_nifti(real_nifti("example4d.nii.gz"), true);
  CHECK(example.grid.dims == std::array<int64_t, 3>{128, 96, 24});
  CHECK(example.num_volumes == 2);
  CHECK(example.repetition_time == Approx(2.0));
  REQUIRE(example.warnings.size() == 1);
  CHECK_THAT(example.warnings[0],
             Contains("pixdim[4] = 2000 with time unit 's'") && Contains("read as milliseconds (2 s)"));

  const auto functional = neurobolt::read_nifti(real_nifti("functional.nii"), true);
  CHECK(functional.grid.dims == std::array<int64_t, 3>{17, 21, 3});
  CHECK(functional.num_volumes == 20);
  CHECK(functional.repetition_time == Approx(2.0));
  CHECK(functional.warnings.empty());

  const auto nifti2 = neurobolt::read_nifti(real_nifti("example_nifti2.nii.gz"));
  CHECK(nifti2.grid.dims == std::array<int64_t, 3>{32, 20, 12});
  CHECK(nifti2.data.size() == 32u * 20 * 12 * 2);

  const auto aicha = neurobolt::read_nifti(real_nifti("AICHAmc.nii.gz"), true);
  CHECK(aicha.grid.describe() == "91x109x91 voxels of 2x2x2 mm, sform [[-2 0 0 90] [0 2 0 -126] [0 0 2 -72]]");
}

TEST_CASE("NIfTI: missing, foreign and truncated files are refused", "[nifti]") {
  neurobolt::test::TempDir dir;
  CHECK_THROWS_AS(neurobolt::read_nifti((dir / "none.nii").string()), neurobolt::IoError);
  write_text((dir / "text.nii").string(), std::string(400, 'x'));
  CHECK_THROWS_AS(neurobolt::read_nifti((dir / "text.nii").string()), neurobolt::FormatError);
  CHECK_THROWS_WITH(neurobolt::read_nifti((dir / "text.nii").string()), Contains("not a readable NIfTI-1 or NIfTI-2"));

  auto image = make_image(small_grid(8, 8, 8), 4, 2.0);
  neurobolt::write_nifti((dir / "full.nii").string(), image);
  std::ifstream in((dir / "full.nii").string(), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // dim[0] beyond 7: nifticlib would copy past its 8-element arrays (fuzz_nifti, with NIfTI-2).
  std::string many = bytes;
  const int16_t thousand = 1000;
  REQUIRE(many.size() > 348);
  if (static_cast<unsigned char>(many[0]) == 92) std::memcpy(&many[40], &thousand, sizeof thousand);  // NIfTI-1, LE
  write_text((dir / "many.nii").string(), many);
  if (many != bytes)
    CHECK_THROWS_WITH(neurobolt::read_nifti((dir / "many.nii").string()),
                      Contains("many.nii' field dim[0]: expected 1 to 7 dimensions, found 1000"));
  write_text((dir / "cut.nii").string(), bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_WITH(neurobolt::read_nifti((dir / "cut.nii").string()),
                    Contains("cut.nii': truncated: the header promises 8192 bytes of voxel data"));
  neurobolt::write_nifti((dir / "full.nii.gz").string(), image);
  std::ifstream gz_in((dir / "full.nii.gz").string(), std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(gz_in)), std::istreambuf_iterator<char>());
  write_text((dir / "cut.nii.gz").string(), gz.substr(0, gz.size() - 40));
  CHECK_THROWS_AS(neurobolt::read_nifti((dir / "cut.nii.gz").string()), neurobolt::FormatError);
}

TEST_CASE("atlas label files: AAL, AICHA, BIDS look-up tables and plain names", "[nifti]") {
  const auto aal = neurobolt::read_atlas_labels(real_nifti("aal.nii.txt"));
  REQUIRE(aal.size() == 116);
  CHECK(aal.front() == std::make_pair(int64_t{1}, std::string("Precentral_L")));
  CHECK(aal.back() == std::make_pair(int64_t{116}, std::string("Vermis_10")));
  const auto aicha = neurobolt::read_atlas_labels(real_nifti("AICHAmc.nii.txt"));
  REQUIRE(aicha.size() == 192);
  CHECK(aicha.front() == std::make_pair(int64_t{1}, std::string("G_Frontal_Sup-1")));
  CHECK(aicha.back() == std::make_pair(int64_t{192}, std::string("N_Thalamus-9")));

  neurobolt::test::TempDir dir;
  write_text((dir / "names.txt").string(), "# Harvard-Oxford\n1 Frontal Pole\n2\tInsular Cortex\n\n3 V1 17\n");
  const auto names = neurobolt::read_atlas_labels((dir / "names.txt").string());
  REQUIRE(names.size() == 3);
  CHECK(names[0].second == "Frontal Pole");
  CHECK(names[1].second == "Insular Cortex");
  CHECK(names[2].second == "V1");
  write_text((dir / "dseg.tsv").string(), "index\tname\tcolor\n1\tLeft Thalamus\t#ff0000\n7\tRight\tn/a\n");
  const auto lut = neurobolt::read_atlas_labels((dir / "dseg.tsv").string());
  REQUIRE(lut.size() == 2);
  CHECK(lut[0] == std::make_pair(int64_t{1}, std::string("Left Thalamus")));
  CHECK(lut[1].first == 7);

  write_text((dir / "bad.txt").string(), "1 A\nB 2\n");
  CHECK_THROWS_WITH(neurobolt::read_atlas_labels((dir / "bad.txt").string()),
                    Contains("bad.txt' line 2: expected 'index name', found 'B 2'"));
  write_text((dir / "dup.txt").string(), "1 A\n1 B\n");
  CHECK_THROWS_WITH(neurobolt::read_atlas_labels((dir / "dup.txt").string()),
                    Contains("label index 1 appears more than once"));
  write_text((dir / "bad.tsv").string(), "index\tname\n1.5\tA\n");
  CHECK_THROWS_WITH(neurobolt::read_atlas_labels((dir / "bad.tsv").string()),
                    Contains("line 2, column 1 ('index'): expected an integer label index, found '1.5'"));
  write_text((dir / "empty.txt").string(), "\n# nothing\n");
  CHECK_THROWS_WITH(neurobolt::read_atlas_labels((dir / "empty.txt").string()), Contains("found none"));
}

TEST_CASE("ROI extraction with a label image equals a direct computation", "[nifti]") {
  neurobolt::test::TempDir dir;
  const auto grid = small_grid(5, 4, 3);
  const int64_t nvox = grid.num_voxels(), volumes = 12;
  auto bold = make_image(grid, volumes, 2.0);
  for (int64_t t = 0; t < volumes; ++t)
    for (int64_t v = 0; v < nvox; ++v)
      bold.data[t * nvox + v] = static_cast<float>(100 + v + 3.0 * std::sin(0.7 * t + v) + 0.25 * t);
  auto labels = make_image(grid, 1, 0.0);
  for (int64_t v = 0; v < nvox; ++v) labels.data[v] = static_cast<float>(v % 7 == 0 ? 0 : 1 + v % 3 + (v > 40 ? 3 : 0));
  neurobolt::write_nifti((dir / "bold.nii.gz").string(), bold);
  neurobolt::write_nifti((dir / "labels.nii").string(), labels);
  write_text((dir / "labels.txt").string(), "1 one 11\n2 two 12\n3 three 13\n4 four 14\n5 five 15\n9 nine 19\n");

  const Atlas atlas = neurobolt::read_atlas((dir / "labels.nii").string(), (dir / "labels.txt").string());
  CHECK_FALSE(atlas.probabilistic);
  REQUIRE(atlas.roi_names() == std::vector<std::string>{"one", "two", "three", "four", "five", "6"});
  REQUIRE(atlas.warnings.size() == 2);
  CHECK_THAT(atlas.warnings[0], Contains("1 labels have no name") && Contains(": 6"));
  CHECK_THAT(atlas.warnings[1], Contains("1 labels of") && Contains("9 'nine'"));

  const auto read_back = neurobolt::read_nifti((dir / "bold.nii.gz").string());
  ExtractionOptions raw;
  raw.detrend = false;
  const auto series = neurobolt::extract_roi_timeseries(read_back, atlas, raw);
  CHECK(series.source == "nifti");
  CHECK(series.num_volumes == volumes);
  CHECK(series.repetition_time == Approx(2.0));
  REQUIRE(series.num_rois() == 6);
  std::vector<std::vector<double>> expected(6, std::vector<double>(volumes, 0.0));
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t t = 0; t < volumes; ++t) {
      double sum = 0;
      int count = 0;
      for (int64_t v = 0; v < nvox; ++v)
        if (static_cast<int>(labels.data[v]) == r + 1) sum += bold.data[t * nvox + v], ++count;
      expected[r][t] = sum / count;
      CHECK(series.at(t, r) == Approx(expected[r][t]).epsilon(1e-12));
    }
  }
  const auto clean = neurobolt::extract_roi_timeseries(read_back, atlas);
  for (int64_t r = 0; r < 6; ++r) {
    const auto want = detrended(expected[r]);
    for (int64_t t = 0; t < volumes; ++t) CHECK(clean.at(t, r) == Approx(want[t]).margin(1e-9));
  }
}

TEST_CASE("ROI extraction with a 4-D probabilistic map is a weighted mean", "[nifti]") {
  neurobolt::test::TempDir dir;
  const auto grid = small_grid(4, 4, 2);
  const int64_t nvox = grid.num_voxels(), volumes = 6, rois = 3;
  auto bold = make_image(grid, volumes, 0.8);
  for (std::size_t i = 0; i < bold.data.size(); ++i) bold.data[i] = static_cast<float>(std::cos(0.1 * i) * 50 + 500);
  auto map = make_image(grid, rois, 0.0);
  for (int64_t r = 0; r < rois; ++r)
    for (int64_t v = 0; v < nvox; ++v) {
      const double w = std::max(0.0, std::sin(0.3 * v + r));  // zero (outside) for about half the voxels
      map.data[r * nvox + v] = static_cast<float>(w);
    }
  neurobolt::write_nifti((dir / "prob.nii").string(), map);
  write_text((dir / "prob.txt").string(), "0 Alpha\n1 Beta\n2 Gamma\n");
  const Atlas atlas = neurobolt::read_atlas((dir / "prob.nii").string(), (dir / "prob.txt").string());
  CHECK(atlas.probabilistic);
  CHECK(atlas.roi_names() == std::vector<std::string>{"Alpha", "Beta", "Gamma"});
  ExtractionOptions raw;
  raw.detrend = false;
  const auto series = neurobolt::extract_roi_timeseries(bold, atlas, raw);
  for (int64_t r = 0; r < rois; ++r)
    for (int64_t t = 0; t < volumes; ++t) {
      double sum = 0, total = 0;
      for (int64_t v = 0; v < nvox; ++v) {
        const double w = map.data[r * nvox + v];
        sum += w * bold.data[t * nvox + v], total += w;
      }
      CHECK(series.at(t, r) == Approx(sum / total).epsilon(1e-12));
    }

  write_text((dir / "wrong.txt").string(), "1 Alpha\n2 Beta\n");
  CHECK_THROWS_WITH(
      neurobolt::read_atlas((dir / "prob.nii").string(), (dir / "wrong.txt").string()),
      Contains("lists 2 labels with indices 1..2") && Contains("has 3 volumes, so expected indices 0..2 or 1..3"));
}

TEST_CASE("ROI extraction regresses out confounds with intercept and trend", "[nifti]") {
  neurobolt::test::TempDir dir;
  const auto grid = small_grid(3, 3, 2);
  const int64_t nvox = grid.num_voxels(), volumes = 40;
  std::vector<double> motion(volumes), csf(volumes);
  for (int64_t t = 0; t < volumes; ++t) {
    motion[t] = std::sin(0.37 * t) + 0.1 * t;
    csf[t] = std::cos(0.21 * t * t);
  }
  auto bold = make_image(grid, volumes, 2.0);
  for (int64_t t = 0; t < volumes; ++t)
    for (int64_t v = 0; v < nvox; ++v)
      bold.data[t * nvox + v] =
          static_cast<float>(800 + 2.0 * t + 5.0 * motion[t] * (v % 2) - 3.0 * csf[t] + 10.0 * std::sin(1.3 * t + v));
  auto labels = make_image(grid, 1, 0.0);
  for (int64_t v = 0; v < nvox; ++v) labels.data[v] = static_cast<float>(1 + v % 2);
  neurobolt::write_nifti((dir / "labels.nii").string(), labels);
  const Atlas atlas = neurobolt::read_atlas((dir / "labels.nii").string());
  CHECK(atlas.roi_names() == std::vector<std::string>{"1", "2"});

  // The first row of a derivative column is n/a in fMRIPrep's files: it becomes the column mean.
  std::string tsv = "trans_x\tcsf\tunused\n";
  for (int64_t t = 0; t < volumes; ++t)
    tsv += (t == 0 ? std::string("n/a") : fmt::format("{:.17g}", motion[t])) + "\t" + fmt::format("{:.17g}", csf[t]) +
           "\tx\n";
  write_text((dir / "confounds.tsv").string(), tsv);

  ExtractionOptions options;
  options.confound_columns = {"trans_x", "csf"};
  options.confounds_path = (dir / "confounds.tsv").string();
  const auto series = neurobolt::extract_roi_timeseries(bold, atlas, options);

  ExtractionOptions raw;
  raw.detrend = false;
  const auto means = neurobolt::extract_roi_timeseries(bold, atlas, raw);
  double motion_mean = 0;
  for (int64_t t = 1; t < volumes; ++t) motion_mean += motion[t] / (volumes - 1);
  std::vector<std::array<double, 4>> x(volumes);
  for (int64_t t = 0; t < volumes; ++t) x[t] = {1.0, double(t), t == 0 ? motion_mean : motion[t], csf[t]};
  for (int64_t r = 0; r < 2; ++r) {
    std::vector<double> y(volumes);
    for (int64_t t = 0; t < volumes; ++t) y[t] = means.at(t, r);
    const auto beta = least_squares(x, y);
    for (int64_t t = 0; t < volumes; ++t) {
      double fit = 0;
      for (int k = 0; k < 4; ++k) fit += x[t][k] * beta[k];
      CHECK(series.at(t, r) == Approx(y[t] - fit).margin(1e-6));
    }
  }

  options.confound_columns = {"trans_y"};
  CHECK_THROWS_WITH(neurobolt::extract_roi_timeseries(bold, atlas, options),
                    Contains("confounds.tsv' has no column 'trans_y'; it has trans_x, csf, unused"));
  options.confound_columns = {"unused"};
  CHECK_THROWS_WITH(neurobolt::extract_roi_timeseries(bold, atlas, options),
                    Contains("line 2, column 3 ('unused'): expected a finite number or n/a, found 'x'"));
  write_text((dir / "short.tsv").string(), "trans_x\n1\n2\n");
  options.confound_columns = {"trans_x"};
  options.confounds_path = (dir / "short.tsv").string();
  CHECK_THROWS_AS(neurobolt::extract_roi_timeseries(bold, atlas, options), neurobolt::ConfigError);
  CHECK_THROWS_WITH(neurobolt::extract_roi_timeseries(bold, atlas, options),
                    Contains("has 2 rows, BOLD") && Contains("has 40 volumes"));
}

TEST_CASE("ROI extraction leaves out non-finite voxels and refuses empty ROIs", "[nifti]") {
  const auto grid = small_grid(2, 2, 1);
  auto bold = make_image(grid, 3, 1.0);
  for (std::size_t i = 0; i < bold.data.size(); ++i) bold.data[i] = static_cast<float>(i);
  bold.data[1 * 4 + 0] = std::nanf("");  // voxel 0 in volume 1
  Atlas atlas;
  atlas.path = "mem";
  atlas.grid = grid;
  atlas.rois = {{"A", 1, {0, 1}, {1.0f, 1.0f}}, {"B", 2, {2, 3}, {1.0f, 3.0f}}};
  ExtractionOptions raw;
  raw.detrend = false;
  const auto series = neurobolt::extract_roi_timeseries(bold, atlas, raw);
  CHECK(series.at(0, 0) == 1.0);  // voxel 1 only
  CHECK(series.at(2, 0) == 9.0);
  CHECK(series.at(0, 1) == Approx((2.0 + 3 * 3.0) / 4));
  REQUIRE(series.warnings.size() == 1);
  CHECK_THAT(series.warnings[0], Contains("1 atlas voxels are NaN or infinite"));
  atlas.rois[0].voxels = {0};
  atlas.rois[0].weights = {1.0f};
  CHECK_THROWS_WITH(neurobolt::extract_roi_timeseries(bold, atlas, raw),
                    Contains("ROI 'A' (label 1): no voxel with finite values"));
}

TEST_CASE("ROI extraction refuses an atlas on another grid", "[nifti]") {
  const auto grid = small_grid(4, 4, 4);
  auto bold = make_image(grid, 3, 1.0);
  Atlas atlas;
  atlas.path = "shifted.nii";
  atlas.grid = grid;
  atlas.grid.affine[0][3] += 1.5;
  atlas.rois = {{"A", 1, {0}, {1.0f}}};
  CHECK_THROWS_AS(neurobolt::extract_roi_timeseries(bold, atlas), neurobolt::ConfigError);
  CHECK_THROWS_WITH(neurobolt::extract_roi_timeseries(bold, atlas),
                    Contains("grid mismatch") && Contains("[-3 0 0 30]") && Contains("[-3 0 0 31.5]"));
}

TEST_CASE("the real example4d EPI and an MNI atlas are refused as mismatched grids", "[nifti]") {
  const auto bold = neurobolt::read_nifti(real_nifti("example4d.nii.gz"));
  const auto atlas = neurobolt::read_atlas(real_nifti("AICHAmc.nii.gz"), real_nifti("AICHAmc.nii.txt"));
  CHECK(atlas.rois.size() == 192);
  CHECK(atlas.rois.front().name == "G_Frontal_Sup-1");
  try {
    neurobolt::extract_roi_timeseries(bold, atlas);
    FAIL("expected a ConfigError");
  } catch (const neurobolt::ConfigError& e) {
    const std::string message = e.what();
    CHECK_THAT(message,
               Contains("grid mismatch: BOLD '") && Contains("example4d.nii.gz' is 128x96x24 voxels of 2x2x2.2 mm"));
    CHECK_THAT(message, Contains("atlas '") && Contains("AICHAmc.nii.gz' is 91x109x91 voxels of 2x2x2 mm"));
    CHECK_THAT(message, Contains("Resample the atlas onto the BOLD grid"));
  }
}

TEST_CASE("ROI extraction from the real functional.nii matches nested loops over nifticlib's data", "[nifti]") {
  neurobolt::test::TempDir dir;
  const std::string path = real_nifti("functional.nii");
  const auto bold = neurobolt::read_nifti(path);
  const auto& g = bold.grid;
  REQUIRE(g.dims == std::array<int64_t, 3>{17, 21, 3});

  // A label image on the EPI's own grid: 6 boxes (left/right half x 3 slices), a background rim.
  auto labels = make_image(g, 1, 0.0);
  for (int64_t k = 0; k < 3; ++k)
    for (int64_t j = 0; j < 21; ++j)
      for (int64_t i = 0; i < 17; ++i) {
        const bool rim = i == 0 || j == 0 || i == 16 || j == 20;
        labels.data[(k * 21 + j) * 17 + i] = rim ? 0.0f : static_cast<float>(1 + (i >= 8 ? 1 : 0) + 2 * k);
      }
  neurobolt::write_nifti((dir / "labels.nii.gz").string(), labels);
  const auto atlas = neurobolt::read_atlas((dir / "labels.nii.gz").string());
  REQUIRE(atlas.rois.size() == 6);
  ExtractionOptions raw;
  raw.detrend = false;
  const auto series = neurobolt::extract_roi_timeseries(bold, atlas, raw);
  REQUIRE(series.num_volumes == 20);
  CHECK(series.repetition_time == Approx(2.0));

  // Reference: nifticlib's raw int16 values scaled by scl_slope/scl_inter, in double.
  nifti_set_debug_level(0);
  std::unique_ptr<nifti_image, NiftiFree> nim(nifti_image_read(path.c_str(), 1));
  REQUIRE(nim);
  REQUIRE(nim->datatype == DT_INT16);
  REQUIRE(nim->scl_slope != 0.0);
  const auto* raw_data = static_cast<const int16_t*>(nim->data);
  for (int64_t roi = 1; roi <= 6; ++roi) {
    std::vector<double> direct;
    for (int64_t t = 0; t < 20; ++t) {
      double sum = 0;
      int64_t count = 0;
      for (int64_t k = 0; k < 3; ++k)
        for (int64_t j = 1; j < 20; ++j)
          for (int64_t i = 1; i < 16; ++i) {
            if (1 + (i >= 8 ? 1 : 0) + 2 * k != roi) continue;
            sum += raw_data[((t * 3 + k) * 21 + j) * 17 + i] * nim->scl_slope + nim->scl_inter;
            ++count;
          }
      direct.push_back(sum / count);
      CHECK(series.at(t, roi - 1) == Approx(direct.back()).epsilon(1e-6));
    }
    const auto clean = neurobolt::extract_roi_timeseries(bold, atlas);
    const auto want = detrended(direct);
    for (int64_t t = 0; t < 20; ++t) CHECK(clean.at(t, roi - 1) == Approx(want[t]).margin(2e-3));
  }
}

TEST_CASE("label images must hold non-negative integers", "[nifti]") {
  neurobolt::test::TempDir dir;
  auto labels = make_image(small_grid(2, 2, 2), 1, 0.0);
  labels.data = {0, 1, 1, 2, 0, 0, 2.5f, 0};
  neurobolt::write_nifti((dir / "frac.nii").string(), labels);
  CHECK_THROWS_WITH(neurobolt::read_atlas((dir / "frac.nii").string()),
                    Contains("frac.nii' voxel (0, 1, 1): expected a non-negative integer label, found 2.5"));
  labels.data.assign(8, 0.0f);
  neurobolt::write_nifti((dir / "zero.nii").string(), labels);
  CHECK_THROWS_WITH(neurobolt::read_atlas((dir / "zero.nii").string()), Contains("found only zeros"));
}

TEST_CASE("ROI extraction speed: 64x64x40x300 BOLD, 100-label atlas", "[.perf]") {
  const auto grid = small_grid(64, 64, 40);
  const int64_t nvox = grid.num_voxels(), volumes = 300;
  auto bold = make_image(grid, volumes, 2.0);
  for (std::size_t i = 0; i < bold.data.size(); ++i) bold.data[i] = static_cast<float>(i % 1013);
  Atlas atlas;
  atlas.grid = grid;
  atlas.rois.resize(100);
  for (int64_t v = 0; v < nvox; ++v) {
    auto& roi = atlas.rois[(v * 7919) % 100];
    roi.voxels.push_back(v);
    roi.weights.push_back(1.0f);
  }
  for (int r = 0; r < 100; ++r) atlas.rois[r].name = std::to_string(r + 1);
  const auto start = std::chrono::steady_clock::now();
  const auto series = neurobolt::extract_roi_timeseries(bold, atlas);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("extraction (with detrending) of 64x64x40x300 with 100 ROIs: " << seconds << " s");
  CHECK(series.num_rois() == 100);
  CHECK(seconds < 1.0);
}
