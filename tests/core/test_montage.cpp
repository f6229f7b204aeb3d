// Channel names, electrode positions and channel mapping, with the channel lists of real files
// (../shared/data/real/expected/*.json, as MNE-Python reads them).
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "neurobolt/channels.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/montage.hpp"
#include "test_support.hpp"

using namespace neurobolt;

namespace {

std::vector<std::string> real_channel_names(const std::string& file) {
  std::ifstream in(test::shared_dir() / "data" / "real" / "expected" / (file + ".json"));
  REQUIRE(in);
  return nlohmann::json::parse(in).at("ch_names").get<std::vector<std::string>>();
}

std::string write_file(const test::TempDir& dir, const std::string& name, const std::string& text) {
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

template <typename E, typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

}  // namespace

TEST_CASE("canonical channel names", "[montage]") {
  CHECK(canonical_channel_name("Fp1") == "Fp1");
  CHECK(canonical_channel_name("FP1") == "Fp1");
  CHECK(canonical_channel_name(" fcz ") == "FCz");
  CHECK(canonical_channel_name("Fc5.") == "FC5");      // EDF padding dots (PhysioNet)
  CHECK(canonical_channel_name("T10.") == "T10");
  CHECK(canonical_channel_name("Iz..") == "Iz");
  CHECK(canonical_channel_name("EEG Fp1") == "Fp1");
  CHECK(canonical_channel_name("EEG Fp1-Ref") == "Fp1");
  CHECK(canonical_channel_name("EEG FP1-REF") == "Fp1");
  CHECK(canonical_channel_name("Fp1-Ref") == "Fp1");
  CHECK(canonical_channel_name("C3-A2") == "C3");
  CHECK(canonical_channel_name("EEG T3-LE") == "T7");
  CHECK(canonical_channel_name("T3") == "T7");
  CHECK(canonical_channel_name("t4") == "T8");
  CHECK(canonical_channel_name("T5") == "P7");
  CHECK(canonical_channel_name("T6") == "P8");
  CHECK(canonical_channel_name("FP1-F7") == "Fp1-F7");  // bipolar pairs stay pairs
  CHECK(canonical_channel_name("T3-T5") == "T7-P7");
  CHECK(canonical_channel_name("EEG Fpz-Cz") == "Fpz-Cz");
  CHECK(canonical_channel_name("O9") == "O9");          // 10-20 only
  CHECK(canonical_channel_name("afp9H") == "AFp9h");    // 10-05 half positions
  // Not EEG electrodes: kept as they are (after trimming).
  CHECK(canonical_channel_name("ECG ECG1") == "ECG ECG1");
  CHECK(canonical_channel_name("POL T1") == "POL T1");
  CHECK(canonical_channel_name("EOG1 ") == "EOG1");
  CHECK(canonical_channel_name("REF_EEG REF_EEG") == "REF_EEG REF_EEG");
  CHECK(canonical_channel_name("Status") == "Status");
}

TEST_CASE("the built-in montages are MNE's standard_1005 and standard_1020 files", "[montage]") {
  const auto dir = test::shared_dir() / "data" / "real" / "montage";
  for (auto which : {StandardMontage::standard_1005, StandardMontage::standard_1020}) {
    const auto& builtin = standard_montage(which);
    INFO(builtin.name);
    const auto file = read_elc((dir / (builtin.name + ".elc")).string());
    CHECK(builtin.unit == "mm");
    CHECK(file.unit == "mm");
    CHECK(builtin.names == file.names);
    REQUIRE(builtin.positions.size() == file.positions.size());
    // The generator copies the decimal text, so both parse to the same doubles.
    for (std::size_t i = 0; i < file.positions.size(); ++i) {
      CHECK(builtin.positions[i].x == file.positions[i].x);
      CHECK(builtin.positions[i].y == file.positions[i].y);
      CHECK(builtin.positions[i].z == file.positions[i].z);
    }
  }
  CHECK(standard_montage(StandardMontage::standard_1005).names.size() == 346);
  CHECK(standard_montage(StandardMontage::standard_1020).names.size() == 97);
}

TEST_CASE("electrode positions by any spelling of the name", "[montage]") {
  const auto cz = electrode_position("Cz");
  CHECK(cz.x == Approx(0.4009));
  CHECK(cz.y == Approx(-9.1670));
  CHECK(cz.z == Approx(100.2440));
  const auto fp1 = electrode_position("EEG FP1-REF");
  CHECK(fp1.x == -29.4367);
  CHECK(fp1.y == 83.9171);
  CHECK(fp1.z == -6.9900);
  const auto t3 = electrode_position("T3");
  const auto t7 = electrode_position("T7");
  CHECK((t3.x == t7.x && t3.y == t7.y && t3.z == t7.z));
  const auto o9 = electrode_position("O9", StandardMontage::standard_1020);
  CHECK(o9.x == -29.8184);
  CHECK(error_message<ConfigError>([] { electrode_position("O9"); }) ==
        "electrode 'O9' (canonical 'O9') is not in the standard_1005 montage");
  CHECK(error_message<ConfigError>([] { electrode_position("ECG"); }) ==
        "electrode 'ECG' (canonical 'ECG') is not in the standard_1005 montage");
  CHECK(standard_montage(StandardMontage::standard_1005).find("fpz").has_value());
  CHECK_FALSE(standard_montage(StandardMontage::standard_1005).find("EOG").has_value());

  // Every name of the model's vocabulary that is a 10-05 electrode has a position.
  for (const auto& name : neurobolt_paper_channels()) {
    INFO(name);
    CHECK_NOTHROW(electrode_position(name));
  }
}

TEST_CASE("read_elc reads user montages and reports broken ones", "[montage]") {
  test::TempDir dir;
  const auto labelled = read_elc(write_file(dir, "labelled.elc",
                                            "# ASA electrode file\nReferenceLabel\tavg\nUnitPosition\tcm\n"
                                            "NumberPositions=\t2\nPositions\nFp1 : -2.9 8.4 -0.7\nCz:\t0.0 0.0 10.0\n"));
  CHECK(labelled.unit == "cm");
  CHECK(labelled.names == std::vector<std::string>{"Fp1", "Cz"});
  CHECK(labelled.positions[1].z == 10.0);
  CHECK(labelled.find("FP1")->x == -2.9);

  const auto plain = read_elc(write_file(dir, "plain.elc",
                                         "UnitPosition mm\r\nNumberPositions= 2\r\nPositions\r\n1 2 3\r\n4 5 6\r\n"
                                         "Labels\r\nA\tB\r\n"));
  CHECK(plain.names == std::vector<std::string>{"A", "B"});
  CHECK(plain.positions[1].y == 5.0);

  CHECK_THAT(error_message<IoError>([&] { read_elc((dir / "absent.elc").string()); }),
             Catch::Contains("cannot open electrode file") && Catch::Contains("absent.elc"));
  const auto short_count = write_file(dir, "count.elc", "UnitPosition mm\nNumberPositions= 3\nPositions\n1 2 3\nLabels\nA\n");
  CHECK(error_message<FormatError>([&] { read_elc(short_count); }) ==
        "'" + short_count + "': NumberPositions= declares 3 positions, found 1");
  const auto bad_number = write_file(dir, "number.elc", "UnitPosition mm\nNumberPositions= 1\nPositions\n1 2 x3\n");
  CHECK(error_message<FormatError>([&] { read_elc(bad_number); }) ==
        "'" + bad_number + "' line 4: expected a number, found 'x3'");
  const auto bad_unit = write_file(dir, "unit.elc", "UnitPosition inch\nNumberPositions= 0\nPositions\n");
  CHECK(error_message<FormatError>([&] { read_elc(bad_unit); }) ==
        "'" + bad_unit + "' line 1: UnitPosition: expected mm, cm or m, found 'inch'");
  const auto few_labels = write_file(dir, "labels.elc", "UnitPosition mm\nNumberPositions= 2\nPositions\n1 2 3\n4 5 6\nLabels\nA\n");
  CHECK(error_message<FormatError>([&] { read_elc(few_labels); }) ==
        "'" + few_labels + "': Labels: expected 2 labels (one per position), found 1");
}

TEST_CASE("map_channels maps a clinical EDF export onto the paper's channels", "[montage]") {
  const auto names = real_channel_names("chtypes_edf.edf");  // "EEG Fp1-Ref", "POL E", "ECG ECG1", ...
  const auto& required = neurobolt_paper_channels();
  const auto mapping = map_channels(names, required, /*allow_missing=*/true);
  REQUIRE(mapping.source.size() == required.size());
  CHECK(mapping.missing == std::vector<std::string>{"FPZ", "POZ", "OZ", "FT9", "FT10", "TP9", "TP10"});
  CHECK(names[static_cast<std::size_t>(*mapping.source[0])] == "EEG Fp1-Ref");   // FP1
  CHECK(names[static_cast<std::size_t>(*mapping.source[12])] == "EEG T7-Ref");   // T7
  CHECK_FALSE(mapping.source[16].has_value());                                    // FPZ
  CHECK_FALSE(mapping.complete());
  CHECK(std::find(mapping.unmapped.begin(), mapping.unmapped.end(), "POL E") != mapping.unmapped.end());
  CHECK(std::find(mapping.unmapped.begin(), mapping.unmapped.end(), "EEG A1-Ref") != mapping.unmapped.end());
  CHECK(mapping.unmapped.size() == names.size() - 19);
  CHECK_THAT(mapping.report(), Catch::StartsWith("mapped 19 of 26 required channels\n"
                                                 "missing (7): FPZ, POZ, OZ, FT9, FT10, TP9, TP10\n"));

  CHECK_THAT(error_message<ConfigError>([&] { map_channels(names, required); }),
             Catch::StartsWith("map_channels: 7 required channels are missing from the recording: FPZ, POZ, OZ, FT9, "
                               "FT10, TP9, TP10 (the recording has 42 channels: EEG Fp1-Ref, EEG Fp2-Ref,"));
}

TEST_CASE("map_channels resolves old 10-20 names and EDF padding", "[montage]") {
  // "EEG T3" ... "EEG T6": the old names of T7, T8, P7, P8.
  const auto old_names = real_channel_names("test_edf_stim_channel.edf");
  const auto mapping = map_channels(old_names, {"T7", "T8", "P7", "P8", "Cz"});
  CHECK(old_names[static_cast<std::size_t>(*mapping.source[0])] == "EEG T3");
  CHECK(old_names[static_cast<std::size_t>(*mapping.source[1])] == "EEG T4");
  CHECK(old_names[static_cast<std::size_t>(*mapping.source[2])] == "EEG T5");
  CHECK(old_names[static_cast<std::size_t>(*mapping.source[3])] == "EEG T6");
  CHECK(old_names[static_cast<std::size_t>(*mapping.source[4])] == "EEG Cz");
  CHECK(mapping.complete());

  // PhysioNet's 64-channel motor imagery files pad names with dots ("Fc5.", "T10.").
  const auto padded = real_channel_names("test_edf_overlapping_annotations.edf");
  const auto physionet = map_channels(padded, neurobolt_paper_channels(), true);
  CHECK(physionet.missing == std::vector<std::string>{"FT9", "FT10", "TP9", "TP10"});
  CHECK(padded[static_cast<std::size_t>(*physionet.source[20])] == "Poz.");  // POZ
  CHECK(physionet.unmapped.size() == 64 - 22);
}

TEST_CASE("map_channels reports duplicates", "[montage]") {
  const auto mapping = map_channels({"T3", "Cz", "T7"}, {"T7", "CZ"});
  CHECK(*mapping.source[0] == 0);
  CHECK(*mapping.source[1] == 1);
  CHECK(mapping.unmapped == std::vector<std::string>{"T7"});
  CHECK(mapping.warnings == std::vector<std::string>{"recording channels 'T3' and 'T7' are both 'T7'; using 'T3'"});
  CHECK(error_message<ConfigError>([] { map_channels({"Cz"}, {"T3", "Cz", "T7"}); }) ==
        "map_channels: required channels 'T3' (#0) and 'T7' (#2) are the same channel 'T7'");
  CHECK(error_message<ConfigError>([] { map_channels({"Cz", "ECG"}, {"Cz", "Pz"}); }) ==
        "map_channels: 1 required channel is missing from the recording: Pz (the recording has 2 channels: Cz, ECG)");
}
