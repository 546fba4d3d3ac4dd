#pragma once
// Nemotron-H layer stack (models.md §2): one pre-norm block per layer whose mixer is Mamba2, attention, a relu² MLP
// or a non-gated MoE. Weights are held at HF's in-memory shapes; shapes in comments use the names of
// nemotron_h_config.h (H hidden, I = nh·hd Mamba inner, N state, G groups, K conv kernel, E experts, L = latent or H).
#include <vector>

#include "models/model.h"
#include "models/nemotron_h_config.h"

namespace hylora::nemotron_h {

struct MambaMixer {
  Linear in_proj;     // [I + conv_dim + nh, H]: output [z | xBC | dt]; one LoRA slice `in_proj`
  Tensor conv_w;      // [conv_dim, K]
  Tensor conv_b;      // [conv_dim] or undefined (use_conv_bias = false)
  Tensor A;           // [nh] = -exp(A_log)
  Tensor D;           // [nh]
  Tensor dt_bias;     // [nh]
  Tensor norm_w;      // [I] gated group RMSNorm weight
  Linear out_proj;    // [H, I]
};

struct AttentionMixer {
  Linear qkv;     // [(nH + 2·nKV)·D, H]: rows [q | k | v]; LoRA slices q_proj, k_proj, v_proj
  Linear o_proj;  // [H, nH·D]
};

struct MlpMixer {
  Linear up;    // [I_mlp, H]
  Linear down;  // [H, I_mlp]
};

struct MoeMixer {
  Linear gate;             // [E, H] router (fp32); LoRA slice `gate`
  Tensor score_bias;       // [E] e_score_correction_bias (selection only)
  Linear fc1_latent;       // [L, H] (latent only; weight undefined otherwise)
  Linear fc2_latent;       // [H, L] (latent only)
  ExpertLinear up;         // [E, I_e, L]
  ExpertLinear down;       // [E, L, I_e]
  MlpMixer shared;         // up [I_s, H], down [H, I_s]; sees the full-width h
};

struct Block {
  BlockType type;
  Tensor norm_w;  // [H]
  MambaMixer mamba;
  AttentionMixer attn;
  MlpMixer mlp;
  MoeMixer moe;
};

// Each writes the mixer output [T, H] for the normed input h [T, H] of the whole step into `out`; recurrent and
// attention mixers read and extend layer `layer`'s cache.
void mamba_forward(const ForwardArgs& a, const Config& c, const MambaMixer& m, int64_t layer, const Tensor& h,
                   Tensor& out);
void attention_forward(const ForwardArgs& a, const Config& c, const AttentionMixer& m, int64_t layer, const Tensor& h,
                       Tensor& out);
void mlp_forward(const ForwardArgs& a, const MlpMixer& m, const Tensor& h, Tensor& out);
void moe_forward(const ForwardArgs& a, const Config& c, const MoeMixer& m, const Tensor& h, Tensor& out);

}  // namespace hylora::nemotron_h
