#pragma once
// Per-sequence caches, one LayerCache per layer. Each layer type uses the fields it needs:
//   attention / MLA: k, v rows appended per token ([len, kv_width] each, float32);
//   GDN: conv_state [conv_dim, K-1] (last K-1 pre-conv inputs) + recurrent [Hv, Dk, Dv];
//   Mamba2: conv_state [conv_dim, K-1] + recurrent (SSM state) [nh, hd, N].
// The CPU reference keeps contiguous growing buffers; the CUDA engine will page the KV rows.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace hylora {

struct LayerCache {
  std::vector<float> k, v;
  Tensor conv_state;
  Tensor recurrent;
};

struct SequenceCache {
  std::vector<LayerCache> layers;
  int64_t length = 0;  // tokens processed so far (advanced by the engine after each step)
};

}  // namespace hylora
