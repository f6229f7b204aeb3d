#pragma once
// A structure check of MATLAB v5/v7 .mat files, run before matio reads one: matio sizes its
// allocations by the counts a file declares (a struct array's elements x fields, an array's
// dims, a name's length) before it finds that the bytes are not there, so a damaged .set of a
// few KiB could make it allocate gigabytes.
#include <string>

namespace neurobolt::io {

// Walks every variable of a v5/v7 file (inflating compressed ones, each at most 1032 times its
// compressed size: deflate's largest ratio) and checks that each element fits in the one that
// holds it: an array's values in its data element (dims x value size), a struct's or cell's
// elements in its bytes, names and tags within their element. FormatError naming the variable
// and the field otherwise; also for a file that is neither v5/v7 nor v7.3 (v4 and older, which
// EEGLAB never wrote). In a v7.3 file (HDF5) every dataset's extent, type and chunks are
// bounded by the file's size, and its HDF5 structure checked from its bytes (h5::File::open_read).
void check_mat_structure(const std::string& path);

}  // namespace neurobolt::io
