#include "dist/sharded_linear.h"

#include "core/error.h"
#include "ops/linear.h"

namespace hylora::dist {

namespace {

int64_t max_rank_of(const LinearShard& w) { return w.lora.empty() ? 0 : w.lora[0].A.dim(1); }

}  // namespace

void sharded_linear(ExecCtx& ctx, Communicator& comm, const LinearShard& w, const Tensor& x,
                    const ops::LoraSegments& seg, Tensor& y) {
  const int64_t T = x.dim(0), out = w.weight.dim(0);
  check_shape(x, {T, w.weight.dim(1)}, w.parallel == Parallel::kRow ? "row-parallel input (local columns)" : "input");
  check_shape(y, {T, out}, "sharded linear output");
  const bool lora = !seg.empty() && !w.lora.empty();
  const int64_t slices = static_cast<int64_t>(w.lora.size()), max_r = max_rank_of(w);
  if (w.parallel != Parallel::kRow) {
    ops::matmul_nt(ctx, x, w.weight, y);
    if (w.bias.defined()) ops::add_bias(ctx, w.bias, y);
    if (!lora) return;
    Tensor s = ctx.scratch.tensor({seg.num_rows, slices, max_r});
    ops::lora_shrink(ctx, x, seg, w.lora_ptrs(), s);
    ops::lora_expand(ctx, s, seg, w.lora_ptrs(), y);
    return;
  }
  // Row-parallel: [partial y (T·out) | partial shrink (rows·slices·max_r)] in one buffer, one all-reduce.
  const int64_t ny = T * out, ns = lora ? seg.num_rows * slices * max_r : 0;
  Tensor buf = Tensor::empty({ny + ns});
  Tensor y_part = buf.rows(0, ny).reshape({T, out});
  ops::matmul_nt(ctx, x, w.weight, y_part);
  Tensor s;
  if (lora) {
    s = buf.rows(ny, ny + ns).reshape({seg.num_rows, slices, max_r});
    ops::lora_shrink(ctx, x, seg, w.lora_ptrs(), s);
  }
  comm.all_reduce_sum(ctx, buf);
  copy_into(y_part, y);
  if (w.bias.defined()) ops::add_bias(ctx, w.bias, y);  // once, after the sum
  if (lora) ops::lora_expand(ctx, s, seg, w.lora_ptrs(), y);
}

void localize_routing(const Tensor& ids, const Tensor& weights, Range experts, Tensor& local_ids,
                      Tensor& local_weights) {
  const int64_t n = ids.numel();
  HYLORA_CHECK(weights.numel() == n && local_ids.numel() == n && local_weights.numel() == n,
               "localize_routing: ids, weights and their local copies must have the same shape");
  for (int64_t i = 0; i < n; ++i) {
    const int32_t e = ids.i32()[i];
    const bool mine = e >= experts.begin && e < experts.end();
    local_ids.i32()[i] = mine ? static_cast<int32_t>(e - experts.begin) : 0;
    local_weights.f32()[i] = mine ? weights.f32()[i] : 0.0f;
  }
}

void expert_projection(ExecCtx& ctx, const LinearShard& w, const Tensor& xs, const ops::MoePermutation& perm,
                       Tensor& ys) {
  check_shape(xs, {perm.num_pairs, w.weight.dim(2)}, "expert projection input");
  check_shape(ys, {perm.num_pairs, w.weight.dim(1)}, "expert projection output");
  ops::moe_expert_gemm(ctx, xs, w.weight, perm, ys);
  if (perm.lora.empty() || w.lora.empty()) return;
  Tensor s = ctx.scratch.tensor({perm.lora.num_rows, static_cast<int64_t>(w.lora.size()), max_rank_of(w)});
  ops::lora_shrink(ctx, xs, perm.lora, w.lora_ptrs(), s);
  ops::lora_expand(ctx, s, perm.lora, w.lora_ptrs(), ys);
}

}  // namespace hylora::dist
