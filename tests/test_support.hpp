#pragma once
// Shared helpers for the unit tests: where fixtures live, and a skip for absent shared data.
#include <filesystem>
#include <functional>
#include <string>

namespace neurobolt::test {

inline std::filesystem::path shared_dir() { return NEUROBOLT_SHARED_DIR; }
inline std::filesystem::path source_dir() { return NEUROBOLT_SOURCE_DIR; }
inline std::filesystem::path test_data_dir() { return NEUROBOLT_TEST_DATA_DIR; }

// The whole content of a file (throws std::runtime_error naming it if it cannot be opened).
std::string read_bytes(const std::filesystem::path& path);

// The full text of the neurobolt::Error that `f` throws, or "(no error)"; any other exception
// propagates and fails the test.
std::string error_of(const std::function<void()>& f);

// A fresh, empty temporary folder, removed when the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace neurobolt::test
