#include "dist/sharded_embedding.h"

#include <cstring>

#include "core/error.h"
#include "ops/elementwise.h"

namespace hylora::dist {

EmbeddingShard shard_embedding(const ProjectionPlan& plan, int rank, const Tensor& table,
                               const ops::LoraSliceBuffers* lora) {
  HYLORA_CHECK(plan.spec.kind == TargetKind::kEmbedding, plan.spec.name, ": not an embedding");
  const RankShard& rs = plan.ranks.at(rank);
  EmbeddingShard e;
  e.vocab = rs.in_parts.at(0).rows;
  const int64_t H = table.dim(1), n = e.vocab.size;
  e.table = Tensor::zeros({n + 1, H});
  std::memcpy(e.table.f32(), table.f32() + e.vocab.begin * H, n * H * sizeof(float));
  if (!lora) return e;
  e.has_lora = true;
  const int64_t G = lora->A.dim(0), R = lora->A.dim(1), V = lora->A.dim(2);
  e.lora.A = Tensor::zeros({G, R, n + 1});
  for (int64_t q = 0; q < G * R; ++q)
    std::memcpy(e.lora.A.f32() + q * (n + 1), lora->A.f32() + q * V + e.vocab.begin, n * sizeof(float));
  e.lora.B = lora->B.clone();  // replicated
  e.lora.rank = lora->rank.clone();
  e.lora.out_offset = 0;
  e.lora.out_size = lora->out_size;
  return e;
}

void localize_ids(const Tensor& ids, Range vocab, Tensor& local) {
  HYLORA_CHECK(ids.numel() == local.numel(), "localize_ids: ", ids.numel(), " ids, ", local.numel(), " outputs");
  for (int64_t i = 0; i < ids.numel(); ++i) {
    const int32_t id = ids.i32()[i];
    local.i32()[i] = id >= vocab.begin && id < vocab.end() ? static_cast<int32_t>(id - vocab.begin)
                                                           : static_cast<int32_t>(vocab.size);
  }
}

void sharded_embedding(ExecCtx& ctx, Communicator& comm, const EmbeddingShard& e, const Tensor& ids,
                       const ops::LoraSegments& seg, Tensor& y) {
  const int64_t T = ids.numel(), H = e.table.dim(1);
  check_shape(y, {T, H}, "sharded embedding output");
  Tensor local = Tensor::empty({T}, DType::I32);
  localize_ids(ids, e.vocab, local);
  const bool lora = e.has_lora && !seg.empty();
  const int64_t R = lora ? e.lora.A.dim(1) : 0, ny = T * H, ns = lora ? seg.num_rows * R : 0;
  Tensor buf = Tensor::empty({ny + ns});  // [partial lookup | partial shrink]: one all-reduce
  Tensor y_part = buf.rows(0, ny).reshape({T, H});
  ops::embedding(ctx, e.table, local, y_part);
  Tensor s;
  if (lora) {
    s = buf.rows(ny, ny + ns).reshape({seg.num_rows, 1, R});
    ops::lora_shrink_embedding(ctx, local, seg, {&e.lora}, s);
  }
  comm.all_reduce_sum(ctx, buf);
  copy_into(y_part, y);
  if (lora) ops::lora_expand(ctx, s, seg, {&e.lora}, y);
}

}  // namespace hylora::dist
