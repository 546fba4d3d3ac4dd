#pragma once
// The engine's cache pools: a paged KV pool shared by every attention layer (one page id addresses the same page in
// every layer's K/V or latent tensor) and a recurrent state-slot pool shared by every GDN/Mamba2 layer. Pages are
// handed to sequences as their tokens arrive and come back when a sequence is released; a state slot is held for a
// sequence's whole life and zeroed when it is handed out.
#include <cstdint>
#include <vector>

#include "kv/cache_spec.h"
#include "kv/pool_exhausted.h"

namespace hylora {

// A free list of fixed-size resources (pages or slots), handed out lowest id first so runs are reproducible.
class IdPool {
 public:
  explicit IdPool(int64_t n);
  int64_t total() const { return total_; }
  int64_t available() const { return static_cast<int64_t>(free_.size()); }
  // `n` ids; throws PoolExhausted(kind) with `what` in the message when fewer are free (nothing is taken).
  std::vector<int32_t> take(int64_t n, PoolExhausted::Kind kind, const char* what);
  void give_back(const std::vector<int32_t>& ids);

 private:
  int64_t total_;
  std::vector<int32_t> free_;  // kept sorted descending: back() is the lowest free id
};

class CachePools {
 public:
  // kv_dtype: the element type of the attention layers' K/V pages (float32, or bfloat16 for --dtype bfloat16 on the
  // GPU); latent (MLA) pages and recurrent states are always float32.
  CachePools(const std::vector<LayerCacheSpec>& specs, int64_t num_pages, int64_t page_size, int64_t num_slots,
             Allocator& alloc = host_allocator(), DType kv_dtype = DType::F32);

  std::vector<LayerCache>& layers() { return layers_; }
  IdPool& pages() { return pages_; }
  IdPool& slots() { return slots_; }
  int64_t page_size() const { return page_size_; }
  bool has_paged_layers() const { return paged_; }
  bool has_recurrent_layers() const { return recurrent_; }
  // Zeroes slot `slot` of every recurrent layer (a new sequence starts from zero states).
  void clear_slot(int32_t slot);
  // Bytes held by all cache tensors.
  size_t bytes() const;
  // What a pool of these specs costs before it is built: one page over every paged layer (K/V in kv_dtype, latents in
  // float32), and the recurrent states of one slot over every recurrent layer (float32). For sizing the pages from
  // free device memory.
  static size_t page_bytes(const std::vector<LayerCacheSpec>& specs, int64_t page_size,
                           DType kv_dtype = DType::F32);
  static size_t slot_bytes(const std::vector<LayerCacheSpec>& specs);

 private:
  Allocator* alloc_;  // where the cache tensors live (zeroing a slot goes through it)
  std::vector<LayerCache> layers_;
  IdPool pages_, slots_;
  int64_t page_size_;
  bool paged_ = false, recurrent_ = false;
};

}  // namespace hylora
