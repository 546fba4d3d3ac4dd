#include "io/weight_loader.h"

#include <cstring>

namespace hylora {

WeightLoader::WeightLoader(Checkpoint ckpt, const Rename& rename) : ckpt_(std::move(ckpt)) {
  for (auto& [stored, info] : ckpt_.tensors()) {
    auto canonical = rename(stored);
    if (!canonical) {
      ++skipped_;
      continue;
    }
    if (by_name_.count(*canonical))
      fail(ckpt_.where(), ": tensors ", by_name_[*canonical], " and ", stored, " both map to ", *canonical);
    by_name_[*canonical] = stored;
  }
}

Tensor WeightLoader::get(const std::string& name, const Shape& expected) {
  auto it = by_name_.find(name);
  if (it == by_name_.end())
    fail(ckpt_.where(), ": tensor ", name, " is missing from the checkpoint (maybe the wrong base model, or a config "
                       "that does not match the weights?)");
  const TensorInfo& info = ckpt_.info(it->second);
  // Conv weights are stored [C, 1, K] and asked for as [C, K]; that is the only reshape accepted (a [64, 1] tensor
  // for a [64] norm is the wrong tensor, not a spelling of the right one).
  const bool same = info.shape == expected ||
                    (expected.size() == 2 && info.shape.size() == 3 && info.shape[1] == 1 &&
                     info.shape[0] == expected[0] && info.shape[2] == expected[1]);
  if (!same)
    fail(info.file, ": tensor ", it->second, " has shape ", shape_str(info.shape), ", expected ",
         shape_str(expected), " from config.json (maybe the wrong base model?)");
  used_.insert(name);
  return tensor_to_f32(info).reshape(expected);
}

Tensor WeightLoader::get_optional(const std::string& name, const Shape& expected) {
  if (!has(name)) return Tensor();
  return get(name, expected);
}

Tensor WeightLoader::experts(const std::string& prefix, const std::string& fused, const std::vector<std::string>& parts,
                             const Shape& expected) {
  HYLORA_CHECK(expected.size() == 3, "internal: experts() expects a 3-D shape");
  std::string fused_name = prefix + "." + fused;
  if (has(fused_name)) return get(fused_name, expected);
  const int64_t E = expected[0], rows = expected[1], cols = expected[2];
  const int64_t part_rows = rows / static_cast<int64_t>(parts.size());
  Tensor out = Tensor::empty(expected);
  for (int64_t e = 0; e < E; ++e) {
    for (size_t p = 0; p < parts.size(); ++p) {
      std::string name = prefix + "." + std::to_string(e) + "." + parts[p] + ".weight";
      if (!has(name))
        fail(ckpt_.where(), ": expert weights for ", prefix, " are missing: neither the fused tensor ", fused_name,
             " nor the per-expert tensor ", name, " is present (maybe the wrong base model?)");
      Tensor t = get(name, {part_rows, cols});
      std::memcpy(out.f32() + (e * rows + p * part_rows) * cols, t.f32(), part_rows * cols * sizeof(float));
    }
  }
  return out;
}

std::vector<std::string> WeightLoader::unused() const {
  std::vector<std::string> out;
  for (auto& [canonical, stored] : by_name_)
    if (!used_.count(canonical)) out.push_back(stored);
  return out;
}

void WeightLoader::require_all_used(const std::string& arch) const {
  auto left = unused();
  if (!left.empty())
    fail(where(), ": ", left.size(), " tensor(s) not used by the ", arch, " config, e.g. ", left.front(),
         " (maybe config.json does not match the weights?)");
}

}  // namespace hylora
