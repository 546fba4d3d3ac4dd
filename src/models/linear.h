#pragma once
// The projections every model declares: Linear (possibly row-fused) and ExpertLinear (all experts of one MoE
// projection), each with its LoRA slices (docs/lora.md §2). The LoRA code reads these declarations and nothing else
// about a model, so it has no per-model branches.
#include <string>
#include <vector>

#include <cstdint>

#include "core/tensor.h"

namespace hylora {

// What a projection does across the ranks of a tensor-parallel group (docs/multi_gpu.md §2-3). Set only on a rank's
// shard model (dist::bind_shard, dist/shard_model.h); kLocal everywhere else, so the single-rank path never reaches
// the collectives.
enum class TpRole : uint8_t {
  kLocal,          // replicated, or column-parallel whose local output the next op reads as is
  kRowReduce,      // row-parallel: partial output + partial LoRA shrink summed by one all-reduce, bias added once
  kGatherColumns,  // column-parallel by vocabulary (lm_head): local logits all-gathered into [rows, V]
};

// A contiguous range of a fused projection's output that one PEFT module owns.
struct LoraSlice {
  std::string module;   // PEFT module path relative to the model root, e.g. "model.layers.3.self_attn.q_proj"
  int64_t out_offset;   // first output row of the slice in the fused weight
  int64_t out_size;     // rows
};

struct Linear {
  std::string name;     // engine-side name, e.g. "model.layers.3.self_attn.qkv" (for messages)
  Tensor weight;        // [out, in]
  Tensor bias;          // [out] or undefined
  std::vector<LoraSlice> slices;  // in output order; empty = the projection takes no LoRA
  int lora_id = -1;     // index assigned by the model's LoRA target table
  // Stored and multiplied in float32 whatever the compute dtype (models/weight_precision.h): MoE routers and gates,
  // which HF runs in float32 and whose top-k choice a bf16 rounding could flip, and weights an op other than the
  // GEMM reads (MLA's kv_b_proj, absorbed into the attention).
  bool full_precision = false;
  TpRole tp = TpRole::kLocal;  // only a rank's shard model sets it (dist::bind_shard, dist/shard_model.h)
  // kGatherColumns when the ranks' shards differ in width (a vocabulary that does not divide by the ranks): every
  // rank's local width, in rank order. Each rank pads its columns to the widest for the gather (a collective of
  // equal shapes) and the padding is dropped after it, so padded columns never reach the logits. Empty: all equal.
  std::vector<int64_t> gather_widths{};
  // Host copy of `weight` when `weight` lives on a GPU: adapter loading computes modules_to_save deltas W' − W on the
  // host. Undefined on the CPU (`weight` is the host tensor); read it through host_weight().
  Tensor host_master;
  const Tensor& host_weight() const { return host_master.defined() ? host_master : weight; }

  int64_t in_features() const { return weight.dim(1); }
  int64_t out_features() const { return weight.dim(0); }
};

// One projection of all experts: weight [E, out, in] (HF in-memory layout). LoRA slices are per expert (a slice
// covers output rows [out_offset, out_offset + out_size) of every expert's matrix).
struct ExpertLinear {
  std::string name;
  Tensor weight;  // [E, out, in]
  std::vector<LoraSlice> slices;
  int lora_id = -1;
  // Tensor parallel with ep > 1 (dist::bind_shard, dist/shard_model.h): the weight holds only experts
  // [expert_begin, expert_begin + E_local); routing to the others is masked out on this rank. False on one rank.
  bool ep_split = false;
  int64_t expert_begin = 0;
  int64_t num_experts() const { return weight.dim(0); }
  int64_t out_features() const { return weight.dim(1); }
  int64_t in_features() const { return weight.dim(2); }
};

// The token embedding table and its LoRA identity (PEFT module "model.embed_tokens").
struct Embedding {
  std::string module;  // PEFT module path, e.g. "model.embed_tokens"
  Tensor table;        // [V, H]; a rank's shard model: its vocabulary rows [vocab_begin, vocab_begin + V_local)
  int lora_id = -1;
  // Tensor parallel (dist::bind_shard, dist/shard_model.h): the table holds only rows [vocab_begin, …); ids outside
  // give 0, then the lookup is all-reduced. False on one rank.
  bool vocab_split = false;
  int64_t vocab_begin = 0;
  Tensor host_master;  // host copy of `table` when it lives on a GPU (see Linear::host_master)
  const Tensor& host_table() const { return host_master.defined() ? host_master : table; }
};

}  // namespace hylora
