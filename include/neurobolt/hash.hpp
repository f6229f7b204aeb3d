#pragma once
// Content hashes of files: checkpoint identity in inference sidecars, and the inputs a prepared
// dataset was made from (so that a byte-identical rewrite of an input does not count as a change).
#include <cstddef>
#include <cstdint>
#include <string>

namespace neurobolt {

// Hex SHA-256 of a file's bytes (OpenSSL). IoError naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

// 64-bit FNV-1a of bytes, continuing from `h` (chain calls to hash several pieces): a quick
// identity for fingerprints compared within neurobolt, not a cryptographic hash.
constexpr uint64_t kFnv1aOffset = 1469598103934665603ull;
uint64_t fnv1a(const void* data, std::size_t bytes, uint64_t h = kFnv1aOffset);
inline uint64_t fnv1a(const std::string& text, uint64_t h = kFnv1aOffset) { return fnv1a(text.data(), text.size(), h); }

}  // namespace neurobolt
