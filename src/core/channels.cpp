#include "neurobolt/channels.hpp"

#include <cctype>
#include <unordered_map>

namespace neurobolt {

const std::vector<std::string>& position_vocabulary() {
  static const std::vector<std::string> vocabulary = {
      "FP1",   "FPZ",   "FP2",   "AF9",   "AF7",   "AF5",    "AF3",   "AF1",   "AFZ",    "AF2",   "AF4",
      "AF6",   "AF8",   "AF10",  "F9",    "F7",    "F5",     "F3",    "F1",    "FZ",     "F2",    "F4",
      "F6",    "F8",    "F10",   "FT9",   "FT7",   "FC5",    "FC3",   "FC1",   "FCZ",    "FC2",   "FC4",
      "FC6",   "FT8",   "FT10",  "T9",    "T7",    "C5",     "C3",    "C1",    "CZ",     "C2",    "C4",
      "C6",    "T8",    "T10",   "TP9",   "TP7",   "CP5",    "CP3",   "CP1",   "CPZ",    "CP2",   "CP4",
      "CP6",   "TP8",   "TP10",  "P9",    "P7",    "P5",     "P3",    "P1",    "PZ",     "P2",    "P4",
      "P6",    "P8",    "P10",   "PO9",   "PO7",   "PO5",    "PO3",   "PO1",   "POZ",    "PO2",   "PO4",
      "PO6",   "PO8",   "PO10",  "O1",    "OZ",    "O2",     "O9",    "CB1",   "CB2",    "IZ",    "O10",
      "T3",    "T5",    "T4",    "T6",    "M1",    "M2",     "A1",    "A2",    "CFC1",   "CFC2",  "CFC3",
      "CFC4",  "CFC5",  "CFC6",  "CFC7",  "CFC8",  "CCP1",   "CCP2",  "CCP3",  "CCP4",   "CCP5",  "CCP6",
      "CCP7",  "CCP8",  "T1",    "T2",    "FTT9H", "TTP7H",  "TPP9H", "FTT10H", "TPP8H", "TPP10H", "FP1-F7",
      "F7-T7", "T7-P7", "P7-O1", "FP2-F8", "F8-T8", "T8-P8", "P8-O2", "FP1-F3", "F3-C3", "C3-P3", "P3-O1",
      "FP2-F4", "F4-C4", "C4-P4", "P4-O2"};
  return vocabulary;
}

std::string normalize_channel_name(std::string_view name) {
  std::size_t begin = 0, end = name.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(name[begin]))) ++begin;
  while (end > begin && (std::isspace(static_cast<unsigned char>(name[end - 1])) || name[end - 1] == '.')) --end;
  std::string out(name.substr(begin, end - begin));
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::optional<int> position_index(std::string_view name) {
  static const auto lookup = [] {
    std::unordered_map<std::string, int> map;
    const auto& vocabulary = position_vocabulary();
    for (int i = 0; i < static_cast<int>(vocabulary.size()); ++i) map.emplace(vocabulary[i], i);
    return map;
  }();
  auto it = lookup.find(normalize_channel_name(name));
  if (it == lookup.end()) return std::nullopt;
  return it->second;
}

const std::vector<std::string>& neurobolt_paper_channels() {
  static const std::vector<std::string> channels = {"FP1", "FP2", "F3",  "F4",  "C3",  "C4",   "P3",
                                                    "P4",  "O1",  "O2",  "F7",  "F8",  "T7",   "T8",
                                                    "P7",  "P8",  "FPZ", "FZ",  "CZ",  "PZ",   "POZ",
                                                    "OZ",  "FT9", "FT10", "TP9", "TP10"};
  return channels;
}

}  // namespace neurobolt
