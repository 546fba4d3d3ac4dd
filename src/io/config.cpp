#include "io/config.h"

#include <filesystem>
#include <fstream>

namespace hylora {

json read_json_file(const std::string& path) {
  if (!std::filesystem::exists(path)) fail(path, ": file not found");
  std::ifstream in(path);
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
}

}  // namespace hylora
