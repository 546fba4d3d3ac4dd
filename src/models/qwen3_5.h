#pragma once
// Qwen3.5 layer stack (models.md §1.3-1.8): pre-norm decoder layers whose token mixer is Gated DeltaNet or gated
// full attention, followed by a dense gated MLP or an MoE block. Plain Qwen3 / Qwen3-MoE is the same stack with
// every layer ungated full attention (Config::output_gate, Config::norm, Config::dense_mlp). Weights are held at HF's in-memory shapes; shapes in
// comments use the names of qwen3_5_config.h (H hidden, nH/nKV/D attention heads, Hk/Hv/Dk/Dv GDN heads,
// C = conv_dim = 2·Hk·Dk + Hv·Dv, K conv kernel, I MLP width, E experts, Ie expert width, Is shared-expert width).
#include <vector>

#include "models/model.h"
#include "models/qwen3_5_config.h"

namespace hylora::qwen3_5 {

struct GdnMixer {
  Linear in_proj;   // [C + Hv·Dv + 2·Hv, H]: rows [qkv | z | b | a]; slices in_proj_qkv, in_proj_z, in_proj_b, in_proj_a
  Tensor conv_w;    // [C, K] depthwise, no bias (stored [C, 1, K])
  Tensor neg_A;     // [Hv] = -exp(A_log)
  Tensor dt_bias;   // [Hv]
  Tensor norm_w;    // [Hv·Dv] RMSNormGated plain weight [Dv], tiled once per value head
  Linear out_proj;  // [H, Hv·Dv]
};

struct AttentionMixer {
  Linear qkv;      // [2·nH·D + 2·nKV·D, H]: rows [q_proj (per head [query D | gate D]) | k | v];
                   // slices q_proj (2·nH·D), k_proj, v_proj. Qwen3 (no output gate): q_proj is nH·D rows.
  Tensor q_norm;   // [D] RMSNorm1p (Qwen3: plain)
  Tensor k_norm;   // [D] RMSNorm1p (Qwen3: plain)
  Linear o_proj;   // [H, nH·D]
};

struct Mlp {
  Linear gate_up;  // [2·I, H]: rows [gate | up]; slices gate_proj, up_proj
  Linear down;     // [H, I]
};

struct MoeBlock {
  Linear router;        // [E, H] mlp.gate.weight (a raw parameter in HF); slice `mlp.gate`
  ExpertLinear gate_up; // [E, 2·Ie, H]: rows [gate | up]
  ExpertLinear down;    // [E, H, Ie]
  Mlp shared;           // gate_up [2·Is, H], down [H, Is]; absent (undefined) without a shared expert (Qwen3-MoE)
  Linear shared_gate;   // [1, H] shared_expert_gate: sigmoid scalar per token
};

struct Layer {
  LayerType type;
  Tensor input_norm;  // [H] RMSNorm1p (Qwen3: plain)
  Tensor post_norm;   // [H] RMSNorm1p (Qwen3: plain)
  GdnMixer gdn;
  AttentionMixer attn;
  Mlp mlp;            // dense models, and the dense layers of Qwen3-MoE
  MoeBlock moe;       // MoE layers
};

// Rotary tables shared by every attention layer.
struct Rope {
  int64_t rot = 0;
  std::vector<float> inv_freq;  // [rot/2]
};

// Each writes the block output [T, H] for the normed input h [T, H] of the whole step into `out`; the mixers read
// and extend layer `layer`'s cache (paged K/V, or the GDN conv + recurrent state slots).
void gdn_forward(const ForwardArgs& a, const Config& c, const GdnMixer& m, int64_t layer, const Tensor& h, Tensor& out);
void attention_forward(const ForwardArgs& a, const Config& c, const Rope& rope, const AttentionMixer& m, int64_t layer,
                       const Tensor& h, Tensor& out);
void mlp_forward(const ForwardArgs& a, const Mlp& m, const Tensor& h, Tensor& out);
void moe_forward(const ForwardArgs& a, const Config& c, const MoeBlock& m, const Tensor& h, Tensor& out);

}  // namespace hylora::qwen3_5
