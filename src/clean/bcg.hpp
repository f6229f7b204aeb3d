#pragma once
// The ballistocardiogram correction (internal to src/clean).
#include <cstdint>
#include <vector>

#include "neurobolt/clean.hpp"

namespace neurobolt::clean_detail {

struct BcgEpochs {
  int64_t before = 0;  // samples before each R peak
  int64_t length = 0;  // samples per heartbeat epoch
};
// Heartbeat epochs: from 15 % of the median RR interval before each R peak to 85 % after.
BcgEpochs bcg_epochs(const std::vector<int64_t>& peaks);

// Removes the heartbeat-locked artefact from x (n samples) in place: OBS (mean + `components`
// principal components of all whole heartbeat epochs, fitted to each by least squares) or AAS
// (mean of `beats` neighbouring beats, the beat itself left out). Each sample is corrected by the
// last epoch that starts at or before it and still covers it.
// OBS fits the mean heartbeat and its time derivative per beat (amplitude and latency); with
// `latencies` (per R peak, samples, common to all channels: bcg_latencies) the latency is fixed and
// only the amplitude is fitted, so that the derivative cannot take the EEG's rhythms with it.
void remove_bcg(float* x, int64_t n, const std::vector<int64_t>& peaks, BcgMethod method, int components, int beats,
                const std::vector<double>* latencies = nullptr);

// Each beat's artefact latency (samples, + = later) against the mean, estimated from all the given
// channels together (weighted by the mean artefact's energy); clamped to +-3 samples.
std::vector<double> bcg_latencies(const std::vector<const float*>& channels, int64_t n, const std::vector<int64_t>& peaks);

// RMS over time of the heartbeat-locked average of x (the evoked BCG), uV.
double evoked_rms(const float* x, int64_t n, const std::vector<int64_t>& peaks);

}  // namespace neurobolt::clean_detail
