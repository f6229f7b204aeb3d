#pragma once
// The preprocessing a checkpoint's training data had (its metadata's dataset parameters), as
// `infer` and the streamer apply it (internal to libneurobolt).
#include <cstdint>
#include <string>

#include "neurobolt/predictor.hpp"
#include "neurobolt/preprocess.hpp"

namespace neurobolt::infer_detail {

// Channels, rate, filters and the missing-channel policy (`missing_channels` when not empty, else
// the training data's); `demean` (optional) receives whether windows are demeaned per channel.
EegPreprocessOptions checkpoint_preprocessing(const Predictor& predictor, const std::string& missing_channels,
                                              bool* demean);

// One model window from C channels of S samples (channel c at src + c * src_stride) into
// dst[c * S + s], each channel demeaned (when `demean`) as the model's training windows were.
void copy_window(const float* src, int64_t src_stride, int64_t C, int64_t S, bool demean, float* dst);

}  // namespace neurobolt::infer_detail
