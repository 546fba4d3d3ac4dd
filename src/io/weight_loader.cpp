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

const TensorInfo& WeightLoader::checked(const std::string& name, const Shape& expected) {
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
  return info;
}

Tensor WeightLoader::get(const std::string& name, const Shape& expected) {
  const TensorInfo& info = checked(name, expected);
  Tensor t = tensor_to_f32(info).reshape(expected);
  bytes_read_ += t.numel() * stored_element_bytes(info.dtype);
  return t;
}

Tensor WeightLoader::get_optional(const std::string& name, const Shape& expected) {
  if (!has(name)) return Tensor();
  return get(name, expected);
}

Tensor WeightLoader::get_block(const std::string& name, const Shape& as, int64_t rows, int64_t cols,
                               const std::vector<Span>& keep_rows, const std::vector<Span>& keep_cols) {
  const TensorInfo& info = checked(name, as);
  int64_t numel = 1;
  for (int64_t d : info.shape) numel *= d;
  HYLORA_CHECK(numel == rows * cols, "internal: ", name, " viewed as [", rows, ", ", cols, "] holds ", numel,
               " elements");
  const std::vector<Span> rs = spans_or_all(keep_rows, rows), cs = spans_or_all(keep_cols, cols);
  Tensor out = Tensor::empty({spans_total(rs), spans_total(cs)});
  float* dst = out.f32();
  for (const Span& r : rs)
    for (int64_t i = r.begin; i < r.begin + r.size; ++i)
      for (const Span& c : cs) {  // one contiguous run of the file per kept (row, column block)
        HYLORA_CHECK(i < rows && c.begin + c.size <= cols, "internal: ", name, ": block out of range");
        elements_to_f32(info, i * cols + c.begin, c.size, dst);
        dst += c.size;
      }
  bytes_read_ += out.numel() * stored_element_bytes(info.dtype);
  return out;
}

std::string WeightLoader::expert_part(const std::string& prefix, const std::string& fused, int64_t e,
                                      const std::string& part) const {
  std::string name = prefix + "." + std::to_string(e) + "." + part + ".weight";
  if (!has(name))
    fail(ckpt_.where(), ": expert weights for ", prefix, " are missing: neither the fused tensor ", prefix, ".", fused,
         " nor the per-expert tensor ", name, " is present (maybe the wrong base model?)");
  return name;
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
      Tensor t = get(expert_part(prefix, fused, e, parts[p]), {part_rows, cols});
      std::memcpy(out.f32() + (e * rows + p * part_rows) * cols, t.f32(), part_rows * cols * sizeof(float));
    }
  }
  return out;
}

Tensor WeightLoader::experts_block(const std::string& prefix, const std::string& fused,
                                   const std::vector<std::string>& parts, const Shape& full, Span keep_experts,
                                   const std::vector<Span>& keep_rows, const std::vector<Span>& keep_cols) {
  HYLORA_CHECK(full.size() == 3, "internal: experts_block() expects a 3-D shape");
  const int64_t E = full[0], rows = full[1], cols = full[2];
  HYLORA_CHECK(keep_experts.begin >= 0 && keep_experts.begin + keep_experts.size <= E,
               "internal: experts_block: experts out of range");
  const std::string fused_name = prefix + "." + fused;
  const std::vector<Span> rs = spans_or_all(keep_rows, rows), cs = spans_or_all(keep_cols, cols);
  Tensor out = Tensor::empty({keep_experts.size, spans_total(rs), spans_total(cs)});
  float* dst = out.f32();
  if (has(fused_name)) {  // [E, rows, cols]: the kept experts' rows, each row's kept column runs
    const TensorInfo& info = checked(fused_name, full);
    for (int64_t e = keep_experts.begin; e < keep_experts.begin + keep_experts.size; ++e)
      for (const Span& r : rs)
        for (int64_t i = r.begin; i < r.begin + r.size; ++i)
          for (const Span& c : cs) {
            HYLORA_CHECK(i < rows && c.begin + c.size <= cols, "internal: ", fused_name, ": block out of range");
            elements_to_f32(info, (e * rows + i) * cols + c.begin, c.size, dst);
            dst += c.size;
          }
    bytes_read_ += out.numel() * stored_element_bytes(info.dtype);
    return out;
  }
  // Per-expert tensors: part p holds rows [p · part_rows, (p + 1) · part_rows) of the fused [rows, cols]. Every
  // expert's tensors are checked (shape) and marked used; only the kept experts' kept elements are converted.
  const int64_t part_rows = rows / static_cast<int64_t>(parts.size());
  std::vector<std::vector<const TensorInfo*>> info(static_cast<size_t>(E));
  for (int64_t e = 0; e < E; ++e)
    for (const std::string& part : parts)
      info[static_cast<size_t>(e)].push_back(&checked(expert_part(prefix, fused, e, part), {part_rows, cols}));
  for (int64_t e = keep_experts.begin; e < keep_experts.begin + keep_experts.size; ++e)
    for (const Span& r : rs)
      for (int64_t i = r.begin; i < r.begin + r.size; ++i)
        for (const Span& c : cs) {
          HYLORA_CHECK(i < rows && c.begin + c.size <= cols, "internal: ", prefix, ": expert block out of range");
          const TensorInfo& t = *info[static_cast<size_t>(e)][static_cast<size_t>(i / part_rows)];
          elements_to_f32(t, (i % part_rows) * cols + c.begin, c.size, dst);
          dst += c.size;
          bytes_read_ += c.size * stored_element_bytes(t.dtype);
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
