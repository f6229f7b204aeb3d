#pragma once
// The preprocessing a checkpoint's training data had (its metadata's dataset parameters), as
// `infer` and the streamer apply it (internal to libneurobolt).
#include <string>

#include "neurobolt/predictor.hpp"
#include "neurobolt/preprocess.hpp"

namespace neurobolt::infer_detail {

// Channels, rate, filters and the missing-channel policy (`missing_channels` when not empty, else
// the training data's); `demean` (optional) receives whether windows are demeaned per channel.
EegPreprocessOptions checkpoint_preprocessing(const Predictor& predictor, const std::string& missing_channels,
                                              bool* demean);

}  // namespace neurobolt::infer_detail
