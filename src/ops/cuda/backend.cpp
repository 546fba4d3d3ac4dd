// ops::cuda_backend: the neutral ops (src/ops/*.h) on the GPU. Each function maps its Tensor views (shape, leading
// dimension, dtype) onto a hylora::cuda kernel (the tuned ones of this folder, or the small ones of extra.h) on
// ctx.stream. Tensors must live on the device. Activations, norms, states and LoRA buffers are float32; the big
// weight matrices (the operand `w` of matmul_nt and moe_expert_gemm, the embedding table) are float32 or bfloat16 as
// the executor placed them (--dtype), and the ops below read either with fp32 accumulation and fp32 results.
#include <cuda_runtime.h>

#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "ops/backends.h"
#include "ops/cuda/attention.h"
#include "ops/cuda/bf16_kv.h"
#include "ops/cuda/expert_gemm.h"
#include "ops/cuda/extra.h"
#include "ops/cuda/gemm.h"
#include "ops/cuda/gemv.h"
#include "ops/cuda/lora.h"
#include "ops/cuda/misc.h"
#include "ops/cuda/moe_permute.h"
#include "ops/cuda/norms.h"
#include "ops/cuda/recurrent.h"
#include "ops/cuda/tensor_parallel.h"
#include "ops/device.h"

namespace hylora::ops::cuda_backend {

namespace {
using cuda::DType::f32;

cudaStream_t stream(const ExecCtx& ctx) { return static_cast<cudaStream_t>(ctx.stream); }

void ok(cudaError_t e, const char* op) {
  if (e != cudaSuccess) fail("CUDA error in ", op, ": ", cudaGetErrorString(e));
}

// Every operand must be a float32 (or int32 metadata) tensor on the GPU: a host tensor here is an engine bug.
const float* cf(const Tensor& t, const char* op) {
  HYLORA_CHECK(t.device() == Device::CUDA && t.dtype() == DType::F32, "internal: ", op, " got a ",
               dtype_name(t.dtype()), " tensor on the ", t.device() == Device::CPU ? "host" : "GPU",
               ", expected float32 on the GPU");
  return static_cast<const float*>(t.raw());
}
float* mf(const Tensor& t, const char* op) { return const_cast<float*>(cf(t, op)); }
// A weight matrix on the GPU in float32 or bfloat16, and its kernel dtype.
const void* cw(const Tensor& t, cuda::DType& dt, const char* op) {
  HYLORA_CHECK(t.device() == Device::CUDA && (t.dtype() == DType::F32 || t.dtype() == DType::BF16), "internal: ", op,
               " got a ", dtype_name(t.dtype()), " weight on the ", t.device() == Device::CPU ? "host" : "GPU",
               ", expected float32 or bfloat16 on the GPU");
  dt = t.dtype() == DType::F32 ? cuda::DType::f32 : cuda::DType::bf16;
  return t.raw();
}
const int32_t* ci(const Tensor& t, const char* op) {
  HYLORA_CHECK(t.device() == Device::CUDA && t.dtype() == DType::I32, "internal: ", op,
               " expected int32 metadata on the GPU, got ", dtype_name(t.dtype()));
  return static_cast<const int32_t*>(t.raw());
}
int32_t* mi(const Tensor& t, const char* op) { return const_cast<int32_t*>(ci(t, op)); }

// One cuBLASLt handle (and workspace) per stream: GEMMs queued on different streams at once — the rank threads of
// an in-process tensor-parallel group, each with its executor's stream — must not share a split-K workspace. Streams
// live for the process (ops/device.h), so the handles do too; a stream's handle is made on its first GEMM (eagerly,
// before any graph capture of that stream), on the device current then.
cuda::GemmHandle& gemm_handle(const ExecCtx& ctx) {
  static std::mutex mu;
  static auto* handles = new std::map<void*, cuda::GemmHandle*>();  // leaked, like the handles: tensors outlive statics
  std::lock_guard<std::mutex> lock(mu);
  cuda::GemmHandle*& h = (*handles)[ctx.stream];
  if (!h) h = new cuda::GemmHandle();
  return *h;
}

// A small host array copied into the step's scratch on the device (MLA weight tables; synchronises the stream).
Tensor upload(ExecCtx& ctx, const void* data, size_t bytes) {
  Tensor t = ctx.scratch.tensor({static_cast<int64_t>((bytes + 3) / 4)}, DType::I32);
  memcpy(ctx, t.raw(), data, bytes);
  return t;
}

// A model constant (RoPE inverse frequencies) on the device, uploaded once per distinct value and kept for the
// process: an upload per call would synchronise the stream inside every attention layer, leaving the GPU idle while
// the host queues the next kernels (and would not be capturable in a CUDA graph).
const float* constant_on_device(ExecCtx& ctx, const std::vector<float>& v) {
  static std::mutex mu;
  static auto* cache = new std::map<std::vector<float>, Tensor>();  // leaked: tensors outlive static destruction
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(v);
  if (it == cache->end()) {
    Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::F32, allocator());
    memcpy(ctx, t.raw(), v.data(), v.size() * sizeof(float));
    it = cache->emplace(v, t).first;
  }
  return static_cast<const float*>(it->second.raw());
}

cuda::LoraSegments segs(const LoraSegments& seg) {
  cuda::LoraSegments s;
  s.perm = ci(seg.perm, "lora");
  s.T_lora = seg.num_rows;
  s.seg_indptr = ci(seg.indptr, "lora");
  s.seg_slot = ci(seg.group, "lora");
  s.G = seg.num_segments;
  s.rank = nullptr;  // max_r for every group: the zero tail past each rank adds nothing
  return s;
}
cuda::LoraSlices slices_of(const std::vector<const LoraSliceBuffers*>& sl) {
  HYLORA_CHECK(!sl.empty() && static_cast<int>(sl.size()) <= cuda::kLoraMaxSlices, "internal: LoRA of ", sl.size(),
               " slices on the GPU (at most ", cuda::kLoraMaxSlices, ")");
  cuda::LoraSlices s;
  s.n = static_cast<int>(sl.size());
  for (int k = 0; k < s.n; ++k) {
    s.A[k] = cf(sl[k]->A, "lora A");
    s.B[k] = cf(sl[k]->B, "lora B");
    s.out_off[k] = sl[k]->out_offset;
    s.out_size[k] = sl[k]->out_size;
  }
  return s;
}
void pw(ExecCtx& ctx, cuda::extra::Pointwise kind, const Tensor* x, Tensor& y, const char* op) {
  const float* xp = x ? cf(*x, op) : nullptr;
  if (x)
    HYLORA_CHECK(x->dim(0) == y.dim(0) && x->row_size() == y.row_size(), "internal: ", op, " of ",
                 shape_str(x->shape()), " and ", shape_str(y.shape()));
  ok(cuda::extra::pointwise(kind, xp, x ? x->ld() : 0, mf(y, op), y.ld(), y.dim(0), y.row_size(), stream(ctx)), op);
}
}  // namespace

// --- attention -----------------------------------------------------------------------------------------------
namespace {
// How many key ranges (split-KV) one attention call is cut into, given the blocks the call has without splits:
// splits are added until ~target_blocks exist, each range keeping ≥ 128 keys, the workspace ≤ 32 MiB. Everything here
// is host-known and fixed for a CUDA-graph bucket (T, S, heads, page-table width), so a captured step keeps its grid.
int64_t key_splits(const cuda::PagedAttention& p, int64_t max_context, int64_t blocks, int64_t target_blocks) {
  constexpr int64_t kMinKeys = 128, kMaxWorkspaceFloats = int64_t{8} << 20;
  int64_t n = std::min((target_blocks + blocks - 1) / blocks, (max_context + kMinKeys - 1) / kMinKeys);
  n = std::min(n, kMaxWorkspaceFloats / std::max<int64_t>(1, p.T * p.nH * (p.Dv + 1)));
  return std::max<int64_t>(n, 1);
}

// Mixed steps (attention_prefill's kernels): a block owns a few query rows of one KV head and walks the whole context,
// so a step of few rows is a few blocks on a 132-SM GPU (0.8 ms per layer at batch 1, 1k context, unsplit). Splits
// until ~2 waves of blocks exist; none when the rows alone fill a wave.
int64_t attention_key_splits(const cuda::PagedAttention& p, int64_t max_context) {
  constexpr int64_t kTargetBlocks = 264;
  const int64_t group = p.nH / p.nKV, hg = std::min<int64_t>(group, 16), tq = 16 / hg;
  const int64_t blocks = ((p.T + tq - 1) / tq + p.S) * p.nKV * ((group + hg - 1) / hg);
  if (blocks >= kTargetBlocks / 2 || max_context <= 128) return 1;
  return key_splits(p, max_context, blocks, kTargetBlocks);
}

// Decode-only steps (T ≤ S, host-known: one row per sequence; the scheduler's mixed steps, decodes + a prefill chunk,
// have T > S and keep the choice in paged_attention below) go to attention_decode's split-KV kernels: one block per
// (sequence, KV head, ≤ 8/16 query heads of its group, key split) reads each K/V byte once. bf16 caches: the
// tensor-core kernel's own choice (attention_decode_splits: the count that fills the GPU's waves best, ≤ 32);
// fp32: splits until ~800 blocks exist (3 blocks per SM of a 132-SM H100/H200, two waves). nsplit = 1 needs no
// workspace.
bool decode_step(const cuda::PagedAttention& p) { return p.T <= p.S; }
int64_t decode_key_splits(cuda::DType dt, const cuda::PagedAttention& p, int64_t max_context) {
  constexpr int64_t kMaxWorkspaceFloats = int64_t{8} << 20;
  const int64_t n = cuda::attention_decode_splits(dt, p, max_context);
  if (n > 0)
    return std::max<int64_t>(1, std::min(n, kMaxWorkspaceFloats / std::max<int64_t>(1, p.T * p.nH * (p.Dv + 1))));
  const int64_t group = p.nH / p.nKV, hg = std::min<int64_t>(group, p.Dv > 128 ? 8 : 16);
  return key_splits(p, max_context, std::max<int64_t>(1, p.S * p.nKV * ((group + hg - 1) / hg)), 800);
}

// attention_decode over `nsplit` key ranges: ranges of ≥ 32-key multiples, or for the bf16 tensor-core kernel (which
// re-cuts each sequence's context into nsplit ranges itself) any chunk that keeps nsplit; the workspace only when more
// than one range exists.
void split_kv_attention(ExecCtx& ctx, cuda::DType dt, const cuda::PagedAttention& p, int64_t max_context,
                        int64_t nsplit) {
  const int64_t unit = cuda::attention_decode_splits(dt, p, max_context) > 0 ? 1 : 32;
  const int64_t chunk = std::max<int64_t>(unit, ((max_context + nsplit - 1) / nsplit + unit - 1) / unit * unit);
  const size_t floats =
      (max_context + chunk - 1) / chunk > 1 ? cuda::attention_decode_workspace_floats(p, max_context, chunk) : 0;
  Tensor ws;
  if (floats) ws = ctx.scratch.tensor({static_cast<int64_t>(floats)}, DType::F32);
  ok(cuda::attention_decode(dt, p, max_context, floats ? static_cast<float*>(ws.raw()) : nullptr, stream(ctx), chunk),
     "paged_attention");
}
}  // namespace

void paged_store(ExecCtx& ctx, const Tensor& x, const SeqLayout& layout, Tensor& cache) {
  const int64_t W = x.dim(1), slot_width = cache.numel() / (cache.dim(0) * cache.dim(1));
  HYLORA_CHECK(W == slot_width, "internal: paged_store of width ", W, " into cache slots of ", slot_width);
  if (cache.dtype() == DType::BF16) {  // the bf16 KV cache of --dtype bfloat16 (ops/cuda/bf16_kv.h)
    HYLORA_CHECK(cache.device() == Device::CUDA, "internal: paged_store into a host bf16 cache");
    ok(cuda::paged_store_bf16(cf(x, "paged_store"), x.ld(), ci(layout.kv_slots, "paged_store"), x.dim(0), W,
                              cache.raw(), stream(ctx)),
       "paged_store");
    return;
  }
  ok(cuda::extra::paged_store(cf(x, "paged_store"), x.ld(), ci(layout.kv_slots, "paged_store"), x.dim(0), W,
                              mf(cache, "paged_store"), stream(ctx)),
     "paged_store");
}

void paged_attention(ExecCtx& ctx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const SeqLayout& layout, int64_t num_heads, float scale, Tensor& o) {
  cuda::PagedAttention p;
  // A bf16 KV cache (--dtype bfloat16): q is rounded to bf16 and the output comes back through bf16, as in HF's bf16
  // attention; the kernels then run their bf16 paths (WMMA prefill, half the bytes per key at decode).
  const bool bf16 = k_cache.dtype() == DType::BF16;
  HYLORA_CHECK(v_cache.dtype() == k_cache.dtype() && k_cache.device() == Device::CUDA,
               "internal: attention over K and V caches of different types");
  const cuda::DType kdt = bf16 ? cuda::DType::bf16 : f32;
  const int64_t T = layout.num_tokens, qw = num_heads * k_cache.dim(3), ow = num_heads * v_cache.dim(3);
  Tensor qb, ob;
  if (bf16) {
    qb = ctx.scratch.tensor({std::max<int64_t>(T, 1), qw}, DType::BF16);
    ob = ctx.scratch.tensor({std::max<int64_t>(T, 1), ow}, DType::BF16);
    ok(cuda::extra::to_bf16(cf(q, "attention"), q.ld(), qb.raw(), qw, T, qw, stream(ctx)), "attention (q to bf16)");
  }
  p.q = bf16 ? qb.raw() : cf(q, "attention");
  p.ldq = bf16 ? qw : q.ld();
  p.k_pool = k_cache.raw();
  p.v_pool = v_cache.raw();
  p.o = bf16 ? ob.raw() : mf(o, "attention");
  p.ldo = bf16 ? ow : o.ld();
  HYLORA_CHECK(bf16 || k_cache.dtype() == DType::F32, "internal: a ", dtype_name(k_cache.dtype()), " KV cache");
  p.cu_seqlens = ci(layout.cu_seqlens, "attention");
  p.context_lens = ci(layout.context_lens, "attention");
  p.page_table = ci(layout.page_table, "attention");
  p.S = layout.num_seqs;
  p.T = layout.num_tokens;
  p.nH = num_heads;
  p.nKV = k_cache.dim(2);
  p.D = k_cache.dim(3);
  p.Dv = v_cache.dim(3);
  p.page_size = layout.page_size;
  p.max_pages = layout.max_pages;
  p.scale = scale;
  const int64_t max_context = layout.max_pages * layout.page_size;
  const int64_t nsplit = decode_step(p) ? decode_key_splits(kdt, p, max_context) : attention_key_splits(p, max_context);
  // Decode rows in bf16 take the split-KV kernels even unsplit: attention_prefill would pick a tensor-core kernel
  // whose 64-row tiles would be one row full here and which reads K/V once per query head.
  if (decode_step(p) || nsplit > 1 || (bf16 && T <= 4 * p.S))
    split_kv_attention(ctx, kdt, p, max_context, nsplit);
  else
    ok(cuda::attention_prefill(kdt, p, stream(ctx)), "paged_attention");
  if (bf16) ok(cuda::bf16_to_f32(ob.raw(), ow, mf(o, "attention"), o.ld(), T, ow, stream(ctx)), "attention (o)");
}

// --- recurrences ---------------------------------------------------------------------------------------------
void causal_conv1d(ExecCtx& ctx, const Tensor& x, const Tensor& w, const Tensor& bias, const SeqLayout& layout,
                   Tensor& state_pool, bool silu, Tensor& y) {
  ok(cuda::causal_conv1d(f32, cf(x, "conv1d"), x.ld(), cf(w, "conv1d"), bias.defined() ? cf(bias, "conv1d") : nullptr,
                         mf(y, "conv1d"), y.ld(), mf(state_pool, "conv1d"), ci(layout.state_slots, "conv1d"),
                         ci(layout.cu_seqlens, "conv1d"), layout.num_seqs, layout.num_tokens, x.dim(1), w.dim(1), silu,
                         stream(ctx)),
     "causal_conv1d");
}

void gated_delta_rule(ExecCtx& ctx, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                      const Tensor& beta, const SeqLayout& layout, Tensor& state_pool, Tensor& o) {
  const int64_t Hv = state_pool.dim(1), Dk = state_pool.dim(2), Dv = state_pool.dim(3), Hk = q.dim(1) / Dk;
  // prefill's chunked form needs a workspace (W, U/D, k̂, decays, per-chunk states: gdn_chunked.h), ~74 KB a token at
  // Qwen3.5-4B shapes, inside the scratch reserve's 32·hidden floats a token (memory_plan.cpp); dead after the call
  const size_t ws_floats = cuda::gated_delta_rule_workspace_floats(layout.num_seqs, layout.num_tokens, Hk, Hv, Dk, Dv);
  Tensor ws;
  if (ws_floats) ws = ctx.scratch.tensor({static_cast<int64_t>(ws_floats)}, DType::F32);
  ok(cuda::gated_delta_rule(f32, cf(q, "gdn"), q.ld(), cf(k, "gdn"), k.ld(), cf(v, "gdn"), v.ld(), cf(g, "gdn"),
                            g.ld(), cf(beta, "gdn"), beta.ld(), mf(o, "gdn"), o.ld(), mf(state_pool, "gdn"),
                            ci(layout.state_slots, "gdn"), ci(layout.cu_seqlens, "gdn"), layout.num_seqs,
                            layout.num_tokens, Hk, Hv, Dk, Dv,
                            ws_floats ? static_cast<float*>(ws.raw()) : nullptr, stream(ctx)),
     "gated_delta_rule");
}

void ssm_scan(ExecCtx& ctx, const Tensor& x, const Tensor& dt, const Tensor& B, const Tensor& C, const Tensor& A,
              const Tensor& D, const Tensor& dt_bias, float dt_min, const SeqLayout& layout, Tensor& state_pool,
              Tensor& y) {
  const int64_t nh = state_pool.dim(1), hd = state_pool.dim(2), N = state_pool.dim(3), G = B.dim(1) / N;
  ok(cuda::ssm_scan(f32, cf(x, "ssm"), x.ld(), cf(dt, "ssm"), dt.ld(), cf(B, "ssm"), B.ld(), cf(C, "ssm"), C.ld(),
                    cf(A, "ssm"), cf(D, "ssm"), cf(dt_bias, "ssm"), dt_min, mf(y, "ssm"), y.ld(), mf(state_pool, "ssm"),
                    ci(layout.state_slots, "ssm"), ci(layout.cu_seqlens, "ssm"), layout.num_seqs, layout.num_tokens,
                    nh, hd, G, N, stream(ctx)),
     "ssm_scan");
}

// --- norms and pointwise -------------------------------------------------------------------------------------
void rms_norm(ExecCtx& ctx, const Tensor& x, const Tensor& w, int64_t group, float eps, NormKind kind, Tensor& y) {
  const int64_t W = x.dim(1);
  HYLORA_CHECK(group > 0 && W % group == 0 && y.dim(0) == x.dim(0) && y.dim(1) == W, "internal: rms_norm shapes");
  ok(cuda::rms_norm(f32, cf(x, "rms_norm"), x.ld(), cf(w, "rms_norm"), mf(y, "rms_norm"), y.ld(), x.dim(0), W / group,
                    group, eps, kind == NormKind::kOnePlus, stream(ctx)),
     "rms_norm");
}

void rms_norm_gated(ExecCtx& ctx, const Tensor& y, const Tensor& z, const Tensor& w, int64_t group, float eps,
                    GateOrder order, Tensor& out) {
  ok(cuda::rms_norm_gated(f32, cf(y, "rms_norm_gated"), y.ld(), cf(z, "rms_norm_gated"), z.ld(),
                          cf(w, "rms_norm_gated"), mf(out, "rms_norm_gated"), out.ld(), y.dim(0), y.dim(1), group, eps,
                          order == GateOrder::kGateBeforeNorm, stream(ctx)),
     "rms_norm_gated");
}

void add(ExecCtx& ctx, const Tensor& x, Tensor& y) { pw(ctx, cuda::extra::Pointwise::kAdd, &x, y, "add"); }
void sigmoid_inplace(ExecCtx& ctx, Tensor& y) { pw(ctx, cuda::extra::Pointwise::kSigmoid, nullptr, y, "sigmoid"); }
void mul_sigmoid(ExecCtx& ctx, const Tensor& gate, Tensor& o) {
  pw(ctx, cuda::extra::Pointwise::kMulSigmoid, &gate, o, "mul_sigmoid");
}
void relu2_inplace(ExecCtx& ctx, Tensor& y) { pw(ctx, cuda::extra::Pointwise::kRelu2, nullptr, y, "relu2"); }
void copy(ExecCtx& ctx, const Tensor& src, Tensor& dst) { pw(ctx, cuda::extra::Pointwise::kCopy, &src, dst, "copy"); }

void add_row_scaled(ExecCtx& ctx, const Tensor& x, const Tensor& s, Tensor& y) {
  ok(cuda::extra::add_row_scaled(cf(x, "add_row_scaled"), x.ld(), cf(s, "add_row_scaled"), mf(y, "add_row_scaled"),
                                 y.ld(), y.dim(0), y.row_size(), stream(ctx)),
     "add_row_scaled");
}

void silu_mul_halves(ExecCtx& ctx, const Tensor& x, Tensor& y) {
  HYLORA_CHECK(x.dim(1) == 2 * y.dim(1) && x.dim(0) == y.dim(0), "internal: silu_mul_halves shapes");
  ok(cuda::extra::silu_mul_halves(cf(x, "silu_mul"), x.ld(), mf(y, "silu_mul"), y.ld(), y.dim(0), y.dim(1),
                                  stream(ctx)),
     "silu_mul_halves");
}

void split_head_halves(ExecCtx& ctx, const Tensor& x, int64_t head_dim, Tensor& a, Tensor& b) {
  ok(cuda::extra::split_head_halves(cf(x, "split"), x.ld(), mf(a, "split"), a.ld(), mf(b, "split"), b.ld(), x.dim(0),
                                    a.dim(1) / head_dim, head_dim, stream(ctx)),
     "split_head_halves");
}

void gather_rows(ExecCtx& ctx, const Tensor& x, const Tensor& rows, Tensor& y) {
  ok(cuda::extra::gather_rows(cf(x, "gather_rows"), x.ld(), ci(rows, "gather_rows"), 1, mf(y, "gather_rows"), y.ld(),
                              rows.numel(), x.dim(1), stream(ctx)),
     "gather_rows");
}

void embedding(ExecCtx& ctx, const Tensor& table, const Tensor& ids, Tensor& y) {
  cuda::DType dt;
  const void* tp = cw(table, dt, "embedding");
  ok(cuda::extra::embedding(dt, tp, table.dim(1), ci(ids, "embedding"), ids.numel(), mf(y, "embedding"), y.ld(),
                            stream(ctx)),
     "embedding");
}

void gdn_gates(ExecCtx& ctx, const Tensor& b, const Tensor& a, const Tensor& neg_A, const Tensor& dt_bias, Tensor& g,
               Tensor& beta) {
  ok(cuda::extra::gdn_gates(cf(b, "gdn_gates"), b.ld(), cf(a, "gdn_gates"), a.ld(), cf(neg_A, "gdn_gates"),
                            cf(dt_bias, "gdn_gates"), mf(g, "gdn_gates"), g.ld(), mf(beta, "gdn_gates"), beta.ld(),
                            b.dim(0), b.dim(1), stream(ctx)),
     "gdn_gates");
}

// --- GEMMs ---------------------------------------------------------------------------------------------------
void matmul_nt(ExecCtx& ctx, const Tensor& x, const Tensor& w, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  HYLORA_CHECK(w.dim(1) == K && y.dim(0) == M && y.dim(1) == N, "internal: matmul_nt of ", shape_str(x.shape()),
               " and ", shape_str(w.shape()), " into ", shape_str(y.shape()));
  if (M == 0) return;
  cuda::DType wt;
  const void* wp = cw(w, wt, "matmul");
  const void* xp = cf(x, "matmul");
  int64_t ldx = x.ld();
  if (wt == cuda::DType::bf16 && M <= cuda::kGemvEngineRows &&
      cuda::gemv_bf16_fits(static_cast<const float*>(xp), ldx, wp, w.ld(), M, K)) {
    // Decode rows: the weight-streaming kernel (reads fp32 x and rounds it to bf16 itself, no cast kernel).
    ok(cuda::gemv_bf16(static_cast<const float*>(xp), ldx, wp, w.ld(), mf(y, "matmul"), y.ld(), M, N, K, accumulate,
                       stream(ctx)),
       "matmul_nt (gemv)");
    return;
  }
  if (wt == f32 && cuda::gemv_f32_fits(static_cast<const float*>(xp), ldx, static_cast<const float*>(wp), w.ld(), M, K)) {
    // One row over fp32 weights (routers and gates in the bf16 mode, every projection in the float32 mode): the same
    // weight stream, no split-K reduction kernel.
    ok(cuda::gemv_f32(static_cast<const float*>(xp), ldx, static_cast<const float*>(wp), w.ld(), mf(y, "matmul"),
                      y.ld(), M, N, K, accumulate, stream(ctx)),
       "matmul_nt (gemv f32)");
    return;
  }
  if (wt == cuda::DType::bf16) {
    // cuBLASLt wants A and B of one type: round x to bf16 (as HF's bf16 GEMM sees it) into scratch [M, K]; the
    // product is accumulated and written in fp32.
    Tensor xb = ctx.scratch.tensor({M, K}, DType::BF16);
    ok(cuda::extra::to_bf16(static_cast<const float*>(xp), ldx, xb.raw(), K, M, K, stream(ctx)), "matmul_nt (cast)");
    xp = xb.raw();
    ldx = K;
  }
  ok(cuda::gemm(gemm_handle(ctx), wt, f32, xp, ldx, wp, w.ld(), mf(y, "matmul"), y.ld(), M, N, K, nullptr, accumulate,
                stream(ctx)),
     "matmul_nt (cuBLASLt)");
}

void matmul_nn(ExecCtx& ctx, const Tensor& x, const Tensor& w, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(1);
  HYLORA_CHECK(w.dim(0) == K && y.dim(0) == M && y.dim(1) == N, "internal: matmul_nn shapes");
  ok(cuda::extra::matmul_nn(cf(x, "matmul_nn"), x.ld(), cf(w, "matmul_nn"), w.ld(), mf(y, "matmul_nn"), y.ld(), M, N,
                            K, accumulate, stream(ctx)),
     "matmul_nn");
}

void add_bias(ExecCtx& ctx, const Tensor& b, Tensor& y) {
  ok(cuda::extra::add_bias(cf(b, "add_bias"), mf(y, "add_bias"), y.ld(), y.dim(0), y.dim(1), stream(ctx)), "add_bias");
}

// --- LoRA ----------------------------------------------------------------------------------------------------
void lora_shrink(ExecCtx& ctx, const Tensor& x, const LoraSegments& seg,
                 const std::vector<const LoraSliceBuffers*>& slices, Tensor& s) {
  if (seg.empty()) return;
  const int64_t max_r = slices.at(0)->A.dim(1);
  HYLORA_CHECK(max_r <= cuda::kLoraMaxRank, "LoRA rank ", max_r, " above the GPU kernels' ", cuda::kLoraMaxRank);
  ok(cuda::lora_shrink(f32, cf(x, "lora_shrink"), x.ld(), x.dim(1), slices_of(slices), max_r, segs(seg),
                       mf(s, "lora_shrink"), cuda::LoraPath::kAuto, stream(ctx)),
     "lora_shrink");
}

void lora_shrink_embedding(ExecCtx& ctx, const Tensor& ids, const LoraSegments& seg,
                           const std::vector<const LoraSliceBuffers*>& slices, Tensor& s) {
  if (seg.empty()) return;
  const Tensor& A = slices.at(0)->A;  // [groups, max_r, vocab]
  ok(cuda::lora_embedding_shrink(f32, ci(ids, "lora_embedding"), cf(A, "lora_embedding"), A.dim(2), A.dim(1),
                                 segs(seg), mf(s, "lora_embedding"), stream(ctx)),
     "lora_shrink_embedding");
}

void lora_expand(ExecCtx& ctx, const Tensor& s, const LoraSegments& seg,
                 const std::vector<const LoraSliceBuffers*>& slices, Tensor& y) {
  if (seg.empty()) return;
  ok(cuda::lora_expand(f32, cf(s, "lora_expand"), slices_of(slices), slices.at(0)->A.dim(1), segs(seg),
                       mf(y, "lora_expand"), y.ld(), stream(ctx)),
     "lora_expand");
}

void lora_segment_dense_delta(ExecCtx& ctx, const Tensor& x, const LoraSegments& seg, int64_t g, const Tensor& delta,
                              int64_t out_offset, Tensor& y) {
  ok(cuda::extra::segment_dense_delta(cf(x, "dense_delta"), x.ld(), ci(seg.perm, "dense_delta"),
                                      ci(seg.indptr, "dense_delta"), g, seg.num_rows, cf(delta, "dense_delta"),
                                      delta.dim(0), delta.dim(1), mf(y, "dense_delta"), y.ld(), out_offset,
                                      stream(ctx)),
     "lora_segment_dense_delta");
}

void lora_segment_embedding_delta(ExecCtx& ctx, const Tensor& ids, const LoraSegments& seg, int64_t g,
                                  const Tensor& delta, Tensor& y) {
  ok(cuda::extra::segment_embedding_delta(ci(ids, "embedding_delta"), ci(seg.perm, "embedding_delta"),
                                          ci(seg.indptr, "embedding_delta"), g, seg.num_rows,
                                          cf(delta, "embedding_delta"), delta.dim(1), mf(y, "embedding_delta"),
                                          y.ld(), stream(ctx)),
     "lora_segment_embedding_delta");
}

void segment_index(ExecCtx& ctx, const LoraSegments& seg, Tensor& out) {
  ok(cuda::extra::segment_index(seg.num_segments ? ci(seg.perm, "segment_index") : nullptr,
                                seg.num_segments ? ci(seg.indptr, "segment_index") : nullptr, seg.num_segments,
                                seg.num_rows, mi(out, "segment_index"), out.numel(), stream(ctx)),
     "segment_index");
}

// --- MLA -----------------------------------------------------------------------------------------------------
void mla_attention(ExecCtx& ctx, const Tensor& q, const Tensor& cache, const SeqLayout& layout,
                   const std::vector<Tensor>& kvb, const Tensor& kvb_of_row, int64_t num_heads, int64_t nope_dim,
                   int64_t v_dim, float scale, Tensor& o) {
  const int64_t Dqk = q.dim(1) / num_heads, Dr = Dqk - nope_dim, Ckv = cache.dim(2) - Dr;
  std::vector<const float*> table;
  for (const Tensor& w : kvb) table.push_back(cf(w, "mla kv_b"));
  const Tensor dev_table = upload(ctx, table.data(), table.size() * sizeof(const float*));
  const int64_t max_ctx = layout.max_pages * layout.page_size;  // host-known bound of every context
  ok(cuda::extra::mla_attention(cf(q, "mla"), q.ld(), cf(cache, "mla"), ci(layout.cu_seqlens, "mla"),
                                ci(layout.context_lens, "mla"), ci(layout.page_table, "mla"), layout.num_seqs,
                                layout.num_tokens, layout.max_pages, layout.page_size,
                                static_cast<const float* const*>(dev_table.raw()), ci(kvb_of_row, "mla"), num_heads,
                                nope_dim, Dr, v_dim, Ckv, max_ctx, scale, mf(o, "mla"), o.ld(), stream(ctx)),
     "mla_attention");
}

// --- MoE -----------------------------------------------------------------------------------------------------
void route_softmax_topk(ExecCtx& ctx, const Tensor& logits, int64_t k, bool normalize, Tensor& ids, Tensor& weights) {
  ok(cuda::moe_route_softmax_topk(cf(logits, "route"), logits.ld(), logits.dim(0), logits.dim(1), k, normalize,
                                  mi(ids, "route"), mf(weights, "route"), stream(ctx)),
     "route_softmax_topk");
}

void route_sigmoid_grouped(ExecCtx& ctx, const Tensor& logits, const Tensor& bias, int64_t n_group,
                           int64_t topk_group, int64_t k, bool normalize, float scale, Tensor& ids, Tensor& weights) {
  ok(cuda::moe_route_sigmoid_grouped(cf(logits, "route"), logits.ld(), cf(bias, "route"), logits.dim(0),
                                     logits.dim(1), n_group, topk_group, k, normalize, scale, mi(ids, "route"),
                                     mf(weights, "route"), stream(ctx)),
     "route_sigmoid_grouped");
}

void moe_permute(ExecCtx& ctx, const Tensor& ids, const Tensor& row_slot, int64_t num_experts, int64_t num_slots,
                 MoePermutation& out) {
  // On the device with sizes the host knows (P, E, slots): no read-back, so the step stays asynchronous
  // (cuda/moe_permute.h lists the segment layout, with empty segments).
  const int64_t k = ids.dim(1), P = ids.dim(0) * k, E = num_experts, S = num_slots, G = E * S;
  out.num_pairs = P;
  out.pair = ctx.scratch.tensor({std::max<int64_t>(P, 1)}, DType::I32);
  out.expert_offsets = ctx.scratch.tensor({E + 1}, DType::I32);
  LoraSegments& seg = out.lora;
  seg.num_rows = S > 0 ? P : 0;
  // The kernel lists the non-empty (expert, slot) segments first and at most P are non-empty: the LoRA kernels'
  // grids (one spare tile per segment) then scale with min(E·slots, P), still a host-known bound.
  seg.num_segments = std::min(G, P);
  seg.perm = ctx.scratch.tensor({std::max<int64_t>(P, 1)}, DType::I32);
  seg.indptr = ctx.scratch.tensor({G + 1}, DType::I32);
  seg.group = ctx.scratch.tensor({std::max<int64_t>(G, 1)}, DType::I32);
  seg.group_host.clear();
  const size_t ws_bytes = cuda::moe_permute_by_slot_workspace_bytes(P, E, S);
  Tensor ws = ctx.scratch.tensor({static_cast<int64_t>((ws_bytes + 3) / 4)}, DType::I32);
  ok(cuda::moe_permute_by_slot(ci(ids, "moe_permute"), P, k, ci(row_slot, "moe_permute"), E, S, mi(out.pair, "moe_permute"),
                               mi(out.expert_offsets, "moe_permute"), mi(seg.perm, "moe_permute"),
                               mi(seg.indptr, "moe_permute"), mi(seg.group, "moe_permute"), ws.raw(), ws_bytes,
                               stream(ctx)),
     "moe_permute");
}

void moe_gather(ExecCtx& ctx, const Tensor& x, const MoePermutation& perm, int64_t k, Tensor& xs) {
  ok(cuda::extra::gather_rows(cf(x, "moe_gather"), x.ld(), ci(perm.pair, "moe_gather"), k, mf(xs, "moe_gather"),
                              xs.ld(), perm.num_pairs, x.dim(1), stream(ctx)),
     "moe_gather");
}

void moe_expert_gemm(ExecCtx& ctx, const Tensor& xs, const Tensor& w, const MoePermutation& perm, Tensor& ys) {
  cuda::DType wt;
  const void* wp = cw(w, wt, "expert_gemm");
  HYLORA_CHECK(w.ndim() == 3 && w.contiguous(), "internal: expert weights must be a contiguous [E, out, in] tensor");
  // Decode (GEMV over the routed experts) or prefill (tensor-core tiles) by P and E only: graph-safe (expert_gemm.h).
  ok(cuda::expert_gemm(cf(xs, "expert_gemm"), xs.ld(), wt, wp, ci(perm.expert_offsets, "expert_gemm"), w.dim(0),
                       mf(ys, "expert_gemm"), ys.ld(), perm.num_pairs, w.dim(1), w.dim(2), stream(ctx)),
     "moe_expert_gemm");
}

void moe_combine(ExecCtx& ctx, const Tensor& ys, const MoePermutation& perm, const Tensor& weights, Tensor& out) {
  ok(cuda::extra::moe_combine(cf(ys, "moe_combine"), ys.ld(), ci(perm.pair, "moe_combine"),
                              cf(weights, "moe_combine"), out.dim(0), weights.dim(1), out.dim(1), mf(out, "moe_combine"),
                              out.ld(), stream(ctx)),
     "moe_combine");
}

// --- RoPE ----------------------------------------------------------------------------------------------------
void rope_neox(ExecCtx& ctx, Tensor& x, int64_t head_dim, const Tensor& positions, const std::vector<float>& inv_freq,
               int64_t rot, int64_t offset, float attention_scaling) {
  ok(cuda::extra::rope(mf(x, "rope"), x.ld(), x.dim(0), x.row_size() / head_dim, head_dim, ci(positions, "rope"),
                       constant_on_device(ctx, inv_freq), rot, offset, attention_scaling, false, stream(ctx)),
     "rope_neox");
}

void rope_interleaved(ExecCtx& ctx, Tensor& x, int64_t head_dim, const Tensor& positions,
                      const std::vector<float>& inv_freq, int64_t rot, int64_t offset, float attention_scaling) {
  ok(cuda::extra::rope(mf(x, "rope"), x.ld(), x.dim(0), x.row_size() / head_dim, head_dim, ci(positions, "rope"),
                       constant_on_device(ctx, inv_freq), rot, offset, attention_scaling, true, stream(ctx)),
     "rope_interleaved");
}

// --- tensor-parallel index ops (ops/tensor_parallel.h) ----------------------------------------------------------

void localize_vocab_ids(ExecCtx& ctx, const Tensor& ids, int64_t begin, int64_t size, Tensor& local,
                        Tensor& elsewhere) {
  HYLORA_CHECK(local.numel() == ids.numel() && elsewhere.numel() == ids.numel(), "internal: localize_vocab_ids of ",
               ids.numel(), " ids into ", shape_str(local.shape()), " and ", shape_str(elsewhere.shape()));
  ok(cuda::tp::localize_vocab_ids(ci(ids, "localize_vocab_ids"), ids.numel(), begin, size,
                                  mi(local, "localize_vocab_ids"), mi(elsewhere, "localize_vocab_ids"), stream(ctx)),
     "localize_vocab_ids");
}

void zero_masked_rows(ExecCtx& ctx, const Tensor& mask, const Tensor& perm, Tensor& t) {
  const int64_t n = t.ndim() == 0 ? 0 : t.dim(0);
  HYLORA_CHECK(!perm.defined() || perm.numel() >= n, "internal: zero_masked_rows of ", n, " rows with a permutation of ",
               perm.numel());
  if (n == 0) return;
  ok(cuda::tp::zero_masked_rows(ci(mask, "zero_masked_rows"), perm.defined() ? ci(perm, "zero_masked_rows") : nullptr,
                                mf(t, "zero_masked_rows"), n, t.row_size(), t.ld(), stream(ctx)),
     "zero_masked_rows");
}

void localize_expert_routing(ExecCtx& ctx, const Tensor& ids, const Tensor& weights, int64_t e0, int64_t n,
                             Tensor& local_ids, Tensor& local_weights) {
  const int64_t P = ids.numel();
  HYLORA_CHECK(weights.numel() == P && local_ids.numel() == P && local_weights.numel() == P && ids.contiguous() &&
                   weights.contiguous() && local_ids.contiguous() && local_weights.contiguous(),
               "internal: localize_expert_routing of ", shape_str(ids.shape()));
  ok(cuda::tp::localize_expert_routing(ci(ids, "localize_expert_routing"), cf(weights, "localize_expert_routing"), P,
                                       e0, n, mi(local_ids, "localize_expert_routing"),
                                       mf(local_weights, "localize_expert_routing"), stream(ctx)),
     "localize_expert_routing");
}

}  // namespace hylora::ops::cuda_backend
