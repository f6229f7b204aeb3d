#include <cctype>

#include "neurobolt/bids.hpp"

namespace neurobolt {
namespace {

bool is_alphanumeric(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::string BidsEntities::to_string() const {
  std::string out;
  const auto add = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    if (!out.empty()) out += '_';
    out += key;
    out += '-';
    out += value;
  };
  add("sub", sub);
  add("ses", ses);
  add("task", task);
  add("acq", acq);
  add("run", run);
  return out;
}

std::string BidsFileName::get(const std::string& key) const {
  for (const auto& [k, v] : entities)
    if (k == key) return v;
  return {};
}

BidsEntities BidsFileName::core() const {
  return BidsEntities{get("sub"), get("ses"), get("task"), get("acq"), get("run")};
}

std::optional<BidsFileName> parse_bids_name(const std::string& filename) {
  if (filename.find('/') != std::string::npos) return std::nullopt;
  BidsFileName name;
  const std::size_t dot = filename.find('.');
  const std::string stem = filename.substr(0, dot);
  if (dot != std::string::npos) name.extension = filename.substr(dot);

  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t underscore = stem.find('_', start);
    parts.push_back(stem.substr(start, underscore == std::string::npos ? std::string::npos : underscore - start));
    if (underscore == std::string::npos) break;
    start = underscore + 1;
  }
  name.suffix = parts.back();
  if (!is_alphanumeric(name.suffix)) return std::nullopt;
  parts.pop_back();
  for (const auto& part : parts) {
    const std::size_t dash = part.find('-');
    if (dash == std::string::npos) return std::nullopt;
    std::string key = part.substr(0, dash), value = part.substr(dash + 1);
    if (!is_alphanumeric(key) || !is_alphanumeric(value) || !name.get(key).empty()) return std::nullopt;
    name.entities.emplace_back(std::move(key), std::move(value));
  }
  return name;
}

}  // namespace neurobolt
