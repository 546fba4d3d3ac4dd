// ops::sample_on_device on the GPU: the step's draws go up as one small parameter block, cuda::sample_tokens picks
// each row's token (and, when asked, scores it against the raw logits), and only ids and log-probs come back (8 bytes
// a draw instead of a 4·V-byte logits row). A step of few draws (decode at small batch) gives sample_tokens scratch
// to split each row over many blocks: one block a row would leave the GPU idle for ~0.1 ms a pass.
#include <cuda_runtime.h>

#include <cstring>

#include "ops/cuda/misc.h"
#include "ops/cuda/sampling.h"
#include "ops/device.h"

namespace hylora::ops::cuda_backend {

namespace {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA error in ", what, ": ", cudaGetErrorString(e));
}
}  // namespace

void sample_on_device(ExecCtx& ctx, const Tensor& logits, const std::vector<int32_t>& rows,
                      const std::vector<DeviceDraw>& params, bool with_logprobs, std::vector<int32_t>& ids,
                      std::vector<float>& logprobs) {
  HYLORA_CHECK(logits.ndim() == 2 && logits.dtype() == DType::F32, "internal: sample_on_device over ",
               shape_str(logits.shape()), " ", dtype_name(logits.dtype()), " logits (float32 [N, V] expected)");
  const int64_t R = static_cast<int64_t>(rows.size()), V = logits.dim(1);
  for (int32_t r : rows) HYLORA_CHECK(r >= 0 && r < logits.dim(0), "internal: sample_on_device of row ", r);
  auto st = static_cast<cudaStream_t>(ctx.stream);
  // One upload: [rows | params] in a host block, then [ids | logprobs] back in one download.
  const size_t prow = (R * sizeof(int32_t) + 15) / 16 * 16, ppar = R * sizeof(cuda::SamplingParams);
  std::vector<unsigned char> up(prow + ppar);
  std::memcpy(up.data(), rows.data(), R * sizeof(int32_t));
  auto* pp = reinterpret_cast<cuda::SamplingParams*>(up.data() + prow);
  for (int64_t i = 0; i < R; ++i) {
    pp[i].temperature = params[i].temperature;
    pp[i].top_k = params[i].top_k;
    pp[i].top_p = params[i].top_p;
    pp[i].min_p = params[i].min_p;
    pp[i].seed = params[i].seed;
    pp[i].step = params[i].step;
  }
  Tensor dev_up = ctx.scratch.tensor({static_cast<int64_t>((up.size() + 3) / 4)}, DType::I32);
  Tensor dev_out = ctx.scratch.tensor({2 * R}, DType::I32);  // [ids | logprobs (float bits)]
  auto* base = static_cast<unsigned char*>(dev_up.raw());
  check(cudaMemcpyAsync(base, up.data(), up.size(), cudaMemcpyHostToDevice, st), "sampling (upload)");
  const auto* d_rows = reinterpret_cast<const int32_t*>(base);
  const auto* d_params = reinterpret_cast<const cuda::SamplingParams*>(base + prow);
  auto* d_ids = static_cast<int32_t*>(dev_out.raw());
  auto* d_lp = reinterpret_cast<float*>(d_ids + R);
  // Greedy rows without log-probabilities are one cheap argmax pass: splitting them only adds launches (14 vs 18 µs
  // at batch 1, H200); every other draw splits (e.g. temperature 1 at batch 1: 196 → 17 µs).
  bool split_pays = with_logprobs;
  for (const DeviceDraw& d : params) split_pays = split_pays || d.temperature > 0.0f;
  const size_t ws_bytes = split_pays ? cuda::sample_tokens_workspace_bytes(R, V) : 0;
  void* ws = nullptr;
  if (ws_bytes > 0) ws = ctx.scratch.tensor({static_cast<int64_t>((ws_bytes + 3) / 4)}, DType::I32).raw();
  check(cuda::sample_tokens(cuda::DType::f32, logits.raw(), logits.ld(), V, d_rows, R, d_params, d_ids, st,
                            with_logprobs ? d_lp : nullptr, ws, ws_bytes),
        "sample_tokens");
  std::vector<int32_t> down(with_logprobs ? 2 * R : R);
  check(cudaMemcpyAsync(down.data(), d_ids, down.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, st),
        "sampling (download)");
  check(cudaStreamSynchronize(st), "sampling (cudaStreamSynchronize)");
  std::memcpy(ids.data(), down.data(), R * sizeof(int32_t));
  if (with_logprobs) std::memcpy(logprobs.data(), down.data() + R, R * sizeof(float));
}

}  // namespace hylora::ops::cuda_backend
