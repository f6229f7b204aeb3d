#pragma once
// Content hashes of files: checkpoint identity in inference sidecars, and the inputs a prepared
// dataset was made from (so that a byte-identical rewrite of an input does not count as a change).
#include <string>

namespace neurobolt {

// Hex SHA-256 of a file's bytes (OpenSSL). IoError naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace neurobolt
