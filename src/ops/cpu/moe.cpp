#include "ops/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/forward_batch.h"
#include "ops/elementwise.h"

namespace hylora::ops {

namespace {
// Indices of the k largest values, largest first; ties keep the lower index first (torch.topk on CPU does too for
// the sizes involved).
std::vector<int32_t> top_k(const std::vector<float>& v, int64_t k) {
  std::vector<int32_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
  idx.resize(k);
  return idx;
}
}  // namespace

Routing route_softmax_topk(const Tensor& logits, int64_t k, bool normalize) {
  const int64_t n = logits.dim(0), E = logits.dim(1);
  Routing r;
  r.k = k;
  r.ids.resize(n * k);
  r.weights.resize(n * k);
  for (int64_t t = 0; t < n; ++t) {
    const float* l = logits.f32() + t * E;
    float mx = *std::max_element(l, l + E);
    std::vector<float> p(E);
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(l[e] - mx));
    for (auto& x : p) x = static_cast<float>(x / sum);
    auto idx = top_k(p, k);
    double tot = 0;
    for (auto i : idx) tot += p[i];
    for (int64_t j = 0; j < k; ++j) {
      r.ids[t * k + j] = idx[j];
      r.weights[t * k + j] = normalize ? static_cast<float>(p[idx[j]] / tot) : p[idx[j]];
    }
  }
  return r;
}

Routing route_sigmoid_grouped(const Tensor& logits, const Tensor& bias, int64_t n_group, int64_t topk_group,
                              int64_t k, bool normalize, float scale) {
  const int64_t n = logits.dim(0), E = logits.dim(1), per_group = E / n_group;
  Routing r;
  r.k = k;
  r.ids.resize(n * k);
  r.weights.resize(n * k);
  for (int64_t t = 0; t < n; ++t) {
    std::vector<float> s(E), sc(E);
    for (int64_t e = 0; e < E; ++e) {
      s[e] = sigmoid(logits.f32()[t * E + e]);
      sc[e] = s[e] + bias.f32()[e];
    }
    std::vector<float> group_score(n_group);
    for (int64_t g = 0; g < n_group; ++g) {
      std::vector<float> grp(sc.begin() + g * per_group, sc.begin() + (g + 1) * per_group);
      auto top2 = top_k(grp, std::min<int64_t>(2, per_group));
      float gs = 0;
      for (auto i : top2) gs += grp[i];
      group_score[g] = gs;
    }
    auto keep = top_k(group_score, topk_group);
    std::vector<float> masked(E, -INFINITY);
    for (auto g : keep)
      for (int64_t e = g * per_group; e < (g + 1) * per_group; ++e) masked[e] = sc[e];
    auto idx = top_k(masked, k);
    double tot = 0;
    for (auto i : idx) tot += s[i];
    for (int64_t j = 0; j < k; ++j) {
      r.ids[t * k + j] = idx[j];
      float w = s[idx[j]];
      if (normalize) w = static_cast<float>(w / (tot + 1e-20));
      r.weights[t * k + j] = w * scale;
    }
  }
  return r;
}

Tensor moe_experts(const Tensor& x, const Routing& routing, const ExpertLinear& up, const ExpertLinear& down,
                   ExpertActivation act, const ForwardBatch& batch) {
  const int64_t n = x.dim(0), in = x.dim(1), E = up.num_experts(), k = routing.k;
  const int64_t up_out = up.out_features();
  const int64_t inter = act == ExpertActivation::kSiluGated ? up_out / 2 : up_out;
  const int64_t out_dim = down.out_features();
  HYLORA_CHECK(up.in_features() == in && down.in_features() == inter, "internal: expert shapes ", up.name);
  Tensor out = Tensor::zeros({n, out_dim});
  // Tokens per expert, in token order.
  std::vector<std::vector<int64_t>> rows(E), slot(E);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < k; ++j) {
      rows[routing.ids[t * k + j]].push_back(t);
      slot[routing.ids[t * k + j]].push_back(j);
    }
  for (int64_t e = 0; e < E; ++e) {
    const int64_t m = static_cast<int64_t>(rows[e].size());
    if (m == 0) continue;
    Tensor xe = Tensor::empty({m, in});
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(x.f32() + rows[e][i] * in, in, xe.f32() + i * in);
    Tensor w_up = Tensor::view_of(up.weight.f32() + e * up_out * in, {up_out, in}, DType::F32, nullptr);
    Tensor h = matmul_nt(xe, w_up);  // [m, up_out]
    if (batch.lora && up.lora_id >= 0) batch.lora->apply_expert(up, e, rows[e], xe, h);
    Tensor a = Tensor::empty({m, inter});
    for (int64_t i = 0; i < m; ++i) {
      const float* hp = h.f32() + i * up_out;
      float* ap = a.f32() + i * inter;
      if (act == ExpertActivation::kSiluGated) {
        for (int64_t c = 0; c < inter; ++c) ap[c] = silu(hp[c]) * hp[inter + c];
      } else {
        for (int64_t c = 0; c < inter; ++c) {
          const float r = std::max(hp[c], 0.0f);
          ap[c] = r * r;
        }
      }
    }
    Tensor w_down = Tensor::view_of(down.weight.f32() + e * out_dim * inter, {out_dim, inter}, DType::F32, nullptr);
    Tensor y = matmul_nt(a, w_down);  // [m, out_dim]
    if (batch.lora && down.lora_id >= 0) batch.lora->apply_expert(down, e, rows[e], a, y);
    for (int64_t i = 0; i < m; ++i) {
      const float w = routing.weights[rows[e][i] * k + slot[e][i]];
      float* o = out.f32() + rows[e][i] * out_dim;
      const float* yp = y.f32() + i * out_dim;
      for (int64_t c = 0; c < out_dim; ++c) o[c] += w * yp[c];
    }
  }
  return out;
}

}  // namespace hylora::ops
