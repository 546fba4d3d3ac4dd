// CPU reference of the tensor-parallel index ops (ops/tensor_parallel.h).
#include "ops/tensor_parallel.h"

#include <cstring>

namespace hylora::ops::cpu {

void localize_vocab_ids(ExecCtx&, const Tensor& ids, int64_t begin, int64_t size, Tensor& local, Tensor& elsewhere) {
  const int64_t T = ids.numel();
  HYLORA_CHECK(ids.dtype() == DType::I32 && local.dtype() == DType::I32 && elsewhere.dtype() == DType::I32 &&
                   local.numel() == T && elsewhere.numel() == T,
               "internal: localize_vocab_ids of ", T, " ids into ", shape_str(local.shape()), " and ",
               shape_str(elsewhere.shape()));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t l = ids.i32()[t] - begin;
    const bool mine = l >= 0 && l < size;
    local.i32()[t] = mine ? static_cast<int32_t>(l) : 0;
    elsewhere.i32()[t] = mine ? 0 : 1;
  }
}

void zero_masked_rows(ExecCtx&, const Tensor& mask, const Tensor& perm, Tensor& t) {
  const int64_t n = t.ndim() == 0 ? 0 : t.dim(0);
  HYLORA_CHECK(t.dtype() == DType::F32 && mask.dtype() == DType::I32 &&
                   (!perm.defined() || (perm.dtype() == DType::I32 && perm.numel() >= n)),
               "internal: zero_masked_rows of ", shape_str(t.shape()));
  if (n == 0) return;
  const int64_t w = t.row_size(), ld = t.ld();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t m = perm.defined() ? perm.i32()[i] : i;
    HYLORA_CHECK(m >= 0 && m < mask.numel(), "internal: zero_masked_rows row ", m, " outside a mask of ",
                 mask.numel());
    if (mask.i32()[m]) std::memset(t.f32() + i * ld, 0, w * sizeof(float));
  }
}

void localize_expert_routing(ExecCtx&, const Tensor& ids, const Tensor& weights, int64_t e0, int64_t n,
                             Tensor& local_ids, Tensor& local_weights) {
  const int64_t P = ids.numel();
  HYLORA_CHECK(ids.dtype() == DType::I32 && weights.dtype() == DType::F32 && weights.numel() == P &&
                   local_ids.numel() == P && local_weights.numel() == P && ids.contiguous() &&
                   weights.contiguous() && local_ids.contiguous() && local_weights.contiguous(),
               "internal: localize_expert_routing of ", shape_str(ids.shape()));
  for (int64_t i = 0; i < P; ++i) {
    const int64_t e = ids.i32()[i] - e0;
    const bool mine = e >= 0 && e < n;
    local_ids.i32()[i] = mine ? static_cast<int32_t>(e) : 0;
    local_weights.f32()[i] = mine ? weights.f32()[i] : 0.0f;
  }
}

}  // namespace hylora::ops::cpu
