#pragma once
// fMRI targets: ROI time series, read from BIDS-derivatives TSV files or extracted from a 4-D
// BOLD image with an atlas.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "neurobolt/nifti.hpp"

namespace neurobolt {

// One value per volume and ROI.
struct TargetSeries {
  std::string path;    // the _timeseries.tsv or the _bold.nii[.gz]
  std::string source;  // "tsv" or "nifti"
  std::vector<std::string> roi_names;
  int64_t num_volumes = 0;
  std::vector<double> data;      // volumes x ROIs, row-major: data[v * num_rois() + r]; NaN for n/a
  double repetition_time = 0.0;  // seconds between volumes
  // Seconds from the start of the first volume's acquisition to the time its row refers to
  // (BIDS StartTime; 0 when not given).
  double start_time = 0.0;
  std::vector<std::string> warnings;

  int64_t num_rois() const { return static_cast<int64_t>(roi_names.size()); }
  double at(int64_t volume, int64_t roi) const { return data[volume * num_rois() + roi]; }
};

// Reads a BIDS-derivatives ROI time series: header = ROI names, one row per volume, every
// cell a number or n/a (kept as NaN, with a warning). RepetitionTime and StartTime are not in
// the TSV; the caller sets them from the JSON sidecar.
TargetSeries read_timeseries_tsv(const std::string& path);

struct AtlasRoi {
  std::string name;
  int64_t label = 0;            // value in a label image; volume index (from 0) in a 4-D map
  std::vector<int64_t> voxels;  // linear indices into one volume of the atlas grid
  std::vector<float> weights;   // one per voxel; all 1 for a label image
};

struct Atlas {
  std::string path;
  NiftiGrid grid;
  bool probabilistic = false;  // a 4-D map with one volume of weights per ROI
  std::vector<AtlasRoi> rois;  // label images: ascending label; 4-D maps: volume order
  std::vector<std::string> warnings;

  std::vector<std::string> roi_names() const;
};

// Label names: (index, name) pairs. Formats: a BIDS look-up table (.tsv with columns `index`
// and `name`), or text with one "index name" per line, where a trailing integer column (the
// code in AAL's aal.nii.txt and AICHA's AICHAmc.nii.txt) is dropped when the name is one word,
// and a multi-word name otherwise runs to the end of the line. Empty lines and lines starting
// with '#' are skipped. A non-integer or repeated index is a FormatError naming the line.
std::vector<std::pair<int64_t, std::string>> read_atlas_labels(const std::string& path);

// Reads an atlas: a 3-D image of non-negative integer labels (0 = background), or a 4-D map with
// one volume of weights (e.g. probabilities) per ROI, where voxels with a weight > 0 count.
// With `labels_path`, ROIs are named from it: for a label image by label value (labels that are
// missing from the image are dropped with a warning; labels without a name are named by their
// value, with a warning); for a 4-D map the indices must be 0..N-1 or 1..N for N volumes.
// Without it, ROIs are named by label value (or volume number from 1).
Atlas read_atlas(const std::string& image_path, const std::string& labels_path = "");

struct ExtractionOptions {
  // Remove a least-squares line (mean included) from each ROI series, as scipy.signal.detrend.
  bool detrend = true;
  // Columns of `confounds_path` to regress out of each ROI series, together with an intercept
  // and a linear trend. n/a cells (e.g. the first row of a derivative) become the column mean.
  std::vector<std::string> confound_columns;
  std::string confounds_path;  // a TSV with one row per BOLD volume
};

// Weighted mean of the BOLD signal per ROI and volume: sum(w * x) / sum(w) over the ROI's voxels.
// The atlas must lie on the BOLD grid (same dims and affine within 1e-3 mm), otherwise a
// ConfigError names both grids. Voxels that are not finite in some volume are left out of every
// ROI (with a warning); an ROI left without voxels is a ConfigError. The result has the image's
// repetition time and source "nifti".
TargetSeries extract_roi_timeseries(const NiftiImage& bold, const Atlas& atlas, const ExtractionOptions& options = {});

}  // namespace neurobolt
