#pragma once
// Typed access to config.json fields with errors that name the file and the field.
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace hylora {

using json = nlohmann::json;

// A config constraint: fails with "<where>: <what>" when `ok` is false.
inline void config_require(bool ok, const std::string& where, const std::string& what) {
  if (!ok) fail(where, ": ", what);
}

// Reads and parses <dir>/config.json.
json read_json_file(const std::string& path);

class ConfigReader {
 public:
  ConfigReader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}
  const json& raw() const { return j_; }
  const std::string& where() const { return where_; }
  bool has(const std::string& key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  template <typename T>
  T get(const std::string& key) const {
    if (!has(key)) fail(where_, ": required field \"", key, "\" is missing");
    return convert<T>(key);
  }
  template <typename T>
  T get(const std::string& key, const T& fallback) const {
    return has(key) ? convert<T>(key) : fallback;
  }
  ConfigReader sub(const std::string& key) const {
    if (!has(key) || !j_.at(key).is_object()) fail(where_, ": field \"", key, "\" must be an object");
    return ConfigReader(j_.at(key), where_ + " (" + key + ")");
  }

 private:
  template <typename T>
  T convert(const std::string& key) const {
    try {
      return j_.at(key).get<T>();
    } catch (const json::exception&) {
      fail(where_, ": field \"", key, "\" has the wrong type (found ", j_.at(key).dump(), ")");
    }
  }
  const json& j_;
  std::string where_;
};

}  // namespace hylora
