#include "lora/lora_pool.h"

#include <algorithm>

namespace hylora::lora {

namespace {
void zero(Tensor& t) {
  if (t.defined()) std::fill(t.f32(), t.f32() + t.numel(), 0.0f);
}
}  // namespace

LoraPool::LoraPool(const LoraTargets& targets, int64_t num_slots, int64_t max_rank)
    : targets_(targets), max_rank_(max_rank), slots_(num_slots) {
  HYLORA_CHECK(num_slots > 0 && max_rank > 0, "LoRA pool: --max-loras-per-batch and --max-lora-rank must be positive");
  for (auto& s : slots_) {
    s.linears.resize(targets.linears.size());
    for (size_t t = 0; t < targets.linears.size(); ++t) s.linears[t].resize(targets.linears[t]->slices.size());
    s.experts.resize(targets.experts.size());
    for (size_t t = 0; t < targets.experts.size(); ++t) s.experts[t].resize(targets.experts[t]->slices.size());
  }
}

int32_t LoraPool::slot_of(const std::string& name) const {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].adapter && slots_[i].adapter->name == name) return static_cast<int32_t>(i);
  return -1;
}

int32_t LoraPool::acquire(const std::shared_ptr<const NormalizedAdapter>& adapter, const std::set<int32_t>& in_use) {
  int32_t slot = slot_of(adapter->name);
  if (slot >= 0 && slots_[slot].adapter != adapter) load_into(slots_[slot], adapter);  // reloaded under that name
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
    load_into(slots_[slot], adapter);
  }
  slots_[slot].last_use = ++clock_;
  return slot;
}

void LoraPool::pin(const std::shared_ptr<const NormalizedAdapter>& adapter) {
  int64_t pinned = 0;
  for (auto& s : slots_) pinned += s.pinned && !(s.adapter && s.adapter->name == adapter->name);
  if (pinned + 1 > num_slots() - 1)
    fail("adapter \"", adapter->name, "\": cannot pin it: at most --max-loras-per-batch − 1 = ", num_slots() - 1,
         " adapters may be pinned");
  std::set<int32_t> none;
  slots_[acquire(adapter, none)].pinned = true;
}

int64_t LoraPool::num_pinned() const {
  int64_t n = 0;
  for (auto& s : slots_) n += s.pinned;
  return n;
}

void LoraPool::unpin(const std::string& name) {
  if (int32_t s = slot_of(name); s >= 0) slots_[s].pinned = false;
}

void LoraPool::evict(const std::string& name) {
  if (int32_t s = slot_of(name); s >= 0) {
    slots_[s].adapter.reset();
    slots_[s].pinned = false;
  }
}

void LoraPool::fill(Buffers& b, const NormalizedSlice& s, int64_t E, int64_t in, int64_t out_size) {
  if (!b.A.defined()) {
    b.A = Tensor::zeros({E, max_rank_, in});        // [E, max_r, in]
    b.B = Tensor::zeros({E, out_size, max_rank_});  // [E, out_slice, max_r]
  }
  const int64_t r = s.rank;
  HYLORA_CHECK(r <= max_rank_, "internal: adapter rank ", r, " above the pool's max rank ", max_rank_);
  for (int64_t e = 0; e < E; ++e) {
    std::copy_n(s.A.f32() + e * r * in, r * in, b.A.f32() + e * max_rank_ * in);  // rows [0, r)
    for (int64_t o = 0; o < out_size; ++o)                                          // columns [0, r)
      std::copy_n(s.B.f32() + (e * out_size + o) * r, r, b.B.f32() + (e * out_size + o) * max_rank_);
  }
  b.rank = r;
}

void LoraPool::load_into(Slot& slot, const std::shared_ptr<const NormalizedAdapter>& adapter) {
  // Zero first: whatever the previous occupant wrote must not leak into the new one (lora.md §3).
  for (auto* group : {&slot.linears, &slot.experts})
    for (auto& t : *group)
      for (auto& b : t) {
        zero(b.A);
        zero(b.B);
        b.rank = 0;
      }
  zero(slot.embedding.A);
  zero(slot.embedding.B);
  slot.embedding.rank = 0;
  for (auto& s : adapter->linears) {
    const Linear& l = *targets_.linears.at(s.target);
    fill(slot.linears[s.target][s.slice], s, 1, l.in_features(), l.slices[s.slice].out_size);
  }
  for (auto& s : adapter->experts) {
    const ExpertLinear& l = *targets_.experts.at(s.target);
    fill(slot.experts[s.target][s.slice], s, l.num_experts(), l.in_features(), l.slices[s.slice].out_size);
  }
  for (auto& s : adapter->embedding)
    fill(slot.embedding, s, 1, targets_.embedding->table.dim(0), targets_.embedding->table.dim(1));
  slot.adapter = adapter;
  slot.pinned = false;
  ++loads_;
}

std::vector<ops::LoraSliceBuffers> LoraPool::linear_buffers(int32_t target) const {
  const Linear& l = *targets_.linears.at(target);
  std::vector<ops::LoraSliceBuffers> out(l.slices.size());
  for (size_t k = 0; k < l.slices.size(); ++k) {
    out[k].out_offset = l.slices[k].out_offset;
    out[k].out_size = l.slices[k].out_size;
    for (auto& s : slots_) {
      const Buffers& b = s.linears[target][k];
      out[k].A.push_back(b.A.defined() ? b.A.f32() : nullptr);
      out[k].B.push_back(b.B.defined() ? b.B.f32() : nullptr);
    }
  }
  return out;
}

std::vector<ops::LoraSliceBuffers> LoraPool::expert_buffers(int32_t target, int64_t expert) const {
  const ExpertLinear& l = *targets_.experts.at(target);
  const int64_t in = l.in_features();
  std::vector<ops::LoraSliceBuffers> out(l.slices.size());
  for (size_t k = 0; k < l.slices.size(); ++k) {
    const int64_t size = l.slices[k].out_size;
    out[k].out_offset = l.slices[k].out_offset;
    out[k].out_size = size;
    for (auto& s : slots_) {
      const Buffers& b = s.experts[target][k];
      out[k].A.push_back(b.A.defined() ? b.A.f32() + expert * max_rank_ * in : nullptr);
      out[k].B.push_back(b.B.defined() ? b.B.f32() + expert * size * max_rank_ : nullptr);
    }
  }
  return out;
}

std::vector<ops::LoraSliceBuffers> LoraPool::embedding_buffers() const {
  std::vector<ops::LoraSliceBuffers> out(1);
  out[0].out_offset = 0;
  out[0].out_size = targets_.embedding->table.dim(1);
  for (auto& s : slots_) {
    out[0].A.push_back(s.embedding.A.defined() ? s.embedding.A.f32() : nullptr);
    out[0].B.push_back(s.embedding.B.defined() ? s.embedding.B.f32() : nullptr);
  }
  return out;
}

int64_t LoraPool::linear_rank(int32_t slot, int32_t target, int32_t slice) const {
  return slots_.at(slot).linears.at(target).at(slice).rank;
}

std::vector<const DenseDelta*> LoraPool::linear_deltas(int32_t slot, int32_t target) const {
  std::vector<const DenseDelta*> out;
  const auto& a = slots_.at(slot).adapter;
  if (a)
    for (auto& d : a->linear_deltas)
      if (d.target == target) out.push_back(&d);
  return out;
}

const Tensor* LoraPool::embedding_delta(int32_t slot) const {
  const auto& a = slots_.at(slot).adapter;
  return a && a->embedding_delta.defined() ? &a->embedding_delta : nullptr;
}

}  // namespace hylora::lora
