// CPU reference of the varlen causal conv1d (ops/conv1d.h): one (sequence, channel) per task.
#include "ops/conv1d.h"

#include <omp.h>

#include "ops/elementwise.h"

namespace hylora::ops::cpu {

void causal_conv1d(ExecCtx& ctx, const Tensor& x, const Tensor& w, const Tensor& bias, const SeqLayout& layout,
                   Tensor& state_pool, bool apply_silu, Tensor& y) {
  const int64_t T = x.dim(0), C = x.dim(1), K = w.dim(1);
  HYLORA_CHECK(w.dim(0) == C && state_pool.ndim() == 3 && state_pool.dim(1) == C && state_pool.dim(2) == K - 1 &&
                   y.dim(0) == T && y.dim(1) == C,
               "internal: conv1d shapes x ", shape_str(x.shape()), " w ", shape_str(w.shape()), " state pool ",
               shape_str(state_pool.shape()));
  int64_t max_n = 0;
  for (int64_t s = 0; s < layout.num_seqs; ++s)
    max_n = std::max<int64_t>(max_n, layout.cu_seqlens.i32()[s + 1] - layout.cu_seqlens.i32()[s]);
  const int threads = T * C > 4096 ? omp_get_max_threads() : 1;
  Tensor window = ctx.scratch.tensor({threads, K - 1 + max_n});  // per thread: the K-1 older inputs + the new ones
  const float* wp = w.f32();
#pragma omp parallel num_threads(threads)
  {
    float* u = window.f32() + omp_get_thread_num() * (K - 1 + max_n);
#pragma omp for collapse(2)
    for (int64_t s = 0; s < layout.num_seqs; ++s) {
      for (int64_t c = 0; c < C; ++c) {
        const int64_t r0 = layout.cu_seqlens.i32()[s], n = layout.cu_seqlens.i32()[s + 1] - r0;
        if (n == 0) continue;
        float* sp = state_pool.f32() + (static_cast<int64_t>(layout.state_slots.i32()[s]) * C + c) * (K - 1);
        for (int64_t j = 0; j < K - 1; ++j) u[j] = sp[j];
        for (int64_t t = 0; t < n; ++t) u[K - 1 + t] = x.f32()[(r0 + t) * x.ld() + c];
        for (int64_t t = 0; t < n; ++t) {
          float acc = bias.defined() ? bias.f32()[c] : 0.0f;
          for (int64_t j = 0; j < K; ++j) acc += wp[c * K + j] * u[t + j];
          y.f32()[(r0 + t) * y.ld() + c] = apply_silu ? silu(acc) : acc;
        }
        for (int64_t j = 0; j < K - 1; ++j) sp[j] = u[n + j];
      }
    }
  }
}

}  // namespace hylora::ops::cpu
