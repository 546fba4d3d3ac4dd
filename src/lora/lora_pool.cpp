#include "lora/lora_pool.h"

#include <algorithm>
#include <cstring>

namespace hylora::lora {

namespace {
// Stacked buffers of one slice over `groups` = slots (or slots·E) groups.
ops::LoraSliceBuffers make_slice(int64_t out_offset, int64_t out_size, int64_t groups, int64_t max_r, int64_t in) {
  ops::LoraSliceBuffers b;
  b.out_offset = out_offset;
  b.out_size = out_size;
  b.A = Tensor::zeros({groups, max_r, in});
  b.B = Tensor::zeros({groups, out_size, max_r});
  b.rank = Tensor::zeros({groups}, DType::I32);
  return b;
}

LoraTargetWeights make_target(const std::vector<LoraSlice>& decl, int64_t slots, int64_t E, int64_t max_r,
                              int64_t in) {
  LoraTargetWeights t;
  for (const LoraSlice& s : decl) t.slices.push_back(make_slice(s.out_offset, s.out_size, slots * E, max_r, in));
  return t;
}

// Zeroes groups [g0, g0 + n) of a slice.
void zero_groups(ops::LoraSliceBuffers& b, int64_t g0, int64_t n) {
  const int64_t a_sz = b.A.dim(1) * b.A.dim(2), b_sz = b.B.dim(1) * b.B.dim(2);
  std::memset(b.A.f32() + g0 * a_sz, 0, n * a_sz * sizeof(float));
  std::memset(b.B.f32() + g0 * b_sz, 0, n * b_sz * sizeof(float));
  std::fill(b.rank.i32() + g0, b.rank.i32() + g0 + n, 0);
}

// Copies an adapter slice (A [E, r, in], B [E, out, r]) into groups [g0, g0 + E): rows / columns [0, r).
void fill_groups(ops::LoraSliceBuffers& b, int64_t g0, const NormalizedSlice& s, int64_t E) {
  const int64_t max_r = b.A.dim(1), in = b.A.dim(2), out = b.B.dim(1), r = s.rank;
  HYLORA_CHECK(r <= max_r, "internal: adapter rank ", r, " above the pool's max rank ", max_r);
  for (int64_t e = 0; e < E; ++e) {
    float* A = b.A.f32() + (g0 + e) * max_r * in;
    float* B = b.B.f32() + (g0 + e) * out * max_r;
    std::copy_n(s.A.f32() + e * r * in, r * in, A);
    for (int64_t o = 0; o < out; ++o) std::copy_n(s.B.f32() + (e * out + o) * r, r, B + o * max_r);
    b.rank.i32()[g0 + e] = static_cast<int32_t>(r);
  }
}
}  // namespace

LoraPool::LoraPool(const LoraTargets& targets, int64_t num_slots, int64_t max_rank)
    : targets_(targets), slots_(num_slots) {
  HYLORA_CHECK(num_slots > 0 && max_rank > 0, "LoRA pool: --max-loras-per-batch and --max-lora-rank must be positive");
  weights_.slots = num_slots;
  weights_.max_rank = max_rank;
  for (const Linear* l : targets.linears)
    weights_.linears.push_back(make_target(l->slices, num_slots, 1, max_rank, l->in_features()));
  for (const ExpertLinear* l : targets.experts)
    weights_.experts.push_back(make_target(l->slices, num_slots, l->num_experts(), max_rank, l->in_features()));
  if (targets.embedding) {
    const Tensor& table = targets.embedding->table;  // [V, H]
    weights_.embedding.slices.push_back(make_slice(0, table.dim(1), num_slots, max_rank, table.dim(0)));
  }
  for (auto& t : weights_.linears) t.dense_delta.assign(num_slots, std::vector<Tensor>(t.slices.size()));
  for (auto& t : weights_.linears) t.slot_active.assign(num_slots, 0);
  for (auto& t : weights_.experts) t.slot_active.assign(num_slots, 0);
  weights_.embedding.slot_active.assign(num_slots, 0);
  weights_.embedding_delta.assign(num_slots, Tensor());
}

int32_t LoraPool::slot_of(const NormalizedAdapter& adapter) const {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].adapter.get() == &adapter) return static_cast<int32_t>(i);
  return -1;
}

int32_t LoraPool::acquire(const std::shared_ptr<const NormalizedAdapter>& adapter, const std::set<int32_t>& in_use) {
  int32_t slot = slot_of(*adapter);
  if (slot < 0) {
    // A free slot first, else the least recently used one that this step does not hold and that is not pinned.
    for (size_t i = 0; i < slots_.size() && slot < 0; ++i)
      if (!slots_[i].adapter) slot = static_cast<int32_t>(i);
    if (slot < 0) {
      uint64_t best = UINT64_MAX;
      for (size_t i = 0; i < slots_.size(); ++i)
        if (!slots_[i].pinned && !in_use.count(static_cast<int32_t>(i)) && slots_[i].last_use < best) {
          best = slots_[i].last_use;
          slot = static_cast<int32_t>(i);
        }
    }
    if (slot < 0)
      fail("adapter \"", adapter->name, "\": no LoRA slot is free (", slots_.size(),
           " slots, all pinned or used by this step); raise --max-loras-per-batch");
    load_into(slot, adapter);
  }
  slots_[slot].last_use = ++clock_;
  return slot;
}

void LoraPool::pin(const std::shared_ptr<const NormalizedAdapter>& adapter) {
  int64_t pinned = 0;
  for (auto& s : slots_) pinned += s.pinned && s.adapter != adapter;
  if (pinned + 1 > num_slots() - 1)
    fail("adapter \"", adapter->name, "\": cannot pin it: at most --max-loras-per-batch − 1 = ", num_slots() - 1,
         " adapters may be pinned");
  slots_[acquire(adapter)].pinned = true;
}

int64_t LoraPool::num_pinned() const {
  int64_t n = 0;
  for (auto& s : slots_) n += s.pinned;
  return n;
}

void LoraPool::unpin(const NormalizedAdapter& adapter) {
  if (int32_t s = slot_of(adapter); s >= 0) slots_[s].pinned = false;
}

void LoraPool::evict(const NormalizedAdapter& adapter) {
  if (int32_t s = slot_of(adapter); s >= 0) {
    slots_[s].adapter.reset();
    slots_[s].pinned = false;
    clear_active(s);
  }
}

void LoraPool::clear_active(int32_t slot) {
  for (auto& t : weights_.linears) t.slot_active.at(slot) = 0;
  for (auto& t : weights_.experts) t.slot_active.at(slot) = 0;
  weights_.embedding.slot_active.at(slot) = 0;
}

void LoraPool::load_into(int32_t slot, const std::shared_ptr<const NormalizedAdapter>& adapter) {
  // Zero first: whatever the previous occupant wrote must not leak into the new one (docs/lora.md §3).
  for (auto& t : weights_.linears) {
    for (auto& b : t.slices) zero_groups(b, slot, 1);
    for (auto& d : t.dense_delta[slot]) d = Tensor();
  }
  for (size_t i = 0; i < weights_.experts.size(); ++i) {
    const int64_t E = targets_.experts[i]->num_experts();
    for (auto& b : weights_.experts[i].slices) zero_groups(b, slot * E, E);
  }
  for (auto& b : weights_.embedding.slices) zero_groups(b, slot, 1);
  weights_.embedding_delta[slot] = Tensor();
  clear_active(slot);

  // slot_active: set wherever something nonzero lands (a rank-0 slice leaves the target untouched).
  for (const NormalizedSlice& s : adapter->linears) {
    fill_groups(weights_.linears.at(s.target).slices.at(s.slice), slot, s, 1);
    if (s.rank > 0) weights_.linears.at(s.target).slot_active[slot] = 1;
  }
  for (const NormalizedSlice& s : adapter->experts) {
    const int64_t E = targets_.experts.at(s.target)->num_experts();
    fill_groups(weights_.experts.at(s.target).slices.at(s.slice), slot * E, s, E);
    if (s.rank > 0) weights_.experts.at(s.target).slot_active[slot] = 1;
  }
  for (const NormalizedSlice& s : adapter->embedding) {
    fill_groups(weights_.embedding.slices.at(0), slot, s, 1);
    if (s.rank > 0) weights_.embedding.slot_active[slot] = 1;
  }
  for (const DenseDelta& d : adapter->linear_deltas) {
    weights_.linears.at(d.target).dense_delta[slot].at(d.slice) = d.delta;
    if (d.delta.defined()) weights_.linears.at(d.target).slot_active[slot] = 1;
  }
  weights_.embedding_delta[slot] = adapter->embedding_delta;
  if (adapter->embedding_delta.defined()) weights_.embedding.slot_active[slot] = 1;
  slots_[slot].adapter = adapter;
  slots_[slot].pinned = false;
  slots_[slot].version = ++loads_;
}

}  // namespace hylora::lora
