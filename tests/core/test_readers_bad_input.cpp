// Broken copies of the real files (truncated, header fields edited, NaN samples, zero channels,
// a sampling rate of 0, events after the end) each give an error that names the file and the
// field, never a crash; and copies rewritten into the other supported layouts (big-endian,
// VECTORIZED, INT_32, EEGLAB v7.3 with embedded data) read back the same samples.
#include <fmt/format.h>
#include <matio.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>

#include "core/atomic_file.hpp"
#include "core/plural.hpp"
#include "io/h5.hpp"
#include "io/reader_common.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"
#include "test_support.hpp"

using neurobolt::ReadOptions;
using neurobolt::Recording;
using neurobolt::test::TempDir;
using neurobolt::test::error_of;

namespace {

std::filesystem::path real(const std::string& relative) {
  return neurobolt::test::shared_dir() / "data" / "real" / relative;
}

std::string put(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const auto path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}


void replace_once(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
}

// Overwrites a fixed-width EDF header field.
void set_field(std::string& bytes, std::size_t offset, std::size_t width, const std::string& value) {
  std::string padded = value;
  padded.resize(width, ' ');
  bytes.replace(offset, width, padded);
}

}  // namespace

TEST_CASE("truncated EDF and BDF files are refused with the sizes", "[io][edf]") {
  TempDir dir;
  const std::string edf = neurobolt::test::read_bytes(real("edf/eeglab_test.edf"));  // 4352 header bytes + 60 records of 8192
  const auto cut = put(dir, "cut.edf", edf.substr(0, edf.size() - 1000));
  CHECK_THAT(error_of([&] { neurobolt::read_edf(cut); }), Catch::Contains("cut.edf") && Catch::Contains("file size") &&
                                                              Catch::Contains("expected 495872 bytes") &&
                                                              Catch::Contains("found 494872 bytes"));
  const auto in_header = put(dir, "head.edf", edf.substr(0, 1000));
  CHECK_THAT(error_of([&] { neurobolt::read_edf(in_header); }),
             Catch::Contains("head.edf") && Catch::Contains("file size") && Catch::Contains("at least 4352 bytes"));
  const auto tiny = put(dir, "tiny.edf", edf.substr(0, 100));
  CHECK_THAT(error_of([&] { neurobolt::read_edf(tiny); }),
             Catch::Contains("tiny.edf") && Catch::Contains("at least 256 bytes"));
  const auto empty = put(dir, "empty.edf", "");
  CHECK_THAT(error_of([&] { neurobolt::read_edf(empty); }),
             Catch::Contains("empty.edf") && Catch::Contains("found 0 bytes"));

  const std::string bdf = neurobolt::test::read_bytes(real("bdf/mne_test.bdf"));
  const auto cut_bdf = put(dir, "cut.bdf", bdf.substr(0, bdf.size() - 3));
  CHECK_THAT(error_of([&] { neurobolt::read_recording(cut_bdf); }),
             Catch::Contains("cut.bdf") && Catch::Contains("file size") && Catch::Contains("expected 467456 bytes"));
}

TEST_CASE("EDF header fields that disagree with the file or each other are refused, naming the field", "[io][edf]") {
  TempDir dir;
  const std::string original = neurobolt::test::read_bytes(real("edf/eeglab_test.edf"));
  auto edited = [&](std::size_t offset, std::size_t width, const std::string& value) {
    std::string bytes = original;
    set_field(bytes, offset, width, value);
    const auto path = put(dir, "edited.edf", bytes);
    return error_of([&] { neurobolt::read_edf(path); });
  };
  // 16 signals: labels at 256, ..., physical minimum at 256 + 16 * 104, samples per record at 256 + 16 * 216.
  CHECK_THAT(edited(184, 8, "4608"), Catch::Contains("edited.edf") && Catch::Contains("number of header bytes") &&
                                         Catch::Contains("expected 4352") && Catch::Contains("found 4608"));
  CHECK_THAT(edited(236, 8, "61"), Catch::Contains("file size") && Catch::Contains("61 data records") &&
                                       Catch::Contains("found 495872 bytes"));
  CHECK_THAT(edited(236, 8, "0"), Catch::Contains("number of data records") && Catch::Contains("found 0"));
  CHECK_THAT(edited(252, 4, "0"),
             Catch::Contains("number of signals") && Catch::Contains("at least 1") && Catch::Contains("found 0"));
  CHECK_THAT(edited(252, 4, "17"), Catch::Contains("number of header bytes") && Catch::Contains("expected 4608"));
  CHECK_THAT(edited(244, 8, "0"),
             Catch::Contains("duration of a data record") && Catch::Contains("sampling rate of 0 Hz"));
  CHECK_THAT(edited(244, 8, "-1"), Catch::Contains("duration of a data record") && Catch::Contains("found -1"));
  CHECK_THAT(edited(256 + 16 * 216, 8, "0"),
             Catch::Contains("signal 1 ('EEG Fp1') number of samples in each data record") &&
                 Catch::Contains("found 0 (a sampling rate of 0 Hz)"));
  CHECK_THAT(edited(256 + 16 * 104, 8, "682"),
             Catch::Contains("signal 1 ('EEG Fp1') physical maximum") && Catch::Contains("gain is undefined"));
  CHECK_THAT(edited(256 + 16 * 104 + 8, 8, "1.2.3"),
             Catch::Contains("signal 2 ('EEG Fp2') physical minimum") && Catch::Contains("found '1.2.3   '"));
  CHECK_THAT(edited(256 + 16 * 128, 8, "-3000"), Catch::Contains("signal 1 ('EEG Fp1') digital maximum") &&
                                                     Catch::Contains("more than the digital minimum (-2046)"));
  CHECK_THAT(edited(256 + 16 * 120, 8, "-40000"),
             Catch::Contains("digital minimum") && Catch::Contains("[-32768, 32767]"));
  CHECK_THAT(edited(0, 8, "1"), Catch::Contains("version") && Catch::Contains("found '1       '"));
}

TEST_CASE("an EDF+ annotation signal with a broken TAL is refused naming the record", "[io][edf]") {
  TempDir dir;
  std::string bytes = neurobolt::test::read_bytes(real("edf/chtypes_edf.edf"));
  // Record 2's annotation signal (header 11264, records of 16874 bytes, TALs at 16800): "+1\x14\x14..."
  const std::size_t tal = 11264 + 16874 + 16800;
  REQUIRE(bytes.substr(tal, 4) == "+1\x14\x14");
  bytes[tal] = 'x';
  const auto path = put(dir, "tal.edf", bytes);
  CHECK_THAT(error_of([&] { neurobolt::read_edf(path); }),
             Catch::Contains("tal.edf") && Catch::Contains("data record 2 signal 43 ('EDF Annotations') TAL onset") &&
                 Catch::Contains("found 'x1'"));
}

TEST_CASE("BrainVision float data with NaN or Inf samples are refused naming channel and sample", "[io][brainvision]") {
  TempDir dir;
  const auto src = real("brainvision/eeglab_testbva");
  put(dir, "testbva.vhdr", neurobolt::test::read_bytes(src / "testbva.vhdr"));
  put(dir, "testbva.vmrk", neurobolt::test::read_bytes(src / "testbva.vmrk"));
  std::string data = neurobolt::test::read_bytes(src / "testbva.dat");
  // MULTIPLEXED, 32 channels: sample 11 of channel 3 (Fp1, Fp2, F3) is float number 10 * 32 + 2.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&data[(10 * 32 + 2) * 4], &nan, 4);
  put(dir, "testbva.dat", data);
  const auto path = (dir / "testbva.vhdr").string();
  CHECK_THAT(error_of([&] { neurobolt::read_brainvision(path); }),
             Catch::Contains("testbva.vhdr") && Catch::Contains("channel 'F3' sample 11") &&
                 Catch::Contains("expected a finite value, found NaN"));
  const float inf = -std::numeric_limits<float>::infinity();
  std::memcpy(&data[(10 * 32 + 2) * 4], &inf, 4);
  put(dir, "testbva.dat", data);
  CHECK_THAT(error_of([&] { neurobolt::read_brainvision(path); }), Catch::Contains("found -Inf"));
  // header_only does not look at the samples.
  ReadOptions header;
  header.header_only = true;
  CHECK(neurobolt::read_brainvision(path, header).num_samples == 2112);
}

TEST_CASE("BrainVision files that disagree with their header are refused naming file and field", "[io][brainvision]") {
  TempDir dir;
  const auto src = real("brainvision/mne_test");
  const std::string header = neurobolt::test::read_bytes(src / "test.vhdr"), header2 = neurobolt::test::read_bytes(src / "testv2.vhdr");
  const std::string markers = neurobolt::test::read_bytes(src / "test.vmrk"), data = neurobolt::test::read_bytes(src / "test.eeg");
  auto setup = [&](const std::string& vhdr, const std::string& vmrk, const std::string& eeg) {
    put(dir, "test.vmrk", vmrk);
    put(dir, "testv2.vmrk", vmrk);
    put(dir, "test.eeg", eeg);
    return put(dir, "test.vhdr", vhdr);
  };
  auto error = [&](const std::string& vhdr, const std::string& vmrk, const std::string& eeg) {
    const auto path = setup(vhdr, vmrk, eeg);
    return error_of([&] { neurobolt::read_recording(path); });
  };

  // Truncated inside a frame (32 channels x 2 bytes), and by whole frames against DataPoints.
  CHECK_THAT(error(header, markers, data.substr(0, data.size() - 10)),
             Catch::Contains("test.eeg") && Catch::Contains("file size") && Catch::Contains("multiple of 64 bytes") &&
                 Catch::Contains("found 505590 bytes"));
  CHECK_THAT(error(header2, markers, data.substr(0, data.size() - 64)),
             Catch::Contains("test.eeg") && Catch::Contains("505600 bytes (7900 DataPoints") &&
                 Catch::Contains("found 505536 bytes (7899 samples)"));
  CHECK_THAT(error(header, markers, ""), Catch::Contains("test.eeg") && Catch::Contains("at least one sample"));

  std::string h = header;
  replace_once(h, "NumberOfChannels=32", "NumberOfChannels=0");
  CHECK_THAT(error(h, markers, data), Catch::Contains("test.vhdr") &&
                                          Catch::Contains("[Common Infos] NumberOfChannels") &&
                                          Catch::Contains("found '0'"));
  h = header;
  replace_once(h, "SamplingInterval=1000", "SamplingInterval=0");
  CHECK_THAT(error(h, markers, data), Catch::Contains("test.vhdr") &&
                                          Catch::Contains("[Common Infos] SamplingInterval") &&
                                          Catch::Contains("positive sampling rate") && Catch::Contains("found '0'"));
  h = header;
  replace_once(h, "Ch5=C3,,0.5,µV\n", "");
  CHECK_THAT(error(h, markers, data), Catch::Contains("[Channel Infos] Ch5") && Catch::Contains("found none"));
  h = header;
  replace_once(h, "NumberOfChannels=32", "NumberOfChannels=33");
  CHECK_THAT(error(h, markers, data), Catch::Contains("Ch33"));

  std::string m = markers;
  replace_once(m, "Optic,O  1,7700,1,0", "Optic,O  1,9000,1,0");
  CHECK_THAT(error(header, m, data), Catch::Contains("test.vmrk") && Catch::Contains("Mk14 ('Optic/O  1') position") &&
                                         Catch::Contains("from 1 to 7900") && Catch::Contains("found 9000"));
  m = markers;
  replace_once(m, "Mk2=Stimulus,S253,487,0,0", "Mk2=Stimulus,S253,abc,0,0");
  CHECK_THAT(error(header, m, data), Catch::Contains("Mk2 position") && Catch::Contains("found 'abc'"));

  // Missing companion files are I/O errors naming them.
  const auto path = setup(header, markers, data);
  std::filesystem::remove(dir / "test.vmrk");
  try {
    neurobolt::read_recording(path);
    FAIL("expected an IoError");
  } catch (const neurobolt::IoError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("test.vmrk") && Catch::Contains("no such file"));
  }
  setup(header, markers, data);
  std::filesystem::remove(dir / "test.eeg");
  CHECK_THROWS_WITH(neurobolt::read_recording(path), Catch::Contains("test.eeg") && Catch::Contains("no such file"));
}

TEST_CASE("BrainVision layouts: VECTORIZED, INT_32 and big-endian copies read the same samples", "[io][brainvision]") {
  TempDir dir;
  const auto src = real("brainvision/mne_test");
  const Recording reference = neurobolt::read_brainvision((src / "test.vhdr").string());
  const std::string header = neurobolt::test::read_bytes(src / "test.vhdr"), data = neurobolt::test::read_bytes(src / "test.eeg");
  put(dir, "test.vmrk", neurobolt::test::read_bytes(src / "test.vmrk"));
  const int64_t channels = 32, samples = 7900;
  auto sample = [&](int64_t c, int64_t s) {
    int16_t v;
    std::memcpy(&v, &data[static_cast<std::size_t>((s * channels + c) * 2)], 2);
    return v;
  };

  struct Variant {
    const char* name;
    std::string header_edit_from, header_edit_to;
    bool vectorized, int32, big_endian;
  };
  for (const Variant& v :
       {Variant{"vectorized", "DataOrientation=MULTIPLEXED", "DataOrientation=VECTORIZED", true, false, false},
        Variant{"int32", "BinaryFormat=INT_16", "BinaryFormat=INT_32", false, true, false},
        Variant{"big-endian", "BinaryFormat=INT_16", "BinaryFormat=INT_16\nUseBigEndianOrder=YES", false, false,
                true}}) {
    INFO(v.name);
    std::string h = header;
    replace_once(h, v.header_edit_from, v.header_edit_to);
    put(dir, "test.vhdr", h);
    std::string out;
    for (int64_t i = 0; i < channels * samples; ++i) {
      const int64_t c = v.vectorized ? i / samples : i % channels, s = v.vectorized ? i % samples : i / channels;
      const int32_t value = sample(c, s);
      char bytes[4];
      const int width = v.int32 ? 4 : 2;
      std::memcpy(bytes, &value, 4);
      if (v.big_endian) std::reverse(bytes, bytes + width);
      out.append(bytes, static_cast<std::size_t>(width));
    }
    put(dir, "test.eeg", out);
    const Recording r = neurobolt::read_brainvision((dir / "test.vhdr").string());
    REQUIRE(r.num_samples == samples);
    CHECK(r.data == reference.data);
  }
}

TEST_CASE("BrainVision headers in UTF-8 and Latin-1 give the same UTF-8 names", "[io][brainvision]") {
  TempDir dir;
  const auto src = real("brainvision/mne_test");
  std::string header = neurobolt::test::read_bytes(src / "test.vhdr");
  put(dir, "test.vmrk", neurobolt::test::read_bytes(src / "test.vmrk"));
  put(dir, "test.eeg", neurobolt::test::read_bytes(src / "test.eeg"));
  replace_once(header, "Ch1=FP1,", "Ch1=Fp\xC3\xBC,");  // "Fpü" in UTF-8
  const auto path = put(dir, "test.vhdr", header);
  CHECK(neurobolt::read_brainvision(path).channels[0].name == "Fp\xC3\xBC");

  // Latin-1 bytes under "Codepage=UTF-8": decoded as Latin-1 with a warning.
  std::string latin1 = header;
  for (auto at = latin1.find("\xC3\xBC"); at != std::string::npos; at = latin1.find("\xC3\xBC"))
    latin1.replace(at, 2, "\xFC");
  for (auto at = latin1.find("\xC2\xB5"); at != std::string::npos; at = latin1.find("\xC2\xB5"))
    latin1.replace(at, 2, "\xB5");
  put(dir, "test.vhdr", latin1);
  const Recording r = neurobolt::read_brainvision(path);
  CHECK(r.channels[0].name == "Fp\xC3\xBC");
  CHECK(r.channels[0].unit == "uV");
  CHECK(r.channels[27].unit == "\xC2\xB5S");
  REQUIRE_FALSE(r.warnings.empty());
  CHECK_THAT(r.warnings[0], Catch::Contains("not valid UTF-8"));
}

namespace {

// Minimal EEGLAB .set writer (matio): the fields the reader uses, data embedded or in an .fdt.
struct SetSpec {
  double nbchan = 2, pnts = 5, trials = 1, srate = 100;
  std::vector<float> data;  // nbchan x pnts, column-major; empty: the "data" field names `fdt`
  std::string fdt;
  std::vector<std::pair<std::string, double>> events;  // type, latency
  double numeric_event_type = 0;                       // an extra event with a numeric type when > 0
  bool chanlocs = true;  // false: no chanlocs field content (channels named by number)
  mat_ft version = MAT_FT_MAT5;
  matio_compression compression = MAT_COMPRESSION_NONE;  // ZLIB with MAT5: what MATLAB's -v7 writes
};

matvar_t* number_var(double v) {
  size_t dims[2] = {1, 1};
  return Mat_VarCreate(nullptr, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &v, 0);
}

matvar_t* text_var(const std::string& s) {
  size_t dims[2] = {1, s.size()};
  return Mat_VarCreate(nullptr, MAT_C_CHAR, MAT_T_UTF8, 2, dims, const_cast<char*>(s.data()), 0);
}

void write_set(const std::string& path, const SetSpec& spec) {
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, spec.version);
  REQUIRE(mat != nullptr);
  const char* fields[] = {"nbchan", "pnts", "trials", "srate", "data", "chanlocs", "event"};
  size_t one[2] = {1, 1};
  matvar_t* eeg = Mat_VarCreateStruct("EEG", 2, one, fields, 7);
  Mat_VarSetStructFieldByName(eeg, "nbchan", 0, number_var(spec.nbchan));
  Mat_VarSetStructFieldByName(eeg, "pnts", 0, number_var(spec.pnts));
  Mat_VarSetStructFieldByName(eeg, "trials", 0, number_var(spec.trials));
  Mat_VarSetStructFieldByName(eeg, "srate", 0, number_var(spec.srate));
  if (spec.data.empty()) {
    Mat_VarSetStructFieldByName(eeg, "data", 0, text_var(spec.fdt));
  } else {
    const size_t rows = spec.nbchan >= 1 ? static_cast<size_t>(spec.nbchan) : 1;
    size_t dims[2] = {rows, spec.data.size() / rows};
    Mat_VarSetStructFieldByName(
        eeg, "data", 0,
        Mat_VarCreate(nullptr, MAT_C_SINGLE, MAT_T_SINGLE, 2, dims, const_cast<float*>(spec.data.data()), 0));
  }
  const char* chan_fields[] = {"labels", "type"};
  size_t nchan[2] = {1, spec.chanlocs ? static_cast<size_t>(spec.nbchan) : 0};
  matvar_t* chanlocs = Mat_VarCreateStruct(nullptr, 2, nchan, chan_fields, 2);
  for (size_t c = 0; c < nchan[1]; ++c) {
    Mat_VarSetStructFieldByName(chanlocs, "labels", c, text_var(c == 1 ? "VEOG" : "Cz" + std::to_string(c)));
    Mat_VarSetStructFieldByName(chanlocs, "type", c, text_var(c == 1 ? "EOG" : ""));
  }
  Mat_VarSetStructFieldByName(eeg, "chanlocs", 0, chanlocs);
  const char* event_fields[] = {"type", "latency"};
  const size_t n_events = spec.events.size() + (spec.numeric_event_type > 0 ? 1 : 0);
  size_t nev[2] = {1, n_events};
  matvar_t* events = Mat_VarCreateStruct(nullptr, 2, nev, event_fields, 2);
  for (size_t i = 0; i < spec.events.size(); ++i) {
    Mat_VarSetStructFieldByName(events, "type", i, text_var(spec.events[i].first));
    Mat_VarSetStructFieldByName(events, "latency", i, number_var(spec.events[i].second));
  }
  if (spec.numeric_event_type > 0) {
    Mat_VarSetStructFieldByName(events, "type", n_events - 1, number_var(spec.numeric_event_type));
    Mat_VarSetStructFieldByName(events, "latency", n_events - 1, number_var(2));
  }
  Mat_VarSetStructFieldByName(eeg, "event", 0, events);
  REQUIRE(Mat_VarWrite(mat, eeg, spec.compression) == 0);
  Mat_VarFree(eeg);
  Mat_Close(mat);
}

}  // namespace

TEST_CASE("EEGLAB .set with embedded data, MATLAB v5, v7 (compressed) and v7.3 (HDF5)", "[io][eeglab]") {
  TempDir dir;
  for (auto [version, compression] :
       {std::pair{MAT_FT_MAT5, MAT_COMPRESSION_NONE}, std::pair{MAT_FT_MAT5, MAT_COMPRESSION_ZLIB},
        std::pair{MAT_FT_MAT73, MAT_COMPRESSION_NONE}}) {
    INFO("version " << version << " compression " << compression);
    SetSpec spec;
    spec.version = version;
    spec.compression = compression;
    spec.data = {1, -1, 2, -2, 3, -3, 4, -4, 5, -5};  // channel 0: 1..5, channel 1: -1..-5
    spec.events = {{"square", 1.5}, {"rt", 5}};
    spec.numeric_event_type = 3;
    const auto path = (dir / "e.set").string();
    write_set(path, spec);
    const Recording r = neurobolt::read_eeglab(path);
    REQUIRE(r.num_channels() == 2);
    CHECK(r.num_samples == 5);
    CHECK(r.sample_rate == 100.0);
    CHECK(r.channels[0].name == "Cz0");
    CHECK(r.channels[1].type == neurobolt::ChannelType::eog);
    CHECK(r.channel_data(0)[4] == 5.0f);
    CHECK(r.channel_data(1)[1] == -2.0f);
    REQUIRE(r.annotations.size() == 3);
    CHECK(r.annotations[0].label == "square");
    CHECK(r.annotations[0].onset == Approx(0.005));
    CHECK(r.annotations[1].label == "3");
    CHECK(r.annotations[2].onset == Approx(0.04));
    neurobolt::ReadOptions range;
    range.first_sample = 3;
    range.channels = {"VEOG"};
    const Recording tail = neurobolt::read_eeglab(path, range);
    REQUIRE(tail.samples_in_data() == 2);
    CHECK(tail.channel_data(0)[0] == -4.0f);
    CHECK(tail.channel_data(0)[1] == -5.0f);
  }
}

TEST_CASE("broken EEGLAB files are refused naming file and field", "[io][eeglab]") {
  TempDir dir;
  const auto path = (dir / "bad.set").string();
  auto error = [&](const SetSpec& spec) {
    write_set(path, spec);
    return error_of([&] { neurobolt::read_eeglab(path); });
  };
  SetSpec good;
  good.data = std::vector<float>(10, 1.0f);
  SetSpec s = good;
  s.srate = 0;
  CHECK_THAT(error(s), Catch::Contains("bad.set") && Catch::Contains("field 'srate'") && Catch::Contains("found 0"));
  s = good;
  s.nbchan = 0;
  CHECK_THAT(error(s), Catch::Contains("field 'nbchan'") && Catch::Contains("found 0"));
  s = good;
  s.trials = 2;
  CHECK_THAT(error(s), Catch::Contains("field 'trials'") && Catch::Contains("epoched"));
  s = good;
  s.pnts = 6;
  CHECK_THAT(error(s), Catch::Contains("field 'data'") && Catch::Contains("2 x 6"));
  s = good;
  s.events = {{"late", 60}};
  CHECK_THAT(error(s), Catch::Contains("annotation 'late' onset") && Catch::Contains("at most 0.05 s") &&
                           Catch::Contains("found 0.59 s"));
  s = good;
  s.data[7] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THAT(error(s), Catch::Contains("channel 'VEOG' sample 4") && Catch::Contains("found NaN"));

  const auto not_mat = put(dir, "text.set", "this is not a MATLAB file");
  CHECK_THAT(error_of([&] { neurobolt::read_eeglab(not_mat); }),
             Catch::Contains("text.set") && Catch::Contains("MATLAB"));
}

TEST_CASE("EEGLAB .fdt that disagrees with the .set, or holds NaN, is refused", "[io][eeglab]") {
  TempDir dir;
  std::filesystem::copy_file(real("eeglab/eeglab_data.set"), dir / "eeglab_data.set");
  std::string fdt = neurobolt::test::read_bytes(real("eeglab/eeglab_data.fdt"));
  const auto path = (dir / "eeglab_data.set").string();
  put(dir, "eeglab_data.fdt", fdt.substr(0, fdt.size() - 4));
  CHECK_THAT(error_of([&] { neurobolt::read_eeglab(path); }),
             Catch::Contains("eeglab_data.fdt") && Catch::Contains("file size") &&
                 Catch::Contains("expected 3904512 bytes (32 channels x 30504 points") &&
                 Catch::Contains("found 3904508 bytes"));
  const float inf = std::numeric_limits<float>::infinity();
  std::memcpy(&fdt[(100 * 32 + 5) * 4], &inf, 4);
  put(dir, "eeglab_data.fdt", fdt);
  CHECK_THAT(error_of([&] { neurobolt::read_eeglab(path); }), Catch::Contains("eeglab_data.set") &&
                                                                  Catch::Contains("channel 'EOG2' sample 101") &&
                                                                  Catch::Contains("+Inf"));
  std::filesystem::remove(dir / "eeglab_data.fdt");
  CHECK_THROWS_AS(neurobolt::read_eeglab(path), neurobolt::IoError);

  // A renamed pair: the .set still names "eeglab_data.fdt"; "<set name>.fdt" is read instead.
  std::filesystem::copy_file(real("eeglab/eeglab_data.set"), dir / "renamed.set");
  std::filesystem::copy_file(real("eeglab/eeglab_data.fdt"), dir / "renamed.fdt");
  const Recording renamed = neurobolt::read_eeglab((dir / "renamed.set").string());
  CHECK(renamed.num_samples == 30504);
  REQUIRE(renamed.warnings.size() == 1);
  CHECK_THAT(renamed.warnings[0], Catch::Contains("renamed.fdt"));
}

// Issue 13: sizes a header claims are checked against the file before anything of that size is
// allocated; names from files are quoted printable; counts are in words that agree.

TEST_CASE("a BrainVision DataPoints far beyond the data file is refused in a header-only read", "[io][brainvision]") {
  TempDir dir;
  const auto src = real("brainvision/mne_test");
  std::string header = neurobolt::test::read_bytes(src / "testv2.vhdr");
  replace_once(header, "DataPoints=7900", "DataPoints=4000000000000000000");
  put(dir, "testv2.vmrk", neurobolt::test::read_bytes(src / "test.vmrk"));
  put(dir, "test.eeg", neurobolt::test::read_bytes(src / "test.eeg"));
  const auto path = put(dir, "testv2.vhdr", header);
  ReadOptions head;
  head.header_only = true;
  std::string message;
  try {
    neurobolt::read_recording(path, head);
  } catch (const neurobolt::FormatError& e) {
    message = e.what();
  }
  CHECK_THAT(message, Catch::Contains("test.eeg") && Catch::Contains("file size") &&
                          Catch::Contains("more than 2^63 bytes (4000000000000000000 DataPoints x 32 channels") &&
                          Catch::Contains("found 505600 bytes (7900 samples)"));
  // Without the data file the header's DataPoints is all there is: taken, with a warning.
  std::filesystem::remove(dir / "test.eeg");
  const Recording r = neurobolt::read_recording(path, head);
  CHECK(r.num_samples == 4000000000000000000);
  REQUIRE_FALSE(r.warnings.empty());
  CHECK_THAT(r.warnings.back(), Catch::Contains("not found") && Catch::Contains("unchecked"));
}

TEST_CASE("EEGLAB nbchan and pnts are checked against the data before channels are allocated", "[io][eeglab]") {
  TempDir dir;
  const auto path = (dir / "huge.set").string();
  SetSpec spec;
  spec.nbchan = 1e9;
  spec.pnts = 1000;
  spec.chanlocs = false;
  spec.fdt = "huge.fdt";
  write_set(path, spec);
  put(dir, "huge.fdt", std::string(40, '\0'));
  ReadOptions head;
  head.header_only = true;
  for (const auto& options : {ReadOptions{}, head}) {
    std::string message;
    try {
      neurobolt::read_eeglab(path, options);
    } catch (const neurobolt::FormatError& e) {
      message = e.what();
    }
    CHECK_THAT(message, Catch::Contains("huge.fdt': file size: expected 4000000000000 bytes (1000000000 channels x "
                                        "1000 points") &&
                            Catch::Contains("found 40 bytes"));
  }
  // Header-only without the .fdt: nbchan has a documented bound instead.
  std::filesystem::remove(dir / "huge.fdt");
  std::string message;
  try {
    neurobolt::read_eeglab(path, head);
  } catch (const neurobolt::FormatError& e) {
    message = e.what();
  }
  CHECK_THAT(message, Catch::Contains("field 'nbchan': expected at most 65536 channels") &&
                          Catch::Contains("found 1000000000"));
  // The full read names the missing file once.
  CHECK(error_of([&] { neurobolt::read_eeglab(path); }) ==
        fmt::format("'{}': the data file '{}' named in field 'data' is missing", path, (dir / "huge.fdt").string()));

  // Embedded data whose dims disagree: counted in words that agree with the number.
  SetSpec one;
  one.nbchan = 1;
  one.pnts = 3;
  one.data = {7.0f};
  write_set(path, one);
  CHECK_THAT(error_of([&] { neurobolt::read_eeglab(path); }),
             Catch::Contains("field 'data': expected a 1 x 3 matrix (nbchan x pnts), found 1 value in 1 row"));
}

TEST_CASE("EDF labels with control bytes are escaped in messages; negative sample counts say so", "[io][edf]") {
  TempDir dir;
  std::string edf = neurobolt::test::read_bytes(real("edf/eeglab_test.edf"));
  const int ns = std::stoi(edf.substr(252, 4));
  std::string bad = edf;
  bad[256] = 'A';
  bad[257] = '\0';
  bad[258] = 'B';
  set_field(bad, 256 + ns * 216, 8, "-256");
  const auto path = put(dir, "nul.edf", bad);
  CHECK_THAT(error_of([&] { neurobolt::read_edf(path); }),
             Catch::Contains("signal 1 ('A\\x00B") &&
                 Catch::Contains("number of samples in each data record: expected at least 1 (a positive sampling "
                                 "rate), found -256 (a negative count)"));
  set_field(bad, 256 + ns * 216, 8, "0");
  put(dir, "nul.edf", bad);
  CHECK_THAT(error_of([&] { neurobolt::read_edf(path); }), Catch::Contains("found 0 (a sampling rate of 0 Hz)"));
}

TEST_CASE("printable escapes control bytes and invalid UTF-8 and keeps valid UTF-8", "[io]") {
  using neurobolt::io::printable;
  CHECK(printable(std::string("Fp1\0x", 5)) == "Fp1\\x00x");
  CHECK(printable("a\nb\x1b") == "a\\x0ab\\x1b");
  CHECK(printable("\xC2\xB5V Fp1\xC3\xA4") == "\xC2\xB5V Fp1\xC3\xA4");
  CHECK(printable("latin\xE4") == "latin\\xe4");
  CHECK(printable(std::string(100, 'x'), 10) == std::string(10, 'x') + "...");
}

TEST_CASE("count_of: counts in messages agree with their noun", "[core]") {
  CHECK(neurobolt::count_of(1, "ROI") == "1 ROI");
  CHECK(neurobolt::count_of(3, "ROI") == "3 ROIs");
  CHECK(neurobolt::count_of(0, "value") == "0 values");
  CHECK(neurobolt::count_of(1, "entry", "entries") == "1 entry");
  CHECK(neurobolt::count_of(2, "entry", "entries") == "2 entries");
}

TEST_CASE("an output path holding a dangling symlink exists; temporary files are created exclusively", "[core]") {
  TempDir dir;
  const auto link = dir / "out.h5";
  std::filesystem::create_symlink(dir / "nowhere", link);
  CHECK_THROWS_AS(neurobolt::detail::check_writable_output(link, false), neurobolt::IoError);
  CHECK_THAT(error_of([&] { neurobolt::detail::AtomicOutput out(link, false); }),
             Catch::Contains("already exists (use --force to overwrite)"));
  {
    neurobolt::detail::AtomicOutput out(link, true);
    CHECK(std::filesystem::is_regular_file(std::filesystem::symlink_status(out.temp_path())));
    std::ofstream(out.temp_path()) << "new";
    out.commit();
  }
  // --force replaces the link itself; its (missing) target is never created.
  CHECK(std::filesystem::is_regular_file(std::filesystem::symlink_status(link)));
  CHECK_FALSE(std::filesystem::exists(dir / "nowhere"));
}

TEST_CASE("HDF5 attributes beyond 64 KiB (3000 ROI names) are written and read back", "[io][h5]") {
  TempDir dir;
  std::string names = "[";
  for (int i = 0; i < 3000; ++i) names += fmt::format("{}\"Left-Hemisphere-ROI-{:04d}\"", i ? "," : "", i);
  names += "]";
  REQUIRE(names.size() > 65536);
  const auto path = (dir / "long.h5").string();
  {
    auto file = neurobolt::h5::File::create(path);
    file.set_attribute("/", "roi_names", names);
    file.create_group("/g");
    file.set_attribute("/g", "config", names + names);
  }
  const auto file = neurobolt::h5::File::open_read(path);
  CHECK(file.string_attribute("/", "roi_names") == names);
  CHECK(file.string_attribute("/g", "config") == names + names);

  // A file written in the old (HDF5 1.6 object) layout is read as before.
  const auto old_path = (dir / "old.h5").string();
  {
    const hid_t f = H5Fcreate(old_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 7);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(f, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, type, "old-one");
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(f);
  }
  CHECK(neurobolt::h5::File::open_read(old_path).string_attribute("/", "format") == "old-one");
}

TEST_CASE("A .set whose struct dims promise more than the file holds is refused before matio reads it",
          "[io][eeglab]") {
  TempDir dir;
  const auto path = (dir / "bad.set").string();
  SetSpec spec;
  spec.data = {1, -1, 2, -2, 3, -3, 4, -4, 5, -5};
  write_set(path, spec);
  std::string bytes = neurobolt::test::read_bytes(path);
  // chanlocs, the only 1 x 2 array: its dims element (miINT32, 8 bytes) becomes 1 x 2^28, which
  // made matio allocate 2^28 x 2 fields (fuzz_eeglab).
  const std::string dims("\x05\0\0\0\x08\0\0\0\x01\0\0\0\x02\0\0\0", 16);
  const auto at = bytes.find(dims);
  REQUIRE(at != std::string::npos);
  REQUIRE(bytes.find(dims, at + 1) == std::string::npos);
  bytes[at + 12] = 0;
  bytes[at + 15] = 0x10;
  put(dir, "bad.set", bytes);
  CHECK_THAT(error_of([&] { neurobolt::read_eeglab(path); }),
             Catch::Contains("bad.set") && Catch::Contains("variable 'EEG', fields") &&
                 Catch::Contains("found 268435456 elements x 2 fields"));
}
