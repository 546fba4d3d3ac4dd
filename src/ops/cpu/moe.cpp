// CPU reference of the MoE ops (ops/moe.h): routing in fp32 (doubles for the softmax sum), a counting sort of the
// (token, choice) pairs by (expert, slot), one GEMM per expert over its contiguous rows, and the weighted combine.
#include "ops/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "ops/elementwise.h"
#include "ops/linear.h"

namespace hylora::ops::cpu {

namespace {
// Indices of the k largest of v[0..n), largest first; ties keep the lower index first (torch.topk on CPU does too
// for the sizes involved). idx has room for n entries.
void top_k(const float* v, int64_t n, int64_t k, int32_t* idx) {
  std::iota(idx, idx + n, 0);
  std::partial_sort(idx, idx + k, idx + n, [&](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
}

void check_routing(const Tensor& logits, int64_t k, const Tensor& ids, const Tensor& weights) {
  const int64_t T = logits.dim(0), E = logits.dim(1);
  HYLORA_CHECK(k > 0 && k <= E && ids.dim(0) == T && ids.dim(1) == k && weights.dim(0) == T && weights.dim(1) == k,
               "internal: routing of ", shape_str(logits.shape()), " top-", k);
}
}  // namespace

void route_softmax_topk(ExecCtx& ctx, const Tensor& logits, int64_t k, bool normalize, Tensor& ids, Tensor& weights) {
  check_routing(logits, k, ids, weights);
  const int64_t T = logits.dim(0), E = logits.dim(1);
  Tensor p = ctx.scratch.tensor({E});
  Tensor idx = ctx.scratch.tensor({E}, DType::I32);
  for (int64_t t = 0; t < T; ++t) {
    const float* l = logits.f32() + t * logits.ld();
    const float mx = *std::max_element(l, l + E);
    double sum = 0;
    for (int64_t e = 0; e < E; ++e) sum += (p.f32()[e] = std::exp(l[e] - mx));
    for (int64_t e = 0; e < E; ++e) p.f32()[e] = static_cast<float>(p.f32()[e] / sum);
    top_k(p.f32(), E, k, idx.i32());
    double tot = 0;
    for (int64_t j = 0; j < k; ++j) tot += p.f32()[idx.i32()[j]];
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = idx.i32()[j];
      ids.i32()[t * k + j] = e;
      weights.f32()[t * k + j] = normalize ? static_cast<float>(p.f32()[e] / tot) : p.f32()[e];
    }
  }
}

void route_sigmoid_grouped(ExecCtx& ctx, const Tensor& logits, const Tensor& bias, int64_t n_group,
                           int64_t topk_group, int64_t k, bool normalize, float scale, Tensor& ids, Tensor& weights) {
  check_routing(logits, k, ids, weights);
  const int64_t T = logits.dim(0), E = logits.dim(1), per_group = E / n_group;
  Tensor s = ctx.scratch.tensor({E}), sc = ctx.scratch.tensor({E}), masked = ctx.scratch.tensor({E});
  Tensor gscore = ctx.scratch.tensor({n_group});
  Tensor idx = ctx.scratch.tensor({E}, DType::I32);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t e = 0; e < E; ++e) {
      s.f32()[e] = sigmoid(logits.f32()[t * logits.ld() + e]);
      sc.f32()[e] = s.f32()[e] + bias.f32()[e];
    }
    for (int64_t g = 0; g < n_group; ++g) {
      const int64_t top = std::min<int64_t>(2, per_group);
      top_k(sc.f32() + g * per_group, per_group, top, idx.i32());
      float gs = 0;
      for (int64_t j = 0; j < top; ++j) gs += sc.f32()[g * per_group + idx.i32()[j]];
      gscore.f32()[g] = gs;
    }
    top_k(gscore.f32(), n_group, topk_group, idx.i32());
    std::fill(masked.f32(), masked.f32() + E, -INFINITY);
    for (int64_t j = 0; j < topk_group; ++j) {
      const int64_t g = idx.i32()[j];
      for (int64_t e = g * per_group; e < (g + 1) * per_group; ++e) masked.f32()[e] = sc.f32()[e];
    }
    top_k(masked.f32(), E, k, idx.i32());
    double tot = 0;
    for (int64_t j = 0; j < k; ++j) tot += s.f32()[idx.i32()[j]];
    for (int64_t j = 0; j < k; ++j) {
      const int32_t e = idx.i32()[j];
      float w = s.f32()[e];
      if (normalize) w = static_cast<float>(w / (tot + 1e-20));
      ids.i32()[t * k + j] = e;
      weights.f32()[t * k + j] = w * scale;
    }
  }
}

void moe_permute(ExecCtx& ctx, const Tensor& ids, const Tensor& row_slot, int64_t E, int64_t num_slots,
                 MoePermutation& out) {
  const int64_t T = ids.dim(0), k = ids.dim(1), P = T * k;
  int32_t max_slot = -1;
  for (int64_t t = 0; t < T; ++t) max_slot = std::max(max_slot, row_slot.i32()[t]);
  HYLORA_CHECK(max_slot < num_slots, "internal: adapter slot ", max_slot, " outside the step's ", num_slots, " slots");
  const int64_t S1 = max_slot + 2;  // slot buckets: base (-1) first, then 0..max_slot
  // Counting sort by bucket (expert, slot); pairs keep token order inside a bucket.
  Tensor count = ctx.scratch.zeros({E * S1 + 1}, DType::I32);
  for (int64_t p = 0; p < P; ++p) {
    const int32_t e = ids.i32()[p];
    HYLORA_CHECK(e >= 0 && e < E, "internal: expert id ", e, " outside [0, ", E, ")");
    ++count.i32()[e * S1 + row_slot.i32()[p / k] + 1 + 1];
  }
  for (int64_t b = 0; b < E * S1; ++b) count.i32()[b + 1] += count.i32()[b];  // count[b] = first row of bucket b
  out.num_pairs = P;
  out.pair = ctx.scratch.tensor({P}, DType::I32);
  out.expert_offsets = ctx.scratch.tensor({E + 1}, DType::I32);
  for (int64_t e = 0; e <= E; ++e) out.expert_offsets.i32()[e] = e < E ? count.i32()[e * S1] : static_cast<int32_t>(P);
  Tensor next = ctx.scratch.tensor({E * S1}, DType::I32);
  std::memcpy(next.raw(), count.raw(), E * S1 * sizeof(int32_t));
  for (int64_t p = 0; p < P; ++p) out.pair.i32()[next.i32()[ids.i32()[p] * S1 + row_slot.i32()[p / k] + 1]++] = p;
  // LoRA segments: the non-empty (expert, slot ≥ 0) buckets.
  int64_t G = 0, rows = 0;
  for (int64_t e = 0; e < E; ++e)
    for (int64_t sl = 1; sl < S1; ++sl) {
      const int64_t n = count.i32()[e * S1 + sl + 1] - count.i32()[e * S1 + sl];
      G += n > 0;
      rows += n;
    }
  LoraSegments& seg = out.lora;
  seg.num_rows = rows;
  seg.num_segments = G;
  seg.perm = ctx.scratch.tensor({rows}, DType::I32);
  seg.indptr = ctx.scratch.tensor({G + 1}, DType::I32);
  seg.group = ctx.scratch.tensor({G}, DType::I32);
  int64_t g = 0, r = 0;
  seg.indptr.i32()[0] = 0;
  for (int64_t e = 0; e < E; ++e)
    for (int64_t sl = 1; sl < S1; ++sl) {
      const int32_t b = count.i32()[e * S1 + sl], n = count.i32()[e * S1 + sl + 1] - b;
      if (n == 0) continue;
      for (int32_t i = 0; i < n; ++i) seg.perm.i32()[r++] = b + i;
      seg.group.i32()[g] = static_cast<int32_t>((sl - 1) * E + e);
      seg.indptr.i32()[++g] = static_cast<int32_t>(r);
    }
}

void moe_gather(ExecCtx&, const Tensor& x, const MoePermutation& perm, int64_t k, Tensor& xs) {
  const int64_t W = x.dim(1);
  HYLORA_CHECK(xs.dim(0) == perm.num_pairs && xs.dim(1) == W, "internal: moe_gather into ", shape_str(xs.shape()));
  for (int64_t i = 0; i < perm.num_pairs; ++i)
    std::memcpy(xs.f32() + i * xs.ld(), x.f32() + (perm.pair.i32()[i] / k) * x.ld(), W * sizeof(float));
}

void moe_expert_gemm(ExecCtx& ctx, const Tensor& xs, const Tensor& w, const MoePermutation& perm, Tensor& ys) {
  const int64_t E = w.dim(0), out = w.dim(1), in = w.dim(2);
  HYLORA_CHECK(xs.dim(1) == in && ys.dim(1) == out && xs.dim(0) == perm.num_pairs && ys.dim(0) == perm.num_pairs,
               "internal: expert GEMM of ", shape_str(xs.shape()), " with ", shape_str(w.shape()));
  for (int64_t e = 0; e < E; ++e) {
    const int64_t b = perm.expert_offsets.i32()[e], n = perm.expert_offsets.i32()[e + 1] - b;
    if (n == 0) continue;
    Tensor we = Tensor::view_of(w.f32() + e * out * in, {out, in}, DType::F32, nullptr);
    Tensor xe = xs.rows(b, b + n), ye = ys.rows(b, b + n);
    matmul_nt(ctx, xe, we, ye);
  }
}

void moe_combine(ExecCtx& ctx, const Tensor& ys, const MoePermutation& perm, const Tensor& weights, Tensor& out) {
  const int64_t T = out.dim(0), H = out.dim(1), k = weights.dim(1);
  HYLORA_CHECK(ys.dim(1) == H && T * k == perm.num_pairs, "internal: moe_combine shapes");
  Tensor pos = ctx.scratch.tensor({perm.num_pairs}, DType::I32);  // pair -> sorted row
  for (int64_t i = 0; i < perm.num_pairs; ++i) pos.i32()[perm.pair.i32()[i]] = static_cast<int32_t>(i);
  for (int64_t t = 0; t < T; ++t) {
    float* o = out.f32() + t * out.ld();
    std::fill(o, o + H, 0.0f);
    // Sum in sorted-row order (ascending expert), whatever the top-k order was.
    int32_t order[64];
    HYLORA_CHECK(k <= 64, "internal: top-", k, " routing");
    for (int64_t j = 0; j < k; ++j) order[j] = static_cast<int32_t>(j);
    std::sort(order, order + k, [&](int32_t a, int32_t b) { return pos.i32()[t * k + a] < pos.i32()[t * k + b]; });
    for (int64_t jj = 0; jj < k; ++jj) {
      const int64_t j = order[jj];
      const float w = weights.f32()[t * k + j];
      const float* yp = ys.f32() + pos.i32()[t * k + j] * ys.ld();
      for (int64_t c = 0; c < H; ++c) o[c] += w * yp[c];
    }
  }
}

}  // namespace hylora::ops::cpu
