// The EEG readers against an independent reader: every real file in ../shared/data/real/{edf,bdf,
// brainvision,eeglab} compared with what MNE-Python 1.3 reads from it (expected/*.json), and
// the EDF reader against EDFlib's own sample and annotation reading.
//
// Tolerances: one quantisation step ((physical range) / (digital range) for EDF/BDF, the
// resolution for BrainVision integers; 1e-4 relative for float data), plus the 5e-5 rounding of
// the JSON values, plus float32's rounding of the stored sample (2^-23 relative: DC-coupled
// channels sit at +-200000 uV where float32 resolves 0.016 uV, more than their 0.0004 uV step).
//
// Where we differ from MNE on purpose, the test says so:
//  - Channel types. MNE 1.3 calls every EDF/BDF channel EEG (read_raw_edf's infer_types is off by
//    default) and every EEGLAB channel EEG; we use the EDF label prefix ("ECG ECG1" is ECG,
//    "SaO2 X9" misc) and names ("REOG", "EOG1", "VEOGo" are EOG, "Ekg1" ECG, "Status" and
//    "DIG DTRIG" triggers). MNE calls BrainVision channels misc whose [Coordinates] are all zero
//    (no electrode position: testbva's Eog/Ekg1/Ekg2, testv2's HL/HR/Vb/ReRef); we do not use
//    electrode positions for types.
//  - MNE reports channels it typed misc in volts, and microsiemens channels in siemens (rounded
//    to 1e-4, so only a 50 uV / 50 uS check is possible against the JSON); we keep a non-voltage
//    channel in the file's unit. Where the same samples exist in another file (testv2 shares
//    test.eeg with test.vhdr) we compare with that file instead.
//  - BDF "Status": a trigger channel with its stored unit "Boolean" for us; MNE treats it as a
//    voltage and reports it x1e6.
//  - testv2.vmrk has three markers past the last sample: MNE leaves them out with a warning; we
//    refuse the file unless ReadOptions::drop_annotations_after_end is set.
#include <edflib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "io/edf_header.hpp"
#include "neurobolt/bench.hpp"
#include "neurobolt/error.hpp"
#include "neurobolt/recording.hpp"
#include "test_support.hpp"

using neurobolt::ChannelType;
using neurobolt::ReadOptions;
using neurobolt::Recording;
using nlohmann::json;

namespace {

std::filesystem::path real_dir() { return neurobolt::test::shared_dir() / "data" / "real"; }

json expected(const std::string& file_name) {
  std::ifstream in(real_dir() / "expected" / (file_name + ".json"));
  REQUIRE(in.good());
  return json::parse(in);
}

std::string real(const std::string& relative) { return (real_dir() / relative).string(); }

struct Stats {
  double mean = 0, std = 0;
};

Stats stats(const float* x, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  Stats s;
  s.mean = sum / static_cast<double>(n);
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += (x[i] - s.mean) * (x[i] - s.mean);
  s.std = std::sqrt(ss / static_cast<double>(n));
  return s;
}

// How one channel is compared: `step` is the quantisation step in the channel's unit (0 for
// float data, which uses `relative`), `scale` converts MNE's reported value to our unit.
struct ChannelCheck {
  double step = 0;
  double relative = 0;
  double scale = 1;
  bool skip = false;  // compared elsewhere (documented at the call)
};

double tolerance(double value, const ChannelCheck& check) {
  return check.step + 5e-5 * std::fabs(check.scale) * 1.0001 + check.relative * std::fabs(value) +
         2.4e-7 * std::fabs(value) + 1e-9;
}

void compare_samples(const Recording& r, const json& e, const std::vector<ChannelCheck>& checks) {
  REQUIRE(r.num_channels() == static_cast<int64_t>(e["ch_names"].size()));
  REQUIRE(r.data.size() == static_cast<std::size_t>(r.num_channels() * r.num_samples));
  for (int64_t c = 0; c < r.num_channels(); ++c) {
    const auto& check = checks[static_cast<std::size_t>(c)];
    if (check.skip) continue;
    INFO("channel " << r.channels[c].name);
    const float* x = r.channel_data(c);
    for (int k = 0; k < 5; ++k) {
      const double want = e["first5"][c][k].get<double>() * check.scale;
      CHECK(std::fabs(x[k] - want) <= tolerance(want, check));
    }
    const Stats s = stats(x, r.num_samples);
    const double mean = e["mean"][c].get<double>() * check.scale, sd = e["std"][c].get<double>() * check.scale;
    CHECK(std::fabs(s.mean - mean) <= tolerance(mean, check));
    CHECK(std::fabs(s.std - sd) <= tolerance(sd, check));
  }
}

// MNE reports voltages in uV; a channel MNE thinks is a voltage but we keep in its own unit
// (BDF Status) is x1e6 there; one MNE typed misc but we read as a voltage is in V there, and so
// is a microsiemens channel (MNE converts "µS"/"uS" to S; we keep the file's unit).
double mne_scale(const Recording& r, const json& e, int64_t c) {
  const bool mne_uv = e["unit_is_volt_reported_in_uV"][c].get<bool>();
  const std::string& unit = r.channels[c].unit;
  if (mne_uv && unit != "uV") return 1e-6;
  if (!mne_uv && (unit == "uV" || unit == "uS" || unit == "\xC2\xB5S")) return 1e6;
  return 1;
}

std::vector<ChannelCheck> edf_checks(const Recording& r, const json& e) {
  const auto h = neurobolt::io::edf::parse_header(
      [&] {
        std::ifstream in(r.source, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
      }(),
      static_cast<int64_t>(std::filesystem::file_size(r.source)), r.source);
  std::vector<ChannelCheck> checks;
  for (int64_t c = 0; c < r.num_channels(); ++c) {
    for (const auto& s : h.signals) {
      if (s.annotation || s.label != r.channels[c].name) continue;
      ChannelCheck check;
      check.scale = mne_scale(r, e, c);
      const double unit_scale = r.channels[c].unit == "uV" && s.dimension == "mV" ? 1000 : 1;
      check.step = std::fabs(s.gain()) * unit_scale;
      checks.push_back(check);
      break;
    }
  }
  REQUIRE(checks.size() == static_cast<std::size_t>(r.num_channels()));
  return checks;
}

std::vector<ChannelCheck> uniform_checks(const Recording& r, const json& e, double step, double relative) {
  std::vector<ChannelCheck> checks(static_cast<std::size_t>(r.num_channels()));
  for (int64_t c = 0; c < r.num_channels(); ++c) {
    checks[static_cast<std::size_t>(c)].step = step;
    checks[static_cast<std::size_t>(c)].relative = relative;
    checks[static_cast<std::size_t>(c)].scale = mne_scale(r, e, c);
  }
  return checks;
}

void compare_header(const Recording& r, const json& e) {
  CHECK(r.sample_rate == Approx(e["sfreq"].get<double>()));
  CHECK(r.num_samples == e["n_times"].get<int64_t>());
  REQUIRE(r.num_channels() == static_cast<int64_t>(e["ch_names"].size()));
  for (int64_t c = 0; c < r.num_channels(); ++c) CHECK(r.channels[c].name == e["ch_names"][c].get<std::string>());
}

// Our types where they differ from MNE's (see the file comment); every other channel must match.
void compare_types(const Recording& r, const json& e, const std::map<std::string, ChannelType>& ours_differ) {
  for (int64_t c = 0; c < r.num_channels(); ++c) {
    INFO("channel " << r.channels[c].name);
    auto it = ours_differ.find(r.channels[c].name);
    if (it != ours_differ.end()) {
      CHECK(r.channels[c].type == it->second);
    } else {
      CHECK(std::string(neurobolt::to_string(r.channels[c].type)) == e["ch_types"][c].get<std::string>());
    }
  }
}

void compare_annotations(const Recording& r, const json& e) {
  const auto& want = e["annotations"];
  REQUIRE(r.annotations.size() == want.size());
  const double sample = 1.0 / r.sample_rate;
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("annotation " << i);
    CHECK(r.annotations[i].label == want[i]["description"].get<std::string>());
    CHECK(std::fabs(r.annotations[i].onset - want[i]["onset"].get<double>()) <= sample);
    CHECK(std::fabs(r.annotations[i].duration - want[i]["duration"].get<double>()) <= sample);
  }
}

bool has_warning(const Recording& r, const std::string& part) {
  for (const auto& w : r.warnings) {
    if (w.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("plain EDF with 'EEG <name>' labels agrees with MNE", "[io][edf]") {
  const auto e = expected("eeglab_test.edf");
  const Recording r = neurobolt::read_recording(real("edf/eeglab_test.edf"));
  CHECK(r.format == "EDF");
  CHECK(r.start_time == "1997-04-25T13:36:05");
  compare_header(r, e);
  compare_types(r, e, {});
  compare_samples(r, e, edf_checks(r, e));
  compare_annotations(r, e);
  for (const auto& c : r.channels) CHECK(c.unit == "uV");
}

TEST_CASE("EDF+C clinical export with mixed channel types agrees with MNE", "[io][edf]") {
  const auto e = expected("chtypes_edf.edf");
  const Recording r = neurobolt::read_edf(real("edf/chtypes_edf.edf"));
  CHECK(r.format == "EDF+C");
  CHECK(r.start_time == "2015-11-19T19:33:09");
  compare_header(r, e);
  // MNE: all EEG (infer_types off). Ours: from the label prefix.
  compare_types(r, e,
                {{"ECG ECG1", ChannelType::ecg},
                 {"ECG ECG2", ChannelType::ecg},
                 {"SaO2 X9", ChannelType::misc},
                 {"SaO2 X10", ChannelType::misc}});
  compare_samples(r, e, edf_checks(r, e));
  // The TAL texts include "+0.000000" etc. as real annotations (not the time-keeping TALs).
  compare_annotations(r, e);
  CHECK(r.gaps.empty());
  CHECK(r.warnings.empty());
}

TEST_CASE("EDF+C with a non-standard annotation signal agrees with MNE (EDFlib refuses it)", "[io][edf]") {
  const auto e = expected("test_edf_overlapping_annotations.edf");
  const Recording r = neurobolt::read_edf(real("edf/test_edf_overlapping_annotations.edf"));
  CHECK(r.format == "EDF+C");
  compare_header(r, e);
  compare_types(r, e, {});
  compare_samples(r, e, edf_checks(r, e));
  compare_annotations(r, e);
  // Its annotation signal has a prefiltering text, which EDF+ wants blank and EDFlib refuses.
  CHECK(has_warning(r, "EDFlib"));
  CHECK(has_warning(r, "prefiltering"));
}

TEST_CASE("EDF with a trigger channel and an odd reserved field agrees with MNE", "[io][edf]") {
  const auto e = expected("test_edf_stim_channel.edf");
  const Recording r = neurobolt::read_edf(real("edf/test_edf_stim_channel.edf"));
  CHECK(r.format == "EDF");
  compare_header(r, e);
  // One 9.59375 s record of 1228 samples: 128 Hz.
  CHECK(r.sample_rate == 128.0);
  compare_types(r, e,
                {{"EOG VEOG_I", ChannelType::eog},
                 {"EOG VEOG_II", ChannelType::eog},
                 {"ECG ECG1", ChannelType::ecg},
                 {"ECG ECG2", ChannelType::ecg},
                 {"DIG DTRIG", ChannelType::trigger}});
  compare_samples(r, e, edf_checks(r, e));
  CHECK(has_warning(r, "reserved field 'reserved'"));
}

TEST_CASE("24-bit BDF with a Status channel agrees with MNE", "[io][bdf]") {
  const auto e = expected("mne_test.bdf");
  const Recording r = neurobolt::read_recording(real("bdf/mne_test.bdf"));
  CHECK(r.format == "BDF");
  CHECK(r.start_time == "2013-08-01T13:21:46");
  compare_header(r, e);
  compare_types(r, e,
                {{"REOG", ChannelType::eog},
                 {"LEOG", ChannelType::eog},
                 {"IEOG", ChannelType::eog},
                 {"Status", ChannelType::trigger}});
  const int64_t status = r.find_channel("Status");
  REQUIRE(status == 72);
  CHECK(r.channels[status].unit == "Boolean");
  // Status: physical == digital (a 24-bit word); MNE reports it x1e6 (mne_scale handles that).
  CHECK(r.channel_data(status)[0] == -6815744.0f);
  compare_samples(r, e, edf_checks(r, e));
  // The number of data records is written "  1     " (leading spaces), which EDFlib refuses.
  CHECK(has_warning(r, "leading spaces"));
}

TEST_CASE("annotation-only EDF+ (hypnogram) gives annotations and no channels", "[io][edf]") {
  const Recording r = neurobolt::read_edf(real("edf/SC4001EC-Hypnogram.edf"));
  CHECK(r.num_channels() == 0);
  CHECK(r.num_samples == 0);
  CHECK(r.data.empty());
  REQUIRE(r.annotations.size() == 154);
  CHECK(r.annotations[0].label == "Sleep stage W");
  CHECK(r.annotations[0].onset == 0.0);
  CHECK(r.annotations[0].duration == 30630.0);
  CHECK(r.annotations[1].label == "Sleep stage 1");
  CHECK(r.annotations[1].onset == 30630.0);
  CHECK(has_warning(r, "annotations only"));
}

TEST_CASE("EDF samples and annotations agree with EDFlib's own reading", "[io][edf]") {
  for (const char* file :
       {"edf/chtypes_edf.edf", "edf/eeglab_test.edf", "edf/test_edf_stim_channel.edf", "edf/SC4001EC-Hypnogram.edf"}) {
    INFO(file);
    const std::string path = real(file);
    const Recording r = neurobolt::read_edf(path);
    auto hdr = std::make_unique<edf_hdr_struct>();
    REQUIRE(edfopen_file_readonly(path.c_str(), hdr.get(), EDFLIB_READ_ALL_ANNOTATIONS) == 0);
    REQUIRE(hdr->edfsignals == r.num_channels());
    for (int c = 0; c < hdr->edfsignals; ++c) {
      std::vector<double> buffer(static_cast<std::size_t>(hdr->signalparam[c].smp_in_file));
      REQUIRE(edfread_physical_samples(hdr->handle, c, static_cast<int>(buffer.size()), buffer.data()) ==
              static_cast<int>(buffer.size()));
      REQUIRE(static_cast<int64_t>(buffer.size()) == r.num_samples);
      int64_t mismatches = 0;
      for (std::size_t s = 0; s < buffer.size(); ++s) {
        if (std::fabs(r.channel_data(c)[s] - buffer[s]) > 2.4e-7 * std::fabs(buffer[s]) + 1e-6) ++mismatches;
      }
      CHECK(mismatches == 0);
    }
    REQUIRE(hdr->annotations_in_file == static_cast<long long>(r.annotations.size()));
    for (long long i = 0; i < hdr->annotations_in_file; ++i) {
      edf_annotation_struct a{};
      REQUIRE(edf_get_annotation(hdr->handle, static_cast<int>(i), &a) == 0);
      CHECK(r.annotations[static_cast<std::size_t>(i)].label == a.annotation);
      CHECK(r.annotations[static_cast<std::size_t>(i)].onset == Approx(a.onset / 1e7).margin(1e-7));
      CHECK(r.annotations[static_cast<std::size_t>(i)].duration ==
            Approx(a.duration_l < 0 ? 0.0 : a.duration_l / 1e7).margin(1e-7));
    }
    edfclose_file(hdr->handle);
  }
}

TEST_CASE("BrainVision Recorder v1 INT_16 multiplexed agrees with MNE", "[io][brainvision]") {
  const auto e = expected("test.vhdr");
  const Recording r = neurobolt::read_recording(real("brainvision/mne_test/test.vhdr"));
  CHECK(r.format == "BrainVision");
  CHECK(r.start_time == "2013-11-13T16:14:03.794232");
  compare_header(r, e);
  // Non-voltage units (BS, µS, ARU, uS, S, C) are misc for MNE and for us, in their own unit.
  compare_types(r, e, {});
  CHECK(r.channels[r.find_channel("CP6")].unit == "\xC2\xB5S");
  CHECK(r.channels[r.find_channel("ReRef")].unit == "C");
  // Ch2 has an empty unit and Ch3 none: both microvolts, the format's default.
  CHECK(r.channels[1].unit == "uV");
  CHECK(r.channels[2].unit == "uV");
  compare_samples(r, e, uniform_checks(r, e, 0.5, 0));
  compare_annotations(r, e);
  CHECK(r.annotations[1].type == "Stimulus");
  CHECK(r.annotations[1].description() == "S253");
}

TEST_CASE("BrainVision v2 header: markers past the end are refused, or dropped on request as MNE does",
          "[io][brainvision]") {
  const std::string path = real("brainvision/mne_test/testv2.vhdr");
  try {
    neurobolt::read_brainvision(path);
    FAIL("expected an error for markers after the end");
  } catch (const neurobolt::FormatError& err) {
    const std::string what = err.what();
    CHECK_THAT(what, Catch::Contains("testv2.vmrk"));
    CHECK_THAT(what, Catch::Contains("Mk14"));
    CHECK_THAT(what, Catch::Contains("position"));
    CHECK_THAT(what, Catch::Contains("7900"));
    CHECK_THAT(what, Catch::Contains("found 8010"));
  }

  ReadOptions options;
  options.drop_annotations_after_end = true;
  const Recording r = neurobolt::read_brainvision(path, options);
  const auto e = expected("testv2.vhdr");
  compare_header(r, e);
  CHECK(has_warning(r, "3 markers after the last sample"));
  // MNE: HL, HR, Vb, ReRef are misc because their [Coordinates] are 0,0,0.
  compare_types(
      r, e,
      {{"HL", ChannelType::eeg}, {"HR", ChannelType::eeg}, {"Vb", ChannelType::eeg}, {"ReRef", ChannelType::eeg}});
  auto checks = uniform_checks(r, e, 0.5, 0);
  const Recording v1 = neurobolt::read_brainvision(real("brainvision/mne_test/test.vhdr"));
  for (const char* name : {"HL", "HR", "Vb", "ReRef"}) {
    // Same samples as test.vhdr (both headers point at test.eeg), where MNE's values are exact.
    const auto c = r.find_channel(name);
    checks[static_cast<std::size_t>(c)].skip = true;
    const auto c1 = v1.find_channel(name);
    for (int64_t s = 0; s < r.num_samples; ++s) REQUIRE(r.channel_data(c)[s] == v1.channel_data(c1)[s]);
  }
  compare_samples(r, e, checks);
  compare_annotations(r, e);
  CHECK(r.annotations[6].label == "Comment/comment using [square] brackets");
}

TEST_CASE("BrainVision IEEE_FLOAT_32 multiplexed with a .dat file agrees with MNE", "[io][brainvision]") {
  const auto e = expected("testbva.vhdr");
  const Recording r = neurobolt::read_recording(real("brainvision/eeglab_testbva/testbva.vhdr"));
  compare_header(r, e);
  CHECK(r.start_time == "2003-09-24T10:50:38.119829");
  // MNE: misc (no electrode position). Ours: from the names.
  compare_types(r, e, {{"Eog", ChannelType::eog}, {"Ekg1", ChannelType::ecg}, {"Ekg2", ChannelType::ecg}});
  // Eog/Ekg1/Ekg2 are compared in MNE's volts (rounded to 1e-4 V): only a 50 uV check.
  compare_samples(r, e, uniform_checks(r, e, 0, 1e-4));
  compare_annotations(r, e);
  // Descriptions keep their padding ("S  4"): the data layer matches them as written.
  CHECK(r.annotations[1].label == "Stimulus/S  4");
}

TEST_CASE("BrainVision VECTORIZED float with a Latin-1 header and resolution 0.1 agrees with MNE",
          "[io][brainvision]") {
  const auto e = expected("test_old_layout_latin1_software_filter.vhdr");
  const Recording r =
      neurobolt::read_recording(real("brainvision/mne_latin1_vectorized/test_old_layout_latin1_software_filter.vhdr"));
  compare_header(r, e);
  compare_types(r, e,
                {{"VEOGo", ChannelType::eog},
                 {"VEOGu", ChannelType::eog},
                 {"HEOGli", ChannelType::eog},
                 {"HEOGre", ChannelType::eog}});
  compare_samples(r, e, uniform_checks(r, e, 0, 1e-4));
  compare_annotations(r, e);
}

TEST_CASE("EEGLAB .set + .fdt agrees with MNE", "[io][eeglab]") {
  const auto e = expected("eeglab_data.set");
  const Recording r = neurobolt::read_recording(real("eeglab/eeglab_data.set"));
  CHECK(r.format == "EEGLAB");
  compare_header(r, e);
  compare_types(r, e, {{"EOG1", ChannelType::eog}, {"EOG2", ChannelType::eog}});
  compare_samples(r, e, uniform_checks(r, e, 0, 1e-4));
  compare_annotations(r, e);
}

TEST_CASE("EEG-fMRI headers without data: header_only gives channels, rate and scanner markers", "[io][brainvision]") {
  const auto dir = real_dir() / "eegfmri_headers_only" / "bids_eeg_rest_fmri";
  ReadOptions options;
  options.header_only = true;

  const Recording raw = neurobolt::read_recording((dir / "raw" / "sub-32_task-rest_eeg.vhdr").string(), options);
  CHECK(raw.num_channels() == 64);
  CHECK(raw.sample_rate == 5000.0);
  CHECK(raw.data.empty());
  CHECK(raw.start_time == "2013-04-10T10:25:44.704278");
  CHECK(raw.channels[31].name == "ECG");
  CHECK(raw.channels[31].type == ChannelType::ecg);
  CHECK(has_warning(raw, "number of samples is unknown"));
  int sync = 0;
  for (const auto& a : raw.annotations) sync += a.label == "SyncStatus/Sync On";
  CHECK(sync == 398);

  const Recording derived =
      neurobolt::read_recording((dir / "derivatives" / "sub-32_task-rest_eeg.vhdr").string(), options);
  CHECK(derived.num_channels() == 64);
  CHECK(derived.sample_rate == 250.0);
  CHECK(derived.num_samples == 162023);
  CHECK(derived.data.empty());
  std::vector<double> scans;
  for (const auto& a : derived.annotations) {
    if (a.type == "Scanner" && a.description() == "Scan Start") scans.push_back(a.onset);
  }
  REQUIRE(scans.size() == 300);
  // Positions 37, 577, ..., 161497 (1-based, 250 Hz): TR 2.16 s = 540 samples.
  CHECK(scans.front() == Approx((37 - 1) / 250.0));
  CHECK(scans.back() == Approx((161497 - 1) / 250.0));
  for (std::size_t i = 1; i < scans.size(); ++i) CHECK(scans[i] - scans[i - 1] == Approx(2.16).margin(1e-9));

  // The full read needs the data file, which this dataset does not have.
  CHECK_THROWS_AS(neurobolt::read_recording((dir / "derivatives" / "sub-32_task-rest_eeg.vhdr").string()),
                  neurobolt::IoError);
}

TEST_CASE("header_only reads agree with full reads", "[io]") {
  ReadOptions header;
  header.header_only = true;
  for (const char* file :
       {"edf/chtypes_edf.edf", "bdf/mne_test.bdf", "brainvision/mne_test/test.vhdr", "eeglab/eeglab_data.set"}) {
    INFO(file);
    const Recording full = neurobolt::read_recording(real(file));
    const Recording head = neurobolt::read_recording(real(file), header);
    CHECK(head.data.empty());
    CHECK(head.num_samples == full.num_samples);
    CHECK(head.sample_rate == full.sample_rate);
    CHECK(head.num_channels() == full.num_channels());
    CHECK(head.annotations.size() == full.annotations.size());
  }
}

TEST_CASE("sample ranges and RecordingReader read exactly the samples of a whole read, in every format", "[io]") {
  for (const char* file : {"edf/chtypes_edf.edf", "edf/test_edf_stim_channel.edf", "bdf/mne_test.bdf",
                           "brainvision/mne_test/test.vhdr", "brainvision/eeglab_testbva/testbva.vhdr",
                           "brainvision/mne_latin1_vectorized/test_old_layout_latin1_software_filter.vhdr",
                           "eeglab/eeglab_data.set"}) {
    INFO(file);
    const Recording full = neurobolt::read_recording(real(file));
    const int64_t n = full.num_samples;
    REQUIRE(n > 10);
    // Ranges: inside, from the start, to the end (sample_count -1 and cut at the end), empty,
    // one sample; with every channel and with two picked in reverse order.
    const std::vector<std::pair<int64_t, int64_t>> ranges{{n / 3, n / 4}, {0, 7}, {n - 5, -1}, {n - 3, 100},
                                                          {n, -1},        {n / 2, 0}, {1, 1}};
    for (bool pick : {false, true}) {
      for (auto [first, count] : ranges) {
        INFO("range " << first << " + " << count << (pick ? ", two channels" : ""));
        ReadOptions options;
        options.first_sample = first;
        options.sample_count = count;
        if (pick) options.channels = {full.channels[1].name, full.channels[0].name};
        const Recording part = neurobolt::read_recording(real(file), options);
        const int64_t expected = count < 0 ? n - first : std::min(count, n - first);
        // A RecordingReader opened once gives the same range.
        options.first_sample = 0;
        options.sample_count = -1;
        const neurobolt::RecordingReader reader(real(file), options);
        CHECK(reader.header().data.empty());
        CHECK(reader.header().channels.size() == part.channels.size());
        const Recording again = reader.read(first, count);
        CHECK(again.data_first == first);
        CHECK(again.samples_in_data() == expected);
        CHECK(again.data == part.data);
        CHECK(part.num_samples == n);
        CHECK(part.data_first == first);
        REQUIRE(part.samples_in_data() == expected);
        REQUIRE(part.data.size() == static_cast<std::size_t>(part.num_channels() * expected));
        CHECK(part.annotations.size() == full.annotations.size());
        for (int64_t c = 0; c < part.num_channels(); ++c) {
          const int64_t source = full.find_channel(part.channels[c].name);
          REQUIRE(source >= 0);
          for (int64_t s = 0; s < expected; ++s) REQUIRE(part.channel_data(c)[s] == full.channel_data(source)[first + s]);
        }
      }
    }
    ReadOptions outside;
    outside.first_sample = n + 1;
    CHECK_THROWS_WITH(neurobolt::read_recording(real(file), outside),
                      Catch::Contains("first sample to read") && Catch::Contains(std::to_string(n + 1)));
    outside.first_sample = 0;
    outside.sample_count = -2;
    CHECK_THROWS_AS(neurobolt::read_recording(real(file), outside), neurobolt::ConfigError);
    const neurobolt::RecordingReader reader(real(file));
    CHECK_THROWS_AS(reader.read(-1, 5), neurobolt::ConfigError);
    CHECK_THROWS_AS(reader.read(n + 1, 5), neurobolt::ConfigError);
    CHECK(reader.read(0, -1).data == full.data);
  }
}

TEST_CASE("channel selection loads the named channels in the order asked", "[io]") {
  ReadOptions options;
  options.channels = {"Cz", "Fp1", "Status"};
  const Recording r = neurobolt::read_recording(real("bdf/mne_test.bdf"), options);
  REQUIRE(r.num_channels() == 3);
  CHECK(r.channels[0].name == "Cz");
  CHECK(r.channels[2].type == ChannelType::trigger);
  const Recording all = neurobolt::read_recording(real("bdf/mne_test.bdf"));
  const auto cz = all.find_channel("Cz");
  for (int64_t s = 0; s < r.num_samples; ++s) REQUIRE(r.channel_data(0)[s] == all.channel_data(cz)[s]);
  CHECK(all.find_channel("nope") == -1);

  options.channels = {"Cz", "XYZ", "ABC"};
  try {
    neurobolt::read_recording(real("bdf/mne_test.bdf"), options);
    FAIL("expected a ConfigError");
  } catch (const neurobolt::ConfigError& err) {
    CHECK_THAT(std::string(err.what()), Catch::Contains("'XYZ', 'ABC'") && Catch::Contains("mne_test.bdf"));
  }
}

TEST_CASE("the dispatcher picks the reader by extension and names unknown ones", "[io]") {
  CHECK(neurobolt::read_recording(real("eeglab/eeglab_data.set"), ReadOptions{{}, true}).format == "EEGLAB");
  try {
    neurobolt::read_recording("/nonexistent/recording.xyz");
    FAIL("expected a FormatError");
  } catch (const neurobolt::FormatError& err) {
    CHECK_THAT(std::string(err.what()), Catch::Contains("'.xyz'") && Catch::Contains("recording.xyz"));
  }
  CHECK_THROWS_WITH(neurobolt::read_recording(real("brainvision/mne_test/test.eeg")), Catch::Contains(".vhdr"));
  CHECK_THROWS_AS(neurobolt::read_recording("/nonexistent/missing.edf"), neurobolt::IoError);
  CHECK_THROWS_AS(neurobolt::read_recording("/nonexistent/missing.vhdr"), neurobolt::IoError);
  CHECK_THROWS_AS(neurobolt::read_recording("/nonexistent/missing.set"), neurobolt::IoError);
}

TEST_CASE("the read benchmark reports bytes, samples and speed", "[io]") {
  const auto r = neurobolt::bench_read_recording(real("brainvision/mne_test/test.vhdr"), 2);
  CHECK(r.format == "BrainVision");
  CHECK(r.file_bytes == 5809 + 795 + 505600);  // .vhdr + .vmrk + .eeg
  CHECK(r.channels == 32);
  CHECK(r.samples == 7900);
  CHECK(r.best_s > 0);
  CHECK(r.best_s <= r.mean_s);
  CHECK(r.mb_per_s() == Approx(r.file_bytes / r.best_s / 1e6));
  CHECK_THAT(neurobolt::format_read_bench(r), Catch::Contains("MB/s") && Catch::Contains("Msamples/s"));
  CHECK_THROWS_AS(neurobolt::bench_read_recording(real("edf/eeglab_test.edf"), 0), neurobolt::UsageError);
}
