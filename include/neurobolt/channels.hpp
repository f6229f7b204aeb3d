#pragma once
// The electrode vocabulary of the temporal branch's spatial position embedding: LaBraM's list of
// 128 10-20/10-10 names (plus bipolar montage pairs). Row i+1 of `pos_embed` belongs to name i;
// row 0 belongs to the class token.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neurobolt {

const std::vector<std::string>& position_vocabulary();

// Index of `name` in position_vocabulary(), matching case-insensitively after trimming
// surrounding spaces and trailing dots ("Fp1." == "FP1"); nullopt when the name is unknown.
std::optional<int> position_index(std::string_view name);

// Upper-cased, trimmed form used for comparisons ("Fp1 " -> "FP1").
std::string normalize_channel_name(std::string_view name);

// The 26 channels of the NeuroBOLT paper's dataset, in the order its model was trained with.
const std::vector<std::string>& neurobolt_paper_channels();

}  // namespace neurobolt
