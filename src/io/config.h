#pragma once
// Typed access to config.json fields with errors that name the file and the field.
#include <nlohmann/json.hpp>
#include <limits>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/json_limits.h"

namespace hylora {

using json = nlohmann::json;

// A config constraint: fails with "<where>: <what>" when `ok` is false.
inline void config_require(bool ok, const std::string& where, const std::string& what) {
  if (!ok) fail(where, ": ", what);
}

// Reads and parses a config file (config.json, an index) under json_limits::kConfig.
json read_json_file(const std::string& path);

// Largest integer a config field read here may hold: every size (vocab, widths, experts, layers) of real models is
// far below it, a product of three such sizes cannot overflow int64, and an absurd value is refused before anything
// is sized from it. (max_position_embeddings is read by the registry, not through this reader.)
inline constexpr int64_t kMaxConfigInt = int64_t{1} << 24;

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
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // nlohmann converts 64.5 to 64 and wraps 2^64-1 to -1; a config size must be an exact, sane integer.
      int64_t v = 0;
      if (!j_.at(key).is_number())
        fail(where_, ": field \"", key, "\" has the wrong type (found ", j_.at(key).dump(), ")");
      if (!json_int_in_range(j_.at(key), -kMaxConfigInt, kMaxConfigInt, v))
        fail(where_, ": field \"", key, "\" must be an integer in [", -kMaxConfigInt, ", ", kMaxConfigInt, "], found ",
             j_.at(key).dump());
      if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<int64_t>(std::numeric_limits<T>::max()))
        fail(where_, ": field \"", key, "\" is out of range, found ", v);
      return static_cast<T>(v);
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!j_.at(key).is_number())
        fail(where_, ": field \"", key, "\" has the wrong type (found ", j_.at(key).dump(), ", expected a number)");
    }
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
