#include "kv/cache_pools.h"

#include <algorithm>
#include <cstring>

namespace hylora {

IdPool::IdPool(int64_t n) : total_(n) {
  free_.resize(n);
  for (int64_t i = 0; i < n; ++i) free_[i] = static_cast<int32_t>(n - 1 - i);
}

std::vector<int32_t> IdPool::take(int64_t n, PoolExhausted::Kind kind, const char* what) {
  if (n > available())
    throw PoolExhausted(kind, std::string("need ") + std::to_string(n) + " " + what + ", " +
                                  std::to_string(available()) + " of " + std::to_string(total_) + " are free");
  std::vector<int32_t> ids(free_.end() - n, free_.end());
  std::reverse(ids.begin(), ids.end());
  free_.resize(free_.size() - n);
  return ids;
}

void IdPool::give_back(const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    HYLORA_CHECK(id >= 0 && id < total_, "internal: id ", id, " returned to a pool of ", total_);
    free_.push_back(id);
  }
  std::sort(free_.begin(), free_.end(), std::greater<int32_t>());
  HYLORA_CHECK(std::adjacent_find(free_.begin(), free_.end()) == free_.end(), "internal: an id was returned twice");
}

CachePools::CachePools(const std::vector<LayerCacheSpec>& specs, int64_t num_pages, int64_t page_size,
                       int64_t num_slots, Allocator& alloc, DType kv_dtype)
    : alloc_(&alloc), pages_(num_pages), slots_(num_slots), page_size_(page_size) {
  HYLORA_CHECK(page_size > 0 && num_pages >= 0 && num_slots > 0, "cache pools: page size ", page_size, ", ",
               num_pages, " pages, ", num_slots, " slots");
  layers_.resize(specs.size());
  // Host pools are not zeroed: the CPU attention reads only positions already stored, and a state slot is cleared
  // when a sequence takes it (clear_slot), so zeroing would only fault in memory no step may use. Device pools are
  // zeroed: GPU kernels load whole tiles and mask past the context, and 0 · NaN garbage would still be NaN.
  HYLORA_CHECK(kv_dtype == DType::F32 || kv_dtype == DType::BF16, "internal: a ", dtype_name(kv_dtype), " KV cache");
  auto make = [&](Shape shape, DType dtype = DType::F32) {
    Tensor t = Tensor::empty(std::move(shape), dtype, alloc);
    if (alloc.device() != Device::CPU) alloc.zero(t.raw(), t.nbytes());
    return t;
  };
  for (size_t i = 0; i < specs.size(); ++i) {
    const LayerCacheSpec& s = specs[i];
    LayerCache& c = layers_[i];
    switch (s.kind) {
      case LayerCacheSpec::Kind::kNone: break;
      case LayerCacheSpec::Kind::kAttention:
        c.k = make({num_pages, page_size, s.kv_heads, s.k_dim}, kv_dtype);
        c.v = make({num_pages, page_size, s.kv_heads, s.v_dim}, kv_dtype);
        paged_ = true;
        break;
      case LayerCacheSpec::Kind::kLatent:
        c.latent = make({num_pages, page_size, s.latent_width});
        paged_ = true;
        break;
      case LayerCacheSpec::Kind::kRecurrent: {
        Shape conv{num_slots}, rec{num_slots};
        conv.insert(conv.end(), s.conv_state.begin(), s.conv_state.end());
        rec.insert(rec.end(), s.recurrent_state.begin(), s.recurrent_state.end());
        c.conv = make(conv);
        c.recurrent = make(rec);
        recurrent_ = true;
        break;
      }
    }
  }
}

size_t CachePools::page_bytes(const std::vector<LayerCacheSpec>& specs, int64_t page_size, DType kv_dtype) {
  size_t bytes = 0;
  for (const LayerCacheSpec& s : specs) {
    if (s.kind == LayerCacheSpec::Kind::kAttention) bytes += s.kv_heads * (s.k_dim + s.v_dim) * dtype_size(kv_dtype);
    if (s.kind == LayerCacheSpec::Kind::kLatent) bytes += s.latent_width * sizeof(float);
  }
  return bytes * page_size;
}

size_t CachePools::slot_bytes(const std::vector<LayerCacheSpec>& specs) {
  size_t floats = 0;
  for (const LayerCacheSpec& s : specs)
    if (s.kind == LayerCacheSpec::Kind::kRecurrent) floats += shape_numel(s.conv_state) + shape_numel(s.recurrent_state);
  return floats * sizeof(float);
}

void CachePools::clear_slot(int32_t slot) {
  for (LayerCache& c : layers_)
    for (Tensor* t : {&c.conv, &c.recurrent})
      if (t->defined()) {
        Tensor row = t->rows(slot, slot + 1);
        alloc_->zero(row.raw(), row.nbytes());  // the pools may live on the GPU
      }
}

size_t CachePools::bytes() const {
  size_t b = 0;
  for (const LayerCache& c : layers_)
    for (const Tensor* t : {&c.k, &c.v, &c.latent, &c.conv, &c.recurrent})
      if (t->defined()) b += t->nbytes();
  return b;
}

}  // namespace hylora
