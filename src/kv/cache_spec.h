#pragma once
// What each layer of a model keeps between steps, as the model declares it, and the per-layer cache tensors the
// pools hand the model. Attention layers page their K/V (or MLA's latent) by token; recurrent layers (Gated
// DeltaNet, Mamba2) keep fixed-size states in slots, one slot per live sequence.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace hylora {

struct LayerCacheSpec {
  enum class Kind { kNone, kAttention, kLatent, kRecurrent };
  Kind kind = Kind::kNone;
  int64_t kv_heads = 0, k_dim = 0, v_dim = 0;  // kAttention: K [nKV, k_dim], V [nKV, v_dim] per token
  int64_t latent_width = 0;                    // kLatent: [kv_lora_rank + rope dim] per token
  Shape conv_state;                            // kRecurrent: per slot, e.g. [C, K-1]
  Shape recurrent_state;                       // kRecurrent: per slot, e.g. [Hv, Dk, Dv] or [nh, hd, N]

  static LayerCacheSpec attention(int64_t kv_heads, int64_t k_dim, int64_t v_dim) {
    LayerCacheSpec s;
    s.kind = Kind::kAttention;
    s.kv_heads = kv_heads;
    s.k_dim = k_dim;
    s.v_dim = v_dim;
    return s;
  }
  static LayerCacheSpec latent(int64_t width) {
    LayerCacheSpec s;
    s.kind = Kind::kLatent;
    s.latent_width = width;
    return s;
  }
  static LayerCacheSpec recurrent(Shape conv, Shape state) {
    LayerCacheSpec s;
    s.kind = Kind::kRecurrent;
    s.conv_state = std::move(conv);
    s.recurrent_state = std::move(state);
    return s;
  }
};

// One layer's cache tensors (float32 on the compute device; undefined where the layer kind has none).
struct LayerCache {
  Tensor k;          // [pages, page_size, nKV, k_dim]
  Tensor v;          // [pages, page_size, nKV, v_dim]
  Tensor latent;     // [pages, page_size, latent_width]
  Tensor conv;       // [slots, conv_state...]
  Tensor recurrent;  // [slots, recurrent_state...]
};

}  // namespace hylora
