#include "engine/lora_mirror.h"

#include "core/error.h"

namespace hylora {

LoraMirror::LoraMirror(Allocator& alloc, Copy copy, Upload upload)
    : alloc_(alloc), copy_(std::move(copy)), upload_(std::move(upload)) {}

void LoraMirror::copy_slot(const Tensor& src, Tensor& dst, int32_t slot, int64_t slots) {
  if (!src.defined()) return;
  if (!dst.defined()) {
    dst = Tensor::empty(src.shape(), src.dtype(), alloc_);
    if (dst.nbytes() > 0) alloc_.zero(dst.raw(), dst.nbytes());  // the host masters start zero as well
  }
  if (slot < 0) return;
  HYLORA_CHECK(src.contiguous() && src.nbytes() % static_cast<size_t>(slots) == 0,
               "internal: a LoRA slot buffer is not [slots·groups, …]");
  const size_t per = src.nbytes() / static_cast<size_t>(slots);
  if (per == 0) return;
  copy_(static_cast<char*>(dst.raw()) + per * slot, static_cast<const char*>(src.raw()) + per * slot, per);
}

Tensor LoraMirror::delta(const Tensor& t, std::map<const void*, Tensor>& deltas) {
  if (!t.defined()) return Tensor();
  auto it = deltas_.find(t.raw());
  Tensor d = it != deltas_.end() ? it->second : upload_(t);
  deltas[t.raw()] = d;
  return d;
}

void LoraMirror::sync_target(const LoraTargetWeights& src, LoraTargetWeights& dst, const std::vector<int32_t>& dirty,
                             int64_t slots, std::map<const void*, Tensor>& deltas) {
  dst.slices.resize(src.slices.size());
  for (size_t k = 0; k < src.slices.size(); ++k) {
    const ops::LoraSliceBuffers& s = src.slices[k];
    ops::LoraSliceBuffers& d = dst.slices[k];
    d.out_offset = s.out_offset;
    d.out_size = s.out_size;
    // Slot −1: allocate only (the first sync with nothing loaded).
    for (int32_t slot : dirty.empty() ? std::vector<int32_t>{-1} : dirty) {
      copy_slot(s.A, d.A, slot, slots);
      copy_slot(s.B, d.B, slot, slots);
      copy_slot(s.rank, d.rank, slot, slots);
    }
  }
  dst.dense_delta.assign(src.dense_delta.size(), {});
  for (size_t s = 0; s < src.dense_delta.size(); ++s)
    for (const Tensor& t : src.dense_delta[s]) dst.dense_delta[s].push_back(delta(t, deltas));
}

void LoraMirror::sync_flags(const LoraWeights& h) {
  for (size_t i = 0; i < h.linears.size() && i < dev_.linears.size(); ++i)
    dev_.linears[i].slot_active = h.linears[i].slot_active;
  for (size_t i = 0; i < h.experts.size() && i < dev_.experts.size(); ++i)
    dev_.experts[i].slot_active = h.experts[i].slot_active;
  dev_.embedding.slot_active = h.embedding.slot_active;
}

void LoraMirror::sync(const lora::LoraPool& pool) {
  const LoraWeights& h = pool.weights();
  const int64_t slots = h.slots;
  if (!allocated_) synced_.assign(static_cast<size_t>(slots), 0);  // version 0: never loaded, zero like the buffers
  std::vector<int32_t> dirty;
  for (int32_t s = 0; s < static_cast<int32_t>(slots); ++s)
    if (pool.slot_version(s) != synced_[s]) dirty.push_back(s);
  if (allocated_ && dirty.empty()) {  // nothing loaded since the last sync: an evict changes the flags only
    sync_flags(h);
    return;
  }
  std::map<const void*, Tensor> deltas;
  dev_.slots = h.slots;
  dev_.max_rank = h.max_rank;
  dev_.linears.resize(h.linears.size());
  for (size_t i = 0; i < h.linears.size(); ++i) sync_target(h.linears[i], dev_.linears[i], dirty, slots, deltas);
  dev_.experts.resize(h.experts.size());
  for (size_t i = 0; i < h.experts.size(); ++i) sync_target(h.experts[i], dev_.experts[i], dirty, slots, deltas);
  sync_target(h.embedding, dev_.embedding, dirty, slots, deltas);
  dev_.embedding_delta.clear();
  for (const Tensor& t : h.embedding_delta) dev_.embedding_delta.push_back(delta(t, deltas));
  has_deltas_ = !deltas.empty();
  deltas_ = std::move(deltas);
  for (int32_t s : dirty) synced_[s] = pool.slot_version(s);
  allocated_ = true;
  sync_flags(h);
}

}  // namespace hylora
