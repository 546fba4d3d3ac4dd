// GPU checks of every CUDA op against independent double-precision references on fresh random inputs, and a few
// timings. Usage: hylora_cuda_checks [--small] [--bench] [--only NAME]
//   --small: small shapes (for compute-sanitizer runs); --bench: also time key kernels (with --only NAME: only the
//   timings that section's check file runs itself under g_bench, not the shared bench() below).
#include <chrono>
#include <string>
#include <tuple>

#include "ops/cuda/attention.h"
#include "ops/cuda/extra.h"
#include "ops/cuda/gdn_chunked.h"
#include "ops/cuda/ssd_chunked.h"
#include "ops/cuda/gemm.h"
#include "ops/cuda/gemv.h"
#include "ops/cuda/lora.h"
#include "ops/cuda/moe.h"
#include "ops/cuda/recurrent.h"
#include "tests/cuda/check_util.h"

void check_dense();
void check_lora();
void check_attention();
void check_attn_prefill();
void bench_attn_prefill();
void check_attention_decode();
void check_recurrent();
void check_gdn_chunked();
void check_ssd_chunked();
void check_sampling();
void check_graph();
void check_moe_permute();
void check_bf16_weights();
void check_expert_gemm();
void bench_expert_gemm();
void check_extra_rope();
void check_tensor_parallel();

using namespace chk;
namespace hc = hylora::cuda;

namespace {
// Decode-step kernels at Qwen3.5-4B shapes with fp32 activations (the engine's bf16-weight mode): GDN (Hk 16, Hv 32,
// Dk = Dv = 128), conv1d (C 8192, K 4), extra::rope (16 q heads of 256, partial rot 64), LoRA (8 adapters of rank 16
// at batch 64, in = out = 2560, fp32 A/B). Before this branch (ncu, H200): GDN 34 µs (S=1) / 230 µs (S=64), conv
// 30 µs (S=1), rope 20 µs (T=1) / 45 µs (T=64), LoRA shrink 26 µs / expand 21 µs (T=64).
void bench_decode() {
  for (int64_t S : {1L, 64L}) {
    const int64_t Hk = 16, Hv = 32, Dk = 128, Dv = 128, T = S;
    std::vector<int32_t> cu(S + 1), sl(S);
    for (int64_t s = 0; s <= S; ++s) cu[s] = static_cast<int32_t>(s);
    for (int64_t s = 0; s < S; ++s) sl[s] = static_cast<int32_t>(s);
    Buf q(T * Hk * Dk * 4), k(T * Hk * Dk * 4), v(T * Hv * Dv * 4), g(T * Hv * 4), b(T * Hv * 4), o(T * Hv * Dv * 4),
        st(S * Hv * Dk * Dv * 4), dcu = up_raw(cu), dsl = up_raw(sl);
    for (Buf* bb : {&q, &k, &v, &g, &b, &st}) CK(cudaMemset(bb->p, 0, bb->bytes));
    const double ms = time_ms([&] {
      CK(hc::gated_delta_rule(DType::f32, q.p, Hk * Dk, k.p, Hk * Dk, v.p, Hv * Dv, g.p, Hv, b.p, Hv, o.p, Hv * Dv,
                              st.as<float>(), dsl.as<int32_t>(), dcu.as<int32_t>(), S, T, Hk, Hv, Dk, Dv, nullptr,
                              nullptr));
    });
    std::printf("TIME decode gated_delta f32 S=%ld Hk=16 Hv=32 Dk=Dv=128: %.2f us (state r+w %.0f GB/s)\n", (long)S,
                ms * 1e3, 2.0 * st.bytes / ms / 1e6);
    const int64_t C = 8192, K = 4;
    Buf x(T * C * 4), w(C * K * 4), bias(C * 4), y(T * C * 4), cst(S * C * (K - 1) * 4);
    for (Buf* bb : {&x, &w, &bias, &cst}) CK(cudaMemset(bb->p, 0, bb->bytes));
    const double ms_c = time_ms([&] {
      CK(hc::causal_conv1d(DType::f32, x.p, C, w.p, bias.p, y.p, C, cst.as<float>(), dsl.as<int32_t>(),
                           dcu.as<int32_t>(), S, T, C, K, true, nullptr));
    });
    std::printf("TIME decode causal_conv1d f32 S=%ld C=8192 K=4: %.2f us\n", (long)S, ms_c * 1e3);
    const int64_t H = 16, D = 256, rot = 64;
    std::vector<int32_t> pos(T, 12345);
    std::vector<float> inv(rot / 2);
    for (int64_t i = 0; i < rot / 2; ++i) inv[i] = std::pow(1e7f, -static_cast<float>(2 * i) / rot);
    Buf xr(T * H * D * 4), dpos = up_raw(pos), dinv = up_raw(inv);
    CK(cudaMemset(xr.p, 0, xr.bytes));
    const double ms_r = time_ms([&] {
      CK(hc::extra::rope(xr.as<float>(), H * D, T, H, D, dpos.as<int32_t>(), dinv.as<float>(), rot, 0, 1.0f, false,
                         nullptr));
    });
    std::printf("TIME decode extra::rope f32 T=%ld heads=16 D=256 rot=64: %.2f us\n", (long)T, ms_r * 1e3);
    // LoRA: G adapters of rank 16 (max_r 16), one slice in = out = 2560, fp32 x / A / B / y
    const int64_t G = S == 1 ? 1 : 8, in = 2560, out = 2560, r = 16, slots = 8;
    std::vector<int32_t> perm(T), ind(G + 1), slot(G), rank(slots, static_cast<int32_t>(r));
    for (int64_t i = 0; i < T; ++i) perm[i] = static_cast<int32_t>(i);
    for (int64_t gg = 0; gg <= G; ++gg) ind[gg] = static_cast<int32_t>(gg * T / G);
    for (int64_t gg = 0; gg < G; ++gg) slot[gg] = static_cast<int32_t>(gg);
    Buf lx(T * in * 4), ly(T * out * 4), ls(T * r * 4), A(slots * r * in * 4), B(slots * out * r * 4),
        dp = up_raw(perm), di = up_raw(ind), dsg = up_raw(slot), dr = up_raw(rank);
    for (Buf* bb : {&lx, &ly, &A, &B}) CK(cudaMemset(bb->p, 0, bb->bytes));
    hc::LoraSlices lsl;
    lsl.n = 1;
    lsl.A[0] = A.p;
    lsl.B[0] = B.p;
    lsl.out_size[0] = out;
    hc::LoraSegments seg{dp.as<int32_t>(), T, di.as<int32_t>(), dsg.as<int32_t>(), G, dr.as<int32_t>()};
    const double ms_s = time_ms([&] {
      CK(hc::lora_shrink(DType::f32, lx.p, in, in, lsl, r, seg, ls.as<float>(), hc::LoraPath::kDecode, nullptr));
    });
    const double ms_e = time_ms([&] {
      CK(hc::lora_expand(DType::f32, ls.as<float>(), lsl, r, seg, ly.p, out, nullptr, hc::LoraPath::kDecode));
    });
    const double ms_e2 = time_ms([&] {
      CK(hc::lora_expand(DType::f32, ls.as<float>(), lsl, r, seg, ly.p, out, nullptr, hc::LoraPath::kSgmv));
    });
    std::printf("TIME decode lora f32 T=%ld G=%ld r=16 in=out=2560: shrink(decode) %.2f us, expand(decode) %.2f us, "
                "expand(sgmv tiles) %.2f us\n", (long)T, (long)G, ms_s * 1e3, ms_e * 1e3, ms_e2 * 1e3);
  }
}

// Decode projections at Qwen3.5-4B shapes (and its lm_head): the bf16 weight-streaming kernel (gemv.h) against the
// path it replaces (x cast to bf16, then cuBLASLt's mixed GEMM), at 1 and 8 rows. Each repetition reads another copy
// of the weights from a 2 GiB pool (far more than the 50 MB L2 holds), so the times are DRAM's, as in a decode step.
void bench_gemv() {
  hc::GemmHandle gh;
  const size_t pool_bytes = size_t{2} << 30;  // ≥ the largest matrix (lm_head, 1.27 GB)
  Buf pool(pool_bytes);
  CK(cudaMemset(pool.p, 0, pool_bytes));
  for (auto nk : std::vector<std::pair<int64_t, int64_t>>{{8192, 2560}, {4096, 2560}, {1024, 2560}, {64, 2560},
                                                          {18432, 2560}, {2560, 9216}, {2560, 4096}, {248320, 2560}}) {
    const int64_t N = nk.first, K = nk.second;
    const size_t wbytes = static_cast<size_t>(N) * K * 2;
    const int64_t copies = std::max<int64_t>(1, static_cast<int64_t>(pool_bytes / wbytes));
    for (int64_t M : {1L, 8L}) {
      Buf x(M * K * 4), xb(M * K * 2), y(M * N * 4);
      CK(cudaMemset(x.p, 0, x.bytes));
      int64_t i = 0;
      auto w = [&] { return static_cast<char*>(pool.p) + (i++ % copies) * wbytes; };
      const double ms_v = time_ms([&] {
        CK(hc::gemv_bf16(x.as<float>(), K, w(), K, y.as<float>(), N, M, N, K, false, nullptr));
      });
      const double ms_c = time_ms([&] {
        CK(hc::extra::to_bf16(x.as<float>(), K, xb.p, K, M, K, nullptr));
        CK(hc::gemm(gh, DType::bf16, DType::f32, xb.p, K, w(), K, y.p, N, M, N, K, nullptr, false, nullptr));
      });
      std::printf("TIME decode projection bf16 M=%ld N=%ld K=%ld: gemv %.2f us (%.0f GB/s), cast + cuBLASLt %.2f us "
                  "(%.0f GB/s)\n", (long)M, (long)N, (long)K, ms_v * 1e3, wbytes / ms_v / 1e6, ms_c * 1e3,
                  wbytes / ms_c / 1e6);
    }
  }
}

void bench() {
  std::printf("\n== timings (CUDA events, mean of 20 after warm-up)\n");
  bench_gemv();
  {
    const size_t bytes = size_t{2} << 30;
    Buf a(bytes), b(bytes);
    CK(cudaMemset(a.p, 1, bytes));
    const double ms = time_ms([&] { CK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); }, 10);
    std::printf("TIME copy D2D 2 GiB: %.3f ms  -> %.0f GB/s (read+write)\n", ms, 2.0 * bytes / ms / 1e6);
  }
  hc::GemmHandle gh;
  for (auto cfg : {std::make_tuple(DType::bf16, 8192L, 8192L, 8192L), std::make_tuple(DType::f32, 4096L, 4096L, 4096L),
                   std::make_tuple(DType::bf16, 64L, 4096L, 4096L), std::make_tuple(DType::bf16, 1L, 12288L, 4096L)}) {
    const DType d = std::get<0>(cfg);
    const int64_t M = std::get<1>(cfg), N = std::get<2>(cfg), K = std::get<3>(cfg);
    const size_t es = hc::dtype_size(d);
    Buf x(M * K * es), w(N * K * es), y(M * N * es);
    CK(cudaMemset(x.p, 0, x.bytes));
    CK(cudaMemset(w.p, 0, w.bytes));
    const double ms = time_ms([&] { CK(hc::gemm(gh, d, x.p, K, w.p, K, y.p, N, M, N, K, nullptr, false, nullptr)); });
    std::printf("TIME gemm %s M=%ld N=%ld K=%ld: %.4f ms  -> %.1f TFLOP/s, %.0f GB/s of weights+act\n", dname(d),
                (long)M, (long)N, (long)K, ms, 2.0 * M * N * K / ms / 1e9, (double)(x.bytes + w.bytes + y.bytes) / ms / 1e6);
  }
  // attention decode (old vs new kernel, the Qwen3.5 and Llama decode shapes): bench_attention_decode in
  // checks_attn_decode.cu, run by the attention_decode section under --bench
  {
    const int64_t ps = 16;
    hc::PagedAttention p;
    p.page_size = ps;
    p.scale = 0.088f;
    // prefill 1 x 8192, nH 16, nKV 4, D 256 (Qwen3.5 full attention)
    const int64_t T = 8192, H2 = 16, KV2 = 4, D2 = 256, mp2 = T / ps;
    std::vector<int32_t> cu2 = {0, static_cast<int32_t>(T)}, cl2 = {static_cast<int32_t>(T)}, pt2(mp2);
    for (int64_t i = 0; i < mp2; ++i) pt2[i] = static_cast<int32_t>(i);
    Buf kp2(T * KV2 * D2 * 2), vp2(T * KV2 * D2 * 2), q2(T * H2 * D2 * 2), o2(T * H2 * D2 * 2);
    CK(cudaMemset(kp2.p, 0, kp2.bytes));
    CK(cudaMemset(vp2.p, 0, vp2.bytes));
    CK(cudaMemset(q2.p, 0, q2.bytes));
    Buf dcu2 = up_raw(cu2), dcl2 = up_raw(cl2), dpt2 = up_raw(pt2);
    hc::PagedAttention p2 = p;
    p2.q = q2.p; p2.ldq = H2 * D2; p2.k_pool = kp2.p; p2.v_pool = vp2.p; p2.o = o2.p; p2.ldo = H2 * D2;
    p2.cu_seqlens = dcu2.as<int32_t>(); p2.context_lens = dcl2.as<int32_t>(); p2.page_table = dpt2.as<int32_t>();
    p2.S = 1; p2.T = T; p2.nH = H2; p2.nKV = KV2; p2.D = D2; p2.Dv = D2; p2.max_pages = mp2;
    const double ms = time_ms([&] { CK(hc::attention_prefill(DType::bf16, p2, nullptr)); }, 3);
    std::printf("TIME attention prefill bf16 1x8192 nH=16 nKV=4 D=256 causal: %.2f ms -> %.1f TFLOP/s\n", ms,
                4.0 * H2 * D2 * (double)T * T / 2 / ms / 1e9);
  }
  bench_attn_prefill();  // old WMMA vs new mma.sync prefill
  // LoRA: decode batch 64 with 8 adapters (r=16), 3 slices 4096/1024/1024, in 4096; prefill 8192 rows 1 adapter r=64
  for (auto cfg : {std::make_tuple(64L, 8L, 16L), std::make_tuple(8192L, 1L, 64L)}) {
    const int64_t T = std::get<0>(cfg), G = std::get<1>(cfg), r = std::get<2>(cfg);
    const int64_t in = 4096, slots = 8;
    const std::vector<int64_t> outs = {4096, 1024, 1024};
    std::vector<int32_t> perm(T), ind(G + 1), slot(G), rank(slots * 3, static_cast<int32_t>(r));
    for (int64_t i = 0; i < T; ++i) perm[i] = static_cast<int32_t>(i);
    for (int64_t g = 0; g <= G; ++g) ind[g] = static_cast<int32_t>(g * T / G);
    for (int64_t g = 0; g < G; ++g) slot[g] = static_cast<int32_t>(g);
    Buf x(T * in * 2), y(T * 6144 * 2), s(T * 3 * r * 4), dp = up_raw(perm), di = up_raw(ind), ds = up_raw(slot),
        dr = up_raw(rank);
    CK(cudaMemset(x.p, 0, x.bytes));
    CK(cudaMemset(y.p, 0, y.bytes));
    std::vector<Buf> ab;
    hc::LoraSlices sl;
    sl.n = 3;
    int64_t off = 0, lbytes = 0;
    for (int k = 0; k < 3; ++k) {
      ab.emplace_back(slots * r * in * 2);
      CK(cudaMemset(ab.back().p, 0, ab.back().bytes));
      sl.A[k] = ab.back().p;
      ab.emplace_back(slots * outs[k] * r * 2);
      CK(cudaMemset(ab.back().p, 0, ab.back().bytes));
      sl.B[k] = ab.back().p;
      sl.out_off[k] = off;
      sl.out_size[k] = outs[k];
      off += outs[k];
      lbytes += G * (r * in + outs[k] * r) * 2;
    }
    hc::LoraSegments seg{dp.as<int32_t>(), T, di.as<int32_t>(), ds.as<int32_t>(), G, dr.as<int32_t>()};
    const double ms_s = time_ms([&] {
      CK(hc::lora_shrink(DType::bf16, x.p, in, in, sl, r, seg, s.as<float>(), hc::LoraPath::kAuto, nullptr));
    });
    const double ms_e = time_ms([&] { CK(hc::lora_expand(DType::bf16, s.as<float>(), sl, r, seg, y.p, 6144, nullptr)); });
    std::printf("TIME lora bf16 T=%ld G=%ld r=%ld in=4096 slices 4096/1024/1024: shrink %.4f ms, expand %.4f ms "
                "(adapter bytes %.1f MB -> %.0f GB/s over both)\n",
                (long)T, (long)G, (long)r, ms_s, ms_e, lbytes / 1e6, lbytes / (ms_s + ms_e) / 1e6);
  }
  // GDN decode and prefill (Qwen3.5-4B-like: Hk 16, Hv 32, Dk = Dv = 128)
  for (auto cfg : {std::make_pair(64L, 1L), std::make_pair(1L, 8192L)}) {
    const int64_t S = cfg.first, L = cfg.second;
    const int64_t Hk = 16, Hv = 32, Dk = 128, Dv = 128, T = S * L;
    std::vector<int32_t> cu(S + 1), sl(S);
    for (int64_t s = 0; s <= S; ++s) cu[s] = static_cast<int32_t>(s * L);
    for (int64_t s = 0; s < S; ++s) sl[s] = static_cast<int32_t>(s);
    Buf q(T * Hk * Dk * 2), k(T * Hk * Dk * 2), v(T * Hv * Dv * 2), g(T * Hv * 2), b(T * Hv * 2), o(T * Hv * Dv * 2),
        st(S * Hv * Dk * Dv * 4), dcu = up_raw(cu), dsl = up_raw(sl);
    for (Buf* bb : {&q, &k, &v, &g, &b, &st}) CK(cudaMemset(bb->p, 0, bb->bytes));
    Buf ws(hc::gated_delta_rule_workspace_floats(S, T, Hk, Hv, Dk, Dv) * 4);
    const double ms = time_ms([&] {
      CK(hc::gated_delta_rule(DType::bf16, q.p, Hk * Dk, k.p, Hk * Dk, v.p, Hv * Dv, g.p, Hv, b.p, Hv, o.p, Hv * Dv,
                              st.as<float>(), dsl.as<int32_t>(), dcu.as<int32_t>(), S, T, Hk, Hv, Dk, Dv,
                              ws.bytes ? ws.as<float>() : nullptr, nullptr));
    }, L > 1 ? 3 : 20);
    std::printf("TIME gated_delta bf16 S=%ld tokens/seq=%ld Hv=32 Dk=Dv=128: %.3f ms (state r+w %.0f GB/s)\n", (long)S,
                (long)L, ms, 2.0 * st.bytes / ms / 1e6);
  }
  // GDN prefill 1 x 8192, sequential (gdn_kernel) vs chunked (gdn_chunked.cu), both dtypes
  for (DType d : {DType::bf16, DType::f32}) {
    const int64_t Hk = 16, Hv = 32, Dk = 128, Dv = 128, T = 8192;
    const size_t es = hc::dtype_size(d);
    std::vector<int32_t> cu{0, static_cast<int32_t>(T)}, sl{0};
    Buf q(T * Hk * Dk * es), k(T * Hk * Dk * es), v(T * Hv * Dv * es), g(T * Hv * es), b(T * Hv * es),
        o(T * Hv * Dv * es), st(Hv * Dk * Dv * 4), dcu = up_raw(cu), dsl = up_raw(sl);
    for (Buf* bb : {&q, &k, &v, &g, &b, &st}) CK(cudaMemset(bb->p, 0, bb->bytes));
    Buf ws(hc::gated_delta_rule_chunked_workspace_floats(1, T, Hk, Hv, Dk, Dv) * 4);
    double ms[2];
    const bool was_on = hc::gdn_chunked_enabled();
    for (int chunked = 0; chunked < 2; ++chunked) {
      hc::set_gdn_chunked_enabled(chunked == 1);
      ms[chunked] = time_ms([&] {
        CK(hc::gated_delta_rule(d, q.p, Hk * Dk, k.p, Hk * Dk, v.p, Hv * Dv, g.p, Hv, b.p, Hv, o.p, Hv * Dv,
                                st.as<float>(), dsl.as<int32_t>(), dcu.as<int32_t>(), 1, T, Hk, Hv, Dk, Dv,
                                ws.as<float>(), nullptr));
      }, 3);
    }
    hc::set_gdn_chunked_enabled(was_on);
    std::printf("TIME gated_delta prefill %s 1x8192 Hv=32 Dk=Dv=128: sequential %.3f ms, chunked %.3f ms (%.1fx)\n",
                dname(d), ms[0], ms[1], ms[0] / ms[1]);
  }
  // Mamba2 scan prefill 1 x 8192 (hd 64, G 8, N 128; 128 and 32 heads), sequential (ssm_kernel) vs chunked
  // (ssd_chunked.cu)
  for (auto cfg :
       {std::make_pair(DType::bf16, 128L), std::make_pair(DType::f32, 128L), std::make_pair(DType::f32, 32L)}) {
    const DType d = cfg.first;
    const int64_t nh = cfg.second, hd = 64, G = 8, N = 128, T = 8192;
    const size_t es = hc::dtype_size(d);
    std::vector<int32_t> cu{0, static_cast<int32_t>(T)}, sl{0};
    Buf x(T * nh * hd * es), dt(T * nh * es), B(T * G * N * es), C(T * G * N * es), y(T * nh * hd * es), A(nh * 4),
        D(nh * 4), st(nh * hd * N * 4), dcu = up_raw(cu), dsl = up_raw(sl);
    for (Buf* bb : {&x, &dt, &B, &C, &A, &D, &st}) CK(cudaMemset(bb->p, 0, bb->bytes));
    double ms[2];
    const bool was_on = hc::ssd_chunked_enabled();
    for (int chunked = 0; chunked < 2; ++chunked) {
      hc::set_ssd_chunked_enabled(chunked == 1);
      ms[chunked] = time_ms([&] {
        CK(hc::ssm_scan(d, x.p, nh * hd, dt.p, nh, B.p, G * N, C.p, G * N, A.as<float>(), D.as<float>(), nullptr,
                        0.0f, y.p, nh * hd, st.as<float>(), dsl.as<int32_t>(), dcu.as<int32_t>(), 1, T, nh, hd, G, N,
                        nullptr));
      }, 3);
    }
    hc::set_ssd_chunked_enabled(was_on);
    std::printf("TIME ssm_scan prefill %s 1x8192 nh=%ld hd=64 N=128: sequential %.3f ms, chunked %.3f ms (%.2fx)\n",
                dname(d), (long)nh, ms[0], ms[1], ms[0] / ms[1]);
  }
  bench_decode();
  // split-KV decode timings: bench_attention_decode, run by the attention_decode section under g_bench
  // MoE experts, Qwen3.5-35B-A3B-like: 4096 tokens, 256 experts, top-8, hidden 2048, expert intermediate 512
  {
    const int64_t T = 4096, E = 256, k = 8, H = 2048, I = 512, n = T * k;
    std::vector<int32_t> ids(n);
    std::vector<float> wts(n, 0.125f);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < k; ++j) ids[t * k + j] = static_cast<int32_t>((t * 37 + j * 101) % E);
    Buf dids = up_raw(ids), dw = up_raw(wts), x(T * H * 2), Wu(E * 2 * I * H * 2), Wd(E * H * I * 2), h(n * 2 * I * 2),
        a(n * I * 2), yb(n * H * 2), out(T * H * 2), sorted(n * 4), pos(n * 4), offs((E + 1) * 4);
    for (Buf* bb : {&x, &Wu, &Wd}) CK(cudaMemset(bb->p, 0, bb->bytes));
    const size_t wsb = hc::moe_permute_workspace_bytes(n, E);
    Buf ws(wsb);
    double ms[5];
    ms[0] = time_ms([&] {
      CK(hc::moe_permute(dids.as<int32_t>(), n, E, sorted.as<int32_t>(), pos.as<int32_t>(), offs.as<int32_t>(), ws.p,
                         wsb, nullptr));
    }, 5);
    ms[1] = time_ms([&] {
      CK(hc::moe_grouped_gemm(DType::bf16, x.p, H, sorted.as<int32_t>(), k, offs.as<int32_t>(), E, Wu.p, h.p, 2 * I, n,
                              2 * I, H, nullptr));
    }, 5);
    ms[2] = time_ms([&] { CK(hc::moe_activation(DType::bf16, h.p, 2 * I, a.p, I, n, I, true, nullptr)); }, 5);
    ms[3] = time_ms([&] {
      CK(hc::moe_grouped_gemm(DType::bf16, a.p, I, sorted.as<int32_t>(), 0, offs.as<int32_t>(), E, Wd.p, yb.p, H, n, H, I,
                              nullptr));
    }, 5);
    ms[4] = time_ms([&] {
      CK(hc::moe_combine(DType::bf16, yb.p, H, pos.as<int32_t>(), dw.as<float>(), T, k, H, out.p, H, false, nullptr));
    }, 5);
    const double fl_up = 2.0 * n * 2 * I * H, fl_down = 2.0 * n * H * I;
    std::printf("TIME moe bf16 T=4096 E=256 k=8 H=2048 I=512: permute %.3f ms, up %.3f ms (%.0f TFLOP/s), act %.3f ms, "
                "down %.3f ms (%.0f TFLOP/s), combine %.3f ms\n",
                ms[0], ms[1], fl_up / ms[1] / 1e9, ms[2], ms[3], fl_down / ms[3] / 1e9, ms[4]);
  }
  bench_expert_gemm();  // the engine's expert GEMM (fp32 rows, bf16/fp32 weights), decode and prefill
  // sampling (and logprobs) over a 151 936 vocabulary: checks_sampling.cu times them itself under g_bench
  // Mamba2 decode (Nemotron-H-like: nh 128, hd 64, N 128, G 8), 64 sequences
  {
    const int64_t S = 64, nh = 128, hd = 64, N = 128, G = 8;
    std::vector<int32_t> cu(S + 1), sl(S);
    for (int64_t s = 0; s <= S; ++s) cu[s] = static_cast<int32_t>(s);
    for (int64_t s = 0; s < S; ++s) sl[s] = static_cast<int32_t>(s);
    Buf x(S * nh * hd * 2), dt(S * nh * 2), B(S * G * N * 2), C(S * G * N * 2), y(S * nh * hd * 2), A(nh * 4), D(nh * 4),
        st(S * nh * hd * N * 4), dcu = up_raw(cu), dsl = up_raw(sl);
    for (Buf* bb : {&x, &dt, &B, &C, &A, &D, &st}) CK(cudaMemset(bb->p, 0, bb->bytes));
    const double ms = time_ms([&] {
      CK(hc::ssm_scan(DType::bf16, x.p, nh * hd, dt.p, nh, B.p, G * N, C.p, G * N, A.as<float>(), D.as<float>(), nullptr,
                      0.0f, y.p, nh * hd, st.as<float>(), dsl.as<int32_t>(), dcu.as<int32_t>(), S, S, nh, hd, G, N,
                      nullptr));
    });
    std::printf("TIME ssm_scan decode bf16 S=64 nh=128 hd=64 N=128: %.3f ms (state r+w %.0f GB/s)\n", ms,
                2.0 * st.bytes / ms / 1e6);
  }
}
}  // namespace

int main(int argc, char** argv) {
  bool do_bench = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--small") g_small = true;
    else if (a == "--bench") do_bench = g_bench = true;
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, %.0f GiB; shapes: %s\n", prop.name, prop.multiProcessorCount,
              prop.totalGlobalMem / 1073741824.0, g_small ? "small" : "full");
  const auto t0 = std::chrono::steady_clock::now();
  auto section = [&](const char* name, void (*f)()) {
    if (!only.empty() && only != name) return;
    std::printf("\n== %s\n", name);
    const auto a = std::chrono::steady_clock::now();
    f();
    std::printf("   (%s: %.1f s)\n", name, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  };
  section("dense", check_dense);
  section("lora", check_lora);
  section("attention", check_attention);
  section("attn_prefill", check_attn_prefill);
  section("attention_decode", check_attention_decode);
  section("recurrent", check_recurrent);
  section("gdn_chunked", check_gdn_chunked);
  section("ssd_chunked", check_ssd_chunked);
  section("sampling", check_sampling);
  section("graph", check_graph);
  section("moe_permute", check_moe_permute);
  section("bf16_weights", check_bf16_weights);
  section("expert_gemm", check_expert_gemm);
  section("extra_rope", check_extra_rope);
  section("tensor_parallel", check_tensor_parallel);
  std::printf("\n%d passed, %d failed (%.1f s)\n", g_pass, g_fail,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (do_bench && only.empty()) bench();
  return g_fail ? 1 : 0;
}
