// The EDF reader and the header/marker parsers on inputs built here byte by byte: EDF+D/BDF+D
// gaps, mixed sampling rates, malformed TALs, and each parser called on buffers and strings (what
// the fuzz targets call).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>

#include "io/brainvision_parser.hpp"
#include "io/edf_header.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"
#include "test_support.hpp"

using neurobolt::ReadOptions;
using neurobolt::Recording;
using neurobolt::test::error_of;

namespace {

struct SignalSpec {
  std::string label;
  int samples_per_record = 4;
  std::string dimension = "uV";
  std::string physical_min = "-3276.8", physical_max = "3276.7";
  std::string digital_min = "-32768", digital_max = "32767";
  bool annotation = false;
};

struct EdfSpec {
  bool bdf = false;
  std::string reserved;  // "EDF+C", "EDF+D", "BDF+D", ...
  int records = 2;
  std::string records_text;  // overrides `records` in the header when set
  std::string duration = "1";
  std::vector<SignalSpec> signals;
  // TAL text of annotation signal `s` in record `r` (without zero padding); default: the
  // time-keeping TAL "+<r * duration>".
  std::function<std::string(int r, int s)> tal;
  // Record start times for the default time-keeping TALs (EDF+D).
  std::vector<double> onsets;
};

// A string literal with its embedded zero bytes (TALs are zero-separated).
template <std::size_t N>
std::string bytes_of(const char (&text)[N]) {
  return std::string(text, N - 1);
}

std::string field(std::string text, std::size_t width) {
  text.resize(width, ' ');
  return text;
}

// Digital value of data signal `s`, sample `i` of record `r`: easy to recognise after reading.
int digital_value(int r, int s, int i) { return 100 * r + 10 * s + i; }

std::string build_edf(const EdfSpec& spec) {
  const std::size_t ns = spec.signals.size();
  std::string h;
  h += spec.bdf ? std::string(
                      "\xff"
                      "BIOSEMI")
                : field("0", 8);
  h += field("X X X X", 80);
  h += field("Startdate 02-JAN-2003 X X X", 80);
  h += "02.01.03";
  h += "04.05.06";
  h += field(std::to_string(256 * (ns + 1)), 8);
  h += field(spec.reserved, 44);
  h += field(spec.records_text.empty() ? std::to_string(spec.records) : spec.records_text, 8);
  h += field(spec.duration, 8);
  h += field(std::to_string(ns), 4);
  for (const auto& s : spec.signals) h += field(s.label, 16);
  for (std::size_t i = 0; i < ns; ++i) h += field("", 80);
  for (const auto& s : spec.signals) h += field(s.annotation ? "" : s.dimension, 8);
  for (const auto& s : spec.signals) h += field(s.physical_min, 8);
  for (const auto& s : spec.signals) h += field(s.physical_max, 8);
  for (const auto& s : spec.signals) h += field(s.annotation ? (spec.bdf ? "-8388608" : "-32768") : s.digital_min, 8);
  for (const auto& s : spec.signals) h += field(s.annotation ? (spec.bdf ? "8388607" : "32767") : s.digital_max, 8);
  for (std::size_t i = 0; i < ns; ++i) h += field("", 80);
  for (const auto& s : spec.signals) h += field(std::to_string(s.samples_per_record), 8);
  for (std::size_t i = 0; i < ns; ++i) h += field("", 32);
  const int bps = spec.bdf ? 3 : 2;
  const double duration = std::stod(spec.duration);
  for (int r = 0; r < spec.records; ++r) {
    int annotation_index = 0;
    for (std::size_t s = 0; s < ns; ++s) {
      const auto& sig = spec.signals[s];
      const std::size_t bytes = static_cast<std::size_t>(sig.samples_per_record * bps);
      if (sig.annotation) {
        std::string tal;
        if (spec.tal) {
          tal = spec.tal(r, annotation_index);
        } else if (annotation_index == 0) {
          const double onset = spec.onsets.empty() ? r * duration : spec.onsets[static_cast<std::size_t>(r)];
          char text[64];
          std::snprintf(text, sizeof text, "+%g\x14\x14", onset);
          tal = text;
        }
        tal += '\0';
        REQUIRE(tal.size() <= bytes);
        tal.resize(bytes, '\0');
        h += tal;
        ++annotation_index;
      } else {
        for (int i = 0; i < sig.samples_per_record; ++i) {
          const int v = digital_value(r, static_cast<int>(s), i);
          for (int b = 0; b < bps; ++b) h.push_back(static_cast<char>((v >> (8 * b)) & 0xFF));
        }
      }
    }
  }
  return h;
}

std::string write(const neurobolt::test::TempDir& dir, const std::string& name, const std::string& bytes) {
  const auto path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

SignalSpec eeg(const std::string& label, int spr = 4) {
  SignalSpec s;
  s.label = label;
  s.samples_per_record = spr;
  return s;
}

SignalSpec annotations(int spr = 30) {
  SignalSpec s;
  s.label = "EDF Annotations";
  s.samples_per_record = spr;
  s.annotation = true;
  return s;
}


}  // namespace

TEST_CASE("EDF+C built here reads back exactly", "[io][edf]") {
  neurobolt::test::TempDir dir;
  EdfSpec spec;
  spec.reserved = "EDF+C";
  spec.records = 3;
  spec.signals = {eeg("EEG Fp1"), eeg("EEG Fp2"), annotations()};
  spec.tal = [](int r, int) {
    std::string t = "+" + std::to_string(r) + "\x14\x14";
    if (r == 1)
      t += bytes_of(
          "\0+1.25\x15"
          "0.5\x14R128\x14Scan Start\x14");
    return t;
  };
  const Recording rec = neurobolt::read_edf(write(dir, "a.edf", build_edf(spec)));
  CHECK(rec.format == "EDF+C");
  CHECK(rec.sample_rate == 4.0);
  REQUIRE(rec.num_samples == 12);
  // gain 0.1 uV per step, offset 0: digital 100 r + 10 s + i.
  CHECK(rec.channel_data(1)[5] == Approx(0.1 * (100 * 1 + 10 * 1 + 1)));
  REQUIRE(rec.annotations.size() == 2);
  CHECK(rec.annotations[0].label == "R128");
  CHECK(rec.annotations[1].label == "Scan Start");
  CHECK(rec.annotations[0].onset == 1.25);
  CHECK(rec.annotations[0].duration == 0.5);
  CHECK(rec.start_time == "2003-01-02T04:05:06");
  CHECK(rec.warnings.empty());
}

TEST_CASE("EDF+ annotations come from every annotation signal", "[io][edf]") {
  neurobolt::test::TempDir dir;
  EdfSpec spec;
  spec.reserved = "EDF+C";
  spec.signals = {annotations(), eeg("EEG Cz"), annotations(20)};
  spec.tal = [](int r, int s) {
    if (s == 0)
      return "+" + std::to_string(r) + "\x14\x14" +
             (r == 1 ? bytes_of("\0+1.5\x14"
                                "first\x14")
                     : "");
    return r == 0 ? bytes_of(
                        "+0.25\x15"
                        "1\x14second\x14")
                  : std::string();
  };
  const Recording rec = neurobolt::read_edf(write(dir, "two.edf", build_edf(spec)));
  REQUIRE(rec.num_channels() == 1);
  REQUIRE(rec.annotations.size() == 2);
  CHECK(rec.annotations[0].label == "second");
  CHECK(rec.annotations[0].onset == 0.25);
  CHECK(rec.annotations[0].duration == 1.0);
  CHECK(rec.annotations[1].label == "first");
  CHECK(rec.annotations[1].onset == 1.5);
}

TEST_CASE("EDF+D records are placed at their true times with NaN gaps", "[io][edf]") {
  neurobolt::test::TempDir dir;
  for (bool bdf : {false, true}) {
    INFO((bdf ? "BDF+D" : "EDF+D"));
    EdfSpec spec;
    spec.bdf = bdf;
    spec.reserved = bdf ? "BDF+D" : "EDF+D";
    spec.records = 3;
    spec.onsets = {0.5, 1.5, 6.5};  // a 4 s gap after the second record; the first starts at +0.5 s
    auto a = annotations();
    if (bdf) a.label = "BDF Annotations";
    spec.signals = {eeg("C3"), a};
    const Recording rec = neurobolt::read_edf(write(dir, bdf ? "d.bdf" : "d.edf", build_edf(spec)));
    CHECK(rec.format == (bdf ? "BDF+" : "EDF+D"));
    REQUIRE(rec.num_samples == 4 * 7);
    REQUIRE(rec.gaps.size() == 1);
    CHECK(rec.gaps[0].onset == 2.0);
    CHECK(rec.gaps[0].duration == 4.0);
    // The first sample is at +0.5 s: the start time says so.
    CHECK(rec.start_time == "2003-01-02T04:05:06.500000");
    const float* x = rec.channel_data(0);
    CHECK(x[0] == Approx(0.1 * digital_value(0, 0, 0)));
    CHECK(x[4] == Approx(0.1 * digital_value(1, 0, 0)));
    for (int s = 8; s < 24; ++s) CHECK(std::isnan(x[s]));
    CHECK(x[24] == Approx(0.1 * digital_value(2, 0, 0)));
    CHECK(x[27] == Approx(0.1 * digital_value(2, 0, 3)));
    // A range across the gap: the same samples and NaN.
    neurobolt::ReadOptions range;
    range.first_sample = 6;
    range.sample_count = 20;
    const Recording part = neurobolt::read_edf(write(dir, bdf ? "d.bdf" : "d.edf", build_edf(spec)), range);
    REQUIRE(part.samples_in_data() == 20);
    for (int s = 0; s < 20; ++s) {
      if (std::isnan(x[6 + s])) {
        CHECK(std::isnan(part.channel_data(0)[s]));
      } else {
        CHECK(part.channel_data(0)[s] == x[6 + s]);
      }
    }
  }
}

TEST_CASE("EDF+D records that overlap, and EDF+C records that do not follow each other, are refused", "[io][edf]") {
  neurobolt::test::TempDir dir;
  EdfSpec spec;
  spec.reserved = "EDF+D";
  spec.records = 3;
  spec.onsets = {0, 1, 1.5};
  spec.signals = {eeg("C3"), annotations()};
  const std::string overlap = error_of([&] { neurobolt::read_edf(write(dir, "o.edf", build_edf(spec))); });
  CHECK_THAT(overlap, Catch::Contains("o.edf") && Catch::Contains("data record 3 time-keeping TAL") &&
                          Catch::Contains("at least +2 s") && Catch::Contains("found +1.5 s"));

  spec.reserved = "EDF+C";
  spec.onsets = {0, 1, 3};
  const std::string glued = error_of([&] { neurobolt::read_edf(write(dir, "c.edf", build_edf(spec))); });
  CHECK_THAT(glued, Catch::Contains("c.edf") && Catch::Contains("data record 3") && Catch::Contains("expected +2 s") &&
                        Catch::Contains("found +3 s") && Catch::Contains("EDF+D"));
}

TEST_CASE("EDF annotations after the end are refused, or dropped on request", "[io][edf]") {
  neurobolt::test::TempDir dir;
  EdfSpec spec;
  spec.reserved = "EDF+C";
  spec.signals = {eeg("C3"), annotations()};
  spec.tal = [](int r, int) {
    std::string t = "+" + std::to_string(r) + "\x14\x14";
    if (r == 0) t += bytes_of("\0+100\x14late\x14");
    return t;
  };
  const auto path = write(dir, "late.edf", build_edf(spec));
  const std::string error = error_of([&] { neurobolt::read_edf(path); });
  CHECK_THAT(error, Catch::Contains("late.edf") && Catch::Contains("annotation 'late' onset") &&
                        Catch::Contains("at most 2 s") && Catch::Contains("found 100 s"));
  ReadOptions options;
  options.drop_annotations_after_end = true;
  const Recording rec = neurobolt::read_edf(path, options);
  CHECK(rec.annotations.empty());
  REQUIRE(rec.warnings.size() == 1);
  CHECK_THAT(rec.warnings[0], Catch::Contains("'late' at 100 s"));
}

TEST_CASE("EDF signals at several rates: the highest rate is loaded, the others named", "[io][edf]") {
  neurobolt::test::TempDir dir;
  EdfSpec spec;
  spec.signals = {eeg("EEG C3", 8), eeg("Resp chest", 2), eeg("EEG C4", 8)};
  spec.signals[1].dimension = "mV";
  const auto path = write(dir, "mixed.edf", build_edf(spec));
  const Recording rec = neurobolt::read_edf(path);
  REQUIRE(rec.num_channels() == 2);
  CHECK(rec.sample_rate == 8.0);
  CHECK_THAT(rec.warnings.at(0), Catch::Contains("'Resp chest' (2 Hz)"));

  ReadOptions only_resp;
  only_resp.channels = {"Resp chest"};
  const Recording resp = neurobolt::read_edf(path, only_resp);
  CHECK(resp.sample_rate == 2.0);
  CHECK(resp.channels[0].type == neurobolt::ChannelType::misc);
  CHECK(resp.channels[0].unit == "uV");  // mV converted to microvolts
  CHECK(resp.channel_data(0)[1] == Approx(1000 * 0.1 * digital_value(0, 1, 1)));

  ReadOptions both;
  both.channels = {"EEG C3", "Resp chest"};
  CHECK_THROWS_AS(neurobolt::read_edf(path, both), neurobolt::ConfigError);
}

TEST_CASE("EDF header oddities that EDFlib refuses are read with a warning", "[io][edf]") {
  neurobolt::test::TempDir dir;
  EdfSpec spec;
  spec.records_text = "  2";
  spec.signals = {eeg("EEG O1")};
  const Recording rec = neurobolt::read_edf(write(dir, "spaces.edf", build_edf(spec)));
  CHECK(rec.num_samples == 8);
  REQUIRE(rec.warnings.size() == 2);
  CHECK_THAT(rec.warnings[0], Catch::Contains("leading spaces in: number of data records"));
  CHECK_THAT(rec.warnings[1], Catch::Contains("EDFlib") && Catch::Contains("refuses"));

  // "-1" data records (a recording that was never closed): counted from the file size.
  spec.records_text = "-1";
  const Recording open = neurobolt::read_edf(write(dir, "open.edf", build_edf(spec)));
  CHECK(open.num_samples == 8);
  CHECK_THAT(open.warnings[0], Catch::Contains("-1"));
}

TEST_CASE("EDF header parser on buffers: fields, sizes and the EDFlib refusal notes", "[io][edf]") {
  namespace edf = neurobolt::io::edf;
  EdfSpec spec;
  spec.reserved = "EDF+C";
  spec.signals = {eeg("EEG Fz"), annotations()};
  const std::string bytes = build_edf(spec);
  const auto h = edf::parse_header(bytes, static_cast<int64_t>(bytes.size()), "buf");
  CHECK(h.plus);
  CHECK_FALSE(h.discontinuous);
  CHECK(h.num_records == 2);
  CHECK(h.record_bytes == 4 * 2 + 30 * 2);
  CHECK(h.signals[1].annotation);
  CHECK(h.signals[1].record_offset == 8);
  CHECK(h.signals[0].gain() == Approx(0.1));
  CHECK(h.edflib_refusals.empty());
  CHECK(h.warnings.empty());

  CHECK_THAT(error_of([&] { edf::parse_header(bytes.substr(0, 100), 100, "buf"); }),
             Catch::Contains("file size") && Catch::Contains("at least 256 bytes"));
  CHECK_THAT(error_of([&] { edf::parse_header(bytes.substr(0, 600), 600, "buf"); }),
             Catch::Contains("at least 768 bytes") && Catch::Contains("found 600 bytes"));
  CHECK_THAT(error_of([&] { edf::parse_header(bytes, static_cast<int64_t>(bytes.size()) - 1, "buf"); }),
             Catch::Contains("file size") && Catch::Contains("truncated"));
  std::string edited = bytes;
  std::memcpy(&edited[244], "abc     ", 8);
  CHECK_THAT(error_of([&] { edf::parse_header(edited, static_cast<int64_t>(edited.size()), "buf"); }),
             Catch::Contains("duration of a data record") && Catch::Contains("found 'abc     '"));
}

TEST_CASE("TAL parser: onsets, durations, several texts, time-keeping and malformed TALs", "[io][edf]") {
  namespace edf = neurobolt::io::edf;
  std::vector<edf::TalAnnotation> out;
  std::vector<std::string> warnings;
  double onset = -1;
  const std::string block = bytes_of(
      "+12.5\x14\x14\0-0.25\x15"
      "3\x14"
      "a\x14"
      "b\x14\0\0\0");
  edf::parse_tal_block(block, true, "rec 1", "f.edf", &onset, out, warnings);
  CHECK(onset == 12.5);
  REQUIRE(out.size() == 2);
  CHECK(out[0].onset == -0.25);
  CHECK(out[0].duration == 3);
  CHECK(out[1].text == "b");
  CHECK(warnings.empty());

  out.clear();
  edf::parse_tal_block(bytes_of("+1\x14\xb5V\x14\0"), false, "rec 2", "f.edf", &onset, out, warnings);
  CHECK(out.at(0).text == "\xC2\xB5V");
  CHECK(warnings.size() == 1);

  auto bad = [&](const std::string& tal, bool timekeeping) {
    return error_of(
        [&] { edf::parse_tal_block(tal, timekeeping, "data record 3 signal 2", "f.edf", &onset, out, warnings); });
  };
  CHECK_THAT(bad(bytes_of("+1\x14text\x14"), false), Catch::Contains("zero byte"));
  CHECK_THAT(bad(bytes_of("1\x14text\x14\0"), false), Catch::Contains("TAL onset") && Catch::Contains("'1'"));
  CHECK_THAT(bad(bytes_of("+1\x15-2\x14x\x14\0"), false), Catch::Contains("TAL duration"));
  CHECK_THAT(bad(bytes_of("+1\x14x\x14\0"), true), Catch::Contains("time-keeping TAL"));
  CHECK_THAT(bad(std::string(8, '\0'), true), Catch::Contains("data record 3 signal 2") && Catch::Contains("no TAL"));
}

TEST_CASE("BrainVision parsers on strings: fields, escapes, code pages, versions", "[io][brainvision]") {
  namespace bv = neurobolt::io::brainvision;
  const std::string header =
      "Brain Vision Data Exchange Header File Version 2.0\r\n"
      "[Common Infos]\r\nCodepage=UTF-8\r\nDataFile=x.eeg\r\nMarkerFile=x.vmrk\r\nDataFormat=BINARY\r\n"
      "DataOrientation=VECTORIZED\r\nNumberOfChannels=2\r\nDataPoints=10\r\nSamplingInterval=200\r\n"
      "[Binary Infos]\r\nBinaryFormat=INT_32\r\n"
      "[Channel Infos]\r\nCh1=Fp1\\1a,,0.1,\xC2\xB5V\r\nCh2=GSR,,2,\xC2\xB5S\r\n"
      "[Comment]\r\nCh3=not,a,channel\r\n";
  const auto h = bv::parse_header(header, "x.vhdr");
  CHECK(h.version == 2);
  CHECK(h.orientation == bv::Orientation::vectorized);
  CHECK(h.format == bv::BinaryFormat::int32);
  CHECK(h.sample_rate() == 5000.0);
  CHECK(h.data_points == 10);
  REQUIRE(h.channels.size() == 2);
  CHECK(h.channels[0].name == "Fp1,a");
  CHECK(h.channels[0].resolution == 0.1);
  CHECK(h.channels[1].unit == "\xC2\xB5S");

  // The same header in Latin-1 without a Codepage: decoded, µ intact.
  std::string latin1 = header;
  latin1.replace(latin1.find("Codepage=UTF-8\r\n"), 16, "");
  for (std::size_t at = latin1.find("\xC2\xB5"); at != std::string::npos; at = latin1.find("\xC2\xB5"))
    latin1.replace(at, 2, "\xB5");
  CHECK(bv::parse_header(latin1, "x.vhdr").channels[1].unit == "\xC2\xB5S");

  auto error = [&](const std::string& from, const std::string& to) {
    std::string edited = header;
    edited.replace(edited.find(from), from.size(), to);
    return error_of([&] { bv::parse_header(edited, "x.vhdr"); });
  };
  CHECK_THAT(error("NumberOfChannels=2", "NumberOfChannels=0"),
             Catch::Contains("'x.vhdr'") && Catch::Contains("NumberOfChannels") && Catch::Contains("found '0'"));
  CHECK_THAT(error("SamplingInterval=200", "SamplingInterval=0"),
             Catch::Contains("SamplingInterval") && Catch::Contains("found '0'"));
  CHECK_THAT(error("Ch2=GSR", "Ch5=GSR"), Catch::Contains("Ch5") && Catch::Contains("1 to 2"));
  CHECK_THAT(error("INT_32", "INT_8"), Catch::Contains("BinaryFormat") && Catch::Contains("'INT_8'"));
  CHECK_THAT(error("Brain Vision Data Exchange Header File", "Some Other File"), Catch::Contains("first line"));
  CHECK_THAT(error("DataFormat=BINARY", "DataFormat=ASCII"), Catch::Contains("DataFormat") && Catch::Contains("ASCII"));

  const std::string markers =
      "Brain Vision Data Exchange Marker File, Version 1.0\n[Marker Infos]\n"
      "Mk1=New Segment,,1,1,0,20130410102740488278\nMk2=Scanner,Scan Start,37,1,0\n"
      "Mk3=Response,R128,40,,\nMk4=Stimulus,S  1\\1x,41,1,0,,false\n";
  const auto m = bv::parse_markers(markers, "x.vmrk");
  REQUIRE(m.markers.size() == 4);
  CHECK(m.markers[1].type == "Scanner");
  CHECK(m.markers[1].description == "Scan Start");
  CHECK(m.markers[1].position == 37);
  CHECK(m.markers[2].points == 0);
  CHECK(m.markers[3].description == "S  1,x");
  CHECK(bv::marker_date_to_iso(m.markers[0].date) == "2013-04-10T10:27:40.488278");
  CHECK(bv::marker_date_to_iso("00000000000000000000").empty());
  CHECK_THAT(error_of([&] {
               bv::parse_markers("Brain Vision Data Exchange Marker File, Version 1.0\n[Marker Infos]\nMk1=A,B,0,1,0\n",
                                 "x.vmrk");
             }),
             Catch::Contains("Mk1 position") && Catch::Contains("found '0'"));
  CHECK_THAT(error_of([&] { bv::parse_markers("[Marker Infos]\nMk1=A,B,1,1,0\n", "x.vmrk"); }),
             Catch::Contains("first line"));
}
