#pragma once
// Checkpoint writing with room for more than the weights (the trainer's optimizer and RNG state).
#include <functional>
#include <string>

#include "io/h5.hpp"
#include "neurobolt/model.hpp"

namespace neurobolt::detail {

// save_checkpoint, with `extra` called on the open temporary file before it is committed, to add
// groups and attributes of its own.
void write_checkpoint(NeuroBOLTImpl& model, const std::string& path, bool force, const std::string& metadata_json,
                      const std::function<void(h5::File&)>& extra);

}  // namespace neurobolt::detail
