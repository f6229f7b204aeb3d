#include <catch2/catch.hpp>

#include "neurobolt/error.hpp"

using neurobolt::ErrorKind;

TEST_CASE("errors chain context outermost first and map kinds to exit codes", "[error]") {
  neurobolt::FormatError e("dataset 'x': expected float32, found int16");
  e.add_context("reading 'a.h5'");
  e.add_context("loading checkpoint");
  CHECK(std::string(e.what()) == "loading checkpoint: reading 'a.h5': dataset 'x': expected float32, found int16");
  CHECK(e.message() == "dataset 'x': expected float32, found int16");
  CHECK(e.kind() == ErrorKind::format);
  CHECK(e.exit_code() == 4);
  CHECK(neurobolt::IoError("m").exit_code() == 3);
  CHECK(neurobolt::ConfigError("m").exit_code() == 5);
  CHECK(neurobolt::UsageError("m").exit_code() == 2);
  CHECK(std::string(neurobolt::to_string(ErrorKind::device)) == "device error");
}
