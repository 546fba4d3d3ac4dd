#include "io/config.h"

#include "core/json_limits.h"

namespace hylora {

json read_json_file(const std::string& path) { return read_json_file_bounded<json>(path, json_limits::kConfig); }

}  // namespace hylora
