#include "ops/attention.h"

#include <algorithm>
#include <cmath>

namespace hylora::ops {

Tensor causal_attention(const Tensor& q, const float* k_cache, const float* v_cache, int64_t n_kv_heads, int64_t dv,
                        int64_t past_len, float scale) {
  const int64_t n = q.dim(0), nh = q.dim(1), dqk = q.dim(2);
  HYLORA_CHECK(nh % n_kv_heads == 0, "internal: attention heads ", nh, " not a multiple of KV heads ", n_kv_heads);
  const int64_t group = nh / n_kv_heads;
  Tensor out = Tensor::zeros({n, nh * dv});
  const float* qp = q.f32();
  float* op = out.f32();
  // Single-token decode of a few heads is too little work to wake a thread team for.
#pragma omp parallel if (n * nh * (past_len + n) > 4096)
  {
    std::vector<float> scores(past_len + n);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t kvh = h / group;
        const int64_t len = past_len + t + 1;
        const float* qv = qp + (t * nh + h) * dqk;
        float mx = -INFINITY;
        for (int64_t j = 0; j < len; ++j) {
          const float* kv = k_cache + (j * n_kv_heads + kvh) * dqk;
          float s = 0.0f;
          for (int64_t d = 0; d < dqk; ++d) s += qv[d] * kv[d];
          s *= scale;
          scores[j] = s;
          mx = std::max(mx, s);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < len; ++j) {
          scores[j] = std::exp(scores[j] - mx);
          sum += scores[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        float* o = op + t * nh * dv + h * dv;
        for (int64_t j = 0; j < len; ++j) {
          const float p = scores[j] * inv;
          const float* vv = v_cache + (j * n_kv_heads + kvh) * dv;
          for (int64_t d = 0; d < dv; ++d) o[d] += p * vv[d];
        }
      }
    }
  }
  return out;
}

}  // namespace hylora::ops
