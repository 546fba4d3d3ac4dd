#include "models/tp_linear_forward.h"

#include <cstring>

#include "core/communicator.h"
#include "models/linear_forward.h"
#include "ops/elementwise.h"
#include "ops/linear.h"

namespace hylora {

namespace {

// Zeroes rows of a [rows, w] host tensor where mask[row] is set (ids this rank does not hold). Host loop: the
// in-process communicator is CPU-only; a GPU rank would mask inside its lookup kernel instead.
void zero_rows(Tensor& t, const std::vector<uint8_t>& mask, const int32_t* perm = nullptr) {
  HYLORA_CHECK(t.device() == Device::CPU, "internal: tensor-parallel embedding masking runs on the CPU only");
  const int64_t n = t.dim(0), w = t.numel() / n;
  for (int64_t i = 0; i < n; ++i)
    if (mask[perm ? perm[i] : i]) std::memset(t.f32() + i * w, 0, w * sizeof(float));
}

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
  a.comm->all_reduce_sum(buf);
  ops::copy(a.ctx, part, y);
  if (lin.bias.defined()) ops::add_bias(a.ctx, lin.bias, y);  // once, after the sum
  if (tw) ops::lora_expand(a.ctx, s, seg, tw->slice_ptrs(), y);
}

}  // namespace

void tp_linear(const ForwardArgs& a, const Linear& lin, const Tensor& x, Tensor& y, const ops::LoraSegments& seg) {
  if (lin.tp == TpRole::kRowReduce) return row_reduce(a, lin, x, y, seg);
  // kGatherColumns: local [N, out_local], then every rank's columns side by side (rank order = vocabulary order).
  Tensor local = a.tmp({x.dim(0), lin.out_features()});
  linear_local(a, lin, x, local, &seg);
  dist::all_gather_columns(*a.comm, local, y);
}

void tp_localize_routing(const Tensor& ids, const Tensor& weights, int64_t e0, int64_t n, Tensor& local_ids,
                         Tensor& local_weights) {
  HYLORA_CHECK(ids.device() == Device::CPU, "internal: expert-parallel routing runs on the CPU only");
  for (int64_t i = 0; i < ids.numel(); ++i) {
    const int64_t e = ids.i32()[i] - e0;
    const bool mine = e >= 0 && e < n;
    local_ids.i32()[i] = mine ? static_cast<int32_t>(e) : 0;
    local_weights.f32()[i] = mine ? weights.f32()[i] : 0.0f;
  }
}

void tp_all_reduce(const ForwardArgs& a, Tensor& t) {
  HYLORA_CHECK(t.contiguous(), "internal: all-reduce of a strided tensor");
  a.comm->all_reduce_sum(t);
}

void tp_embed(const ForwardArgs& a, const Embedding& emb, Tensor& y) {
  const Tensor& ids = a.step.token_ids;  // [T] int32, global ids
  HYLORA_CHECK(ids.device() == Device::CPU, "internal: tensor-parallel embedding runs on the CPU only");
  const int64_t T = ids.numel(), H = emb.table.dim(1), V_local = emb.table.dim(0);
  Tensor local = a.tmp({T}, DType::I32);  // id − vocab_begin, or 0 (masked) for ids held elsewhere
  std::vector<uint8_t> elsewhere(T);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t l = ids.i32()[t] - emb.vocab_begin;
    elsewhere[t] = l < 0 || l >= V_local;
    local.i32()[t] = elsewhere[t] ? 0 : static_cast<int32_t>(l);
  }
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
    zero_rows(s, elsewhere, seg.perm.i32());  // logical row i is token perm[i]
    for (int64_t g = 0; g < static_cast<int64_t>(seg.group_host.size()); ++g) {  // replaced tables: this rank's rows
      const int32_t slot = seg.group_host[g];
      if (slot >= static_cast<int32_t>(a.lora->embedding_delta.size())) continue;
      const Tensor& d = a.lora->embedding_delta[slot];
      if (d.defined()) ops::lora_segment_embedding_delta(a.ctx, local, seg, g, d, part);
    }
  }
  zero_rows(part, elsewhere);
  a.comm->all_reduce_sum(buf);
  ops::copy(a.ctx, part, y);
  if (lora) ops::lora_expand(a.ctx, s, seg, a.lora->embedding.slice_ptrs(), y);
}

}  // namespace hylora
