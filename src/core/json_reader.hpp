#pragma once
// Reading configs from JSON one object at a time: every key is read by name with its expected
// type, unknown keys are rejected, and errors name the key by its dotted path. Shared by the
// model config and the simulation config (internal; header-only).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "neurobolt/error.hpp"

namespace neurobolt::detail {

class JsonReader {
 public:
  using json = nlohmann::json;

  // `path`: the object's dotted path ("" at the top); `source`: prefixes every message (a file
  // name or "built-in config 'x'").
  JsonReader(const json& object, std::string path, std::string source)
      : object_(object), path_(std::move(path)), source_(std::move(source)) {
    if (!object_.is_object()) fail("", "an object", object_.dump());
  }

  template <typename T>
  void number(const char* key, T& out) {
    if (const json* v = find(key)) {
      if constexpr (std::is_integral_v<T>) {
        if (!v->is_number_integer()) fail(key, "an integer", v->dump());
      } else {
        if (!v->is_number()) fail(key, "a number", v->dump());
      }
      out = v->get<T>();
    }
  }
  void text(const char* key, std::string& out) {
    if (const json* v = find(key)) {
      if (!v->is_string()) fail(key, "a string", v->dump());
      out = v->get<std::string>();
    }
  }
  void flag(const char* key, bool& out) {
    if (const json* v = find(key)) {
      if (!v->is_boolean()) fail(key, "true or false", v->dump());
      out = v->get<bool>();
    }
  }
  void texts(const char* key, std::vector<std::string>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array()) fail(key, "a list of strings", v->dump());
      out.clear();
      for (const auto& item : *v) {
        if (!item.is_string()) fail(key, "a list of strings", v->dump());
        out.push_back(item.get<std::string>());
      }
    }
  }
  void numbers(const char* key, std::vector<double>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array()) fail(key, "a list of numbers", v->dump());
      out.clear();
      for (const auto& item : *v) {
        if (!item.is_number()) fail(key, "a list of numbers", v->dump());
        out.push_back(item.get<double>());
      }
    }
  }
  void triple(const char* key, std::array<double, 3>& out) {
    if (const json* v = find(key)) {
      if (!v->is_array() || v->size() != 3 ||
          !std::all_of(v->begin(), v->end(), [](const json& x) { return x.is_number(); })) {
        fail(key, "a list of 3 numbers", v->dump());
      }
      for (std::size_t k = 0; k < 3; ++k) out[k] = (*v)[k].get<double>();
    }
  }

  // The value under `key` (nullptr when absent); marks the key as known.
  const json* find(const char* key) {
    known_.insert(key);
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  bool has(const char* key) const { return object_.contains(key); }
  const std::string& source() const { return source_; }
  std::string child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  // Call after all reads: a key that no read asked for is unknown.
  void finish() const {
    for (const auto& item : object_.items()) {
      if (!known_.count(item.key())) {
        throw ConfigError(fmt::format("{}: unknown key '{}' (known keys here: {})", source_, child_path(item.key()),
                                      fmt::join(known_, ", ")));
      }
    }
  }

  [[noreturn]] void fail(const std::string& key, const std::string& expected, std::string found) const {
    if (found.size() > 60) found = found.substr(0, 57) + "...";
    throw ConfigError(fmt::format("{}: key '{}': expected {}, found {}", source_, key.empty() ? path_ : child_path(key),
                                  expected, found));
  }

 private:
  const json& object_;
  std::string path_;
  std::string source_;
  std::set<std::string> known_;
};

}  // namespace neurobolt::detail
