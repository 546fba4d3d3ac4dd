#include "models/tp_linear_forward.h"

#include <algorithm>

#include "core/communicator.h"
#include "models/linear_forward.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/tensor_parallel.h"

namespace hylora {

namespace {

void row_reduce(const ForwardArgs& a, const Linear& lin, const Tensor& x, Tensor& y, const ops::LoraSegments& seg) {
  const int64_t N = x.dim(0), out = lin.out_features();
  HYLORA_CHECK(x.ndim() == 2 && x.dim(1) == lin.in_features(), "internal: ", lin.name, " expects its local input [N, ",
               lin.in_features(), "], got ", shape_str(x.shape()));
  const LoraTargetWeights* tw = nullptr;
  if (a.lora && !seg.empty() && lin.lora_id >= 0) {
    tw = &a.lora->linears.at(lin.lora_id);
    if (!tw->active_for(seg.group_host)) tw = nullptr;  // the same decision on every rank (slot_active is per adapter)
  }
  const int64_t slices = static_cast<int64_t>(lin.slices.size()), max_r = a.lora ? a.lora->max_rank : 0;
  const int64_t ny = N * out, ns = tw ? seg.num_rows * slices * max_r : 0;
  Tensor buf = a.tmp({ny + ns});  // [partial y | partial shrink]: one all-reduce
  Tensor part = buf.rows(0, ny).reshape({N, out});
  ops::matmul_nt(a.ctx, x, lin.weight, part);
  Tensor s;
  if (tw) {
    s = buf.rows(ny, ny + ns).reshape({seg.num_rows, slices, max_r});
    ops::lora_shrink(a.ctx, x, seg, tw->slice_ptrs(), s);
    if (!tw->dense_delta.empty()) add_dense_deltas(a, lin.slices, *tw, x, seg, part);  // column share, summed below
  }
  a.comm->all_reduce_sum(a.ctx, buf);
  ops::copy(a.ctx, part, y);
  if (lin.bias.defined()) ops::add_bias(a.ctx, lin.bias, y);  // once, after the sum
  if (tw) ops::lora_expand(a.ctx, s, seg, tw->slice_ptrs(), y);
}

}  // namespace

void tp_linear(const ForwardArgs& a, const Linear& lin, const Tensor& x, Tensor& y, const ops::LoraSegments& seg) {
  if (lin.tp == TpRole::kRowReduce) return row_reduce(a, lin, x, y, seg);
  // kGatherColumns: local [N, out_local], then every rank's columns side by side (rank order = vocabulary order).
  const int64_t N = x.dim(0);
  Tensor local = a.tmp({N, lin.out_features()});
  linear_local(a, lin, x, local, &seg);
  if (lin.gather_widths.empty()) return a.comm->all_gather_columns(a.ctx, local, y);
  // Unequal shards: pad each to the widest W, gather [N, ranks · W], keep every rank's real columns. The padding
  // columns [out_local, W) are never written and never read back: they are dropped, not masked.
  const int64_t ranks = static_cast<int64_t>(lin.gather_widths.size());
  HYLORA_CHECK(ranks == a.comm->size(), "internal: ", lin.name, " has ", ranks, " gather widths for ",
               a.comm->size(), " ranks");
  int64_t W = 0, V = 0;
  for (int64_t w : lin.gather_widths) {
    W = std::max(W, w);
    V += w;
  }
  HYLORA_CHECK(y.ndim() == 2 && y.dim(0) == N && y.dim(1) == V && lin.out_features() == lin.gather_widths.at(a.comm->rank()),
               "internal: ", lin.name, " gathers ", V, " columns (this rank ", lin.out_features(), ") into ",
               shape_str(y.shape()));
  Tensor padded = a.tmp({N, W});   // [N, W]: this rank's columns, then padding
  Tensor gathered = a.tmp({N, ranks * W});
  Tensor head = padded.cols(0, lin.out_features());
  ops::copy(a.ctx, local, head);
  a.comm->all_gather_columns(a.ctx, padded, gathered);
  int64_t at = 0;
  for (int64_t r = 0; r < ranks; ++r) {
    const int64_t w = lin.gather_widths[static_cast<size_t>(r)];
    Tensor dst = y.cols(at, w);
    ops::copy(a.ctx, gathered.cols(r * W, w), dst);
    at += w;
  }
}

void tp_localize_routing(const ForwardArgs& a, const Tensor& ids, const Tensor& weights, int64_t e0, int64_t n,
                         Tensor& local_ids, Tensor& local_weights) {
  ops::localize_expert_routing(a.ctx, ids, weights, e0, n, local_ids, local_weights);
}

void tp_all_reduce(const ForwardArgs& a, Tensor& t) {
  HYLORA_CHECK(t.contiguous(), "internal: all-reduce of a strided tensor");
  a.comm->all_reduce_sum(a.ctx, t);
}

void tp_embed(const ForwardArgs& a, const Embedding& emb, Tensor& y) {
  const Tensor& ids = a.step.token_ids;  // [T] int32, global ids, on the step's device
  const int64_t T = ids.numel(), H = emb.table.dim(1), V_local = emb.table.dim(0);
  Tensor local = a.tmp({T}, DType::I32);      // id − vocab_begin, or 0 (masked) for ids held elsewhere
  Tensor elsewhere = a.tmp({T}, DType::I32);  // 1 where another rank holds the id
  ops::localize_vocab_ids(a.ctx, ids, emb.vocab_begin, V_local, local, elsewhere);
  const ops::LoraSegments& seg = a.step.lora;
  const bool lora = a.lora_active() && emb.lora_id >= 0 && a.lora->embedding.active_for(seg.group_host);
  const int64_t R = lora ? a.lora->max_rank : 0, ny = T * H, ns = lora ? seg.num_rows * R : 0;
  Tensor buf = a.tmp({ny + ns});  // [partial lookup | partial shrink]: one all-reduce
  Tensor part = buf.rows(0, ny).reshape({T, H});
  ops::embedding(a.ctx, emb.table, local, part);
  Tensor s;
  if (lora) {
    const auto slices = a.lora->embedding.slice_ptrs();
    s = buf.rows(ny, ny + ns).reshape({seg.num_rows, 1, R});
    ops::lora_shrink_embedding(a.ctx, local, seg, slices, s);
    ops::zero_masked_rows(a.ctx, elsewhere, seg.perm, s);  // logical row i is token perm[i]
    for (int64_t g = 0; g < static_cast<int64_t>(seg.group_host.size()); ++g) {  // replaced tables: this rank's rows
      const int32_t slot = seg.group_host[g];
      if (slot >= static_cast<int32_t>(a.lora->embedding_delta.size())) continue;
      const Tensor& d = a.lora->embedding_delta[slot];
      if (d.defined()) ops::lora_segment_embedding_delta(a.ctx, local, seg, g, d, part);
    }
  }
  ops::zero_masked_rows(a.ctx, elsewhere, Tensor(), part);
  a.comm->all_reduce_sum(a.ctx, buf);
  ops::copy(a.ctx, part, y);
  if (lora) ops::lora_expand(a.ctx, s, seg, a.lora->embedding.slice_ptrs(), y);
}

}  // namespace hylora
