// The neutral ops::moe_permute (ops/moe.h) on the device, without a host round trip: every size comes from what the
// host already knows (n = T·k pairs, E experts, `slots` adapter slots), so a step stays asynchronous and capturable in
// a CUDA graph.
//   key(p) = expert(p)·(slots + 1) + slot(token of p) + 1      (base tokens: slot −1 → 0, so first inside an expert)
//   pair [n]             the pairs sorted by key, stably (token order inside a bucket: the CPU reference's order)
//   expert_offsets [E+1] expert e owns sorted rows [off[e], off[e+1])
//   LoRA segments over the adapter pairs only, compacted (base pairs skipped): first the non-empty (expert, slot)
//   segments in expert-major order — exactly the CPU reference's list: same rows, same order, same groups — then
//   empty ones (indptr repeated, group 0) up to G = E·slots. At most min(G, n) segments are non-empty, so LoRA
//   kernels may take G' = min(G, n) segments (indptr[G'] is the total): a host-known bound far below E·slots in
//   decode (batch 1, top-8: 8 instead of 256·slots).
//   lora_perm [n]        sorted row of the i-th adapter pair (entries past lora_indptr[G] are unused)
//   lora_indptr [G+1], lora_group [G] = slot·E + expert (the expert LoRA pool index, lora.md §4)
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace hylora::cuda {

size_t moe_permute_by_slot_workspace_bytes(int64_t n, int64_t E, int64_t slots);
cudaError_t moe_permute_by_slot(const int32_t* ids, int64_t n, int64_t k, const int32_t* row_slot, int64_t E,
                                int64_t slots, int32_t* pair, int32_t* expert_offsets, int32_t* lora_perm,
                                int32_t* lora_indptr, int32_t* lora_group, void* workspace, size_t workspace_bytes,
                                cudaStream_t stream);

}  // namespace hylora::cuda
