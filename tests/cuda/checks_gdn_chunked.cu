// Checks of the chunked gated delta rule (gdn_chunked.h) against the sequential recurrence in double precision:
// lengths 1 .. 1000+ (around and not multiple of the chunk of 64), ragged varlen batches of 1-4 sequences with a
// padding sequence (slot −1: outputs and state untouched), Dk/Dv 64 and 128 (and partial 32/64-column tiles, Dk and
// Dv not multiples of 8), Hv = 2·Hk, strong decays (e^{b} underflows inside a chunk), and continuation: the rows of
// every sequence split over two calls (state carried in the pool) must match one call. The workspace starts as NaN
// bytes, so a read of anything the kernels did not write shows. With --bench: the chunked form against the sequential
// kernel at 1 × 8192 and 16 × 512 tokens, Qwen3.5-4B heads.
#include <algorithm>
#include <cstdio>

#include "ops/cuda/gdn_chunked.h"
#include "ops/cuda/recurrent.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
struct Problem {
  int64_t Hk, Hv, Dk, Dv, T, ldq, ldk, ldv, ldg, ldb, ldo;
  std::vector<int> lens;
  std::vector<int32_t> cu, slot;  // full layout: sequence s owns rows [cu[s], cu[s+1])
  std::vector<float> q, k, v, g, beta, st0;
};

// A workspace of `floats` filled with NaN bytes (none when 0).
Buf nan_workspace(size_t floats) {
  Buf w(floats * sizeof(float));
  if (floats) CK(cudaMemset(w.p, 0xff, w.bytes));
  return w;
}

// One call over rows [cu[s] + from[s], cu[s] + to[s]) of every sequence, gathered into contiguous buffers; outputs
// are scattered back into out (full layout, ld ldo). The state pool stays on the device between calls. via_dispatch:
// through gated_delta_rule with its workspace (null_ws: none, so the sequential kernel).
void run_call(DType d, const Problem& P, const std::vector<int>& from, const std::vector<int>& to, Buf& dst,
              std::vector<float>& out, bool via_dispatch, bool null_ws = false) {
  const int64_t S = P.lens.size();
  const VarlenPart part(P.cu, from, to);
  const int64_t T = part.T();
  Buf dq = up(part.gather(P.q, P.ldq), d), dk = up(part.gather(P.k, P.ldk), d),
      dv = up(part.gather(P.v, P.ldv), d), dg = up(part.gather(P.g, P.ldg), d), db = up(part.gather(P.beta, P.ldb), d),
      dout = up(part.gather(out, P.ldo), d), dcu = up_raw(part.cu), dslot = up_raw(P.slot);
  if (via_dispatch) {
    const size_t wf = null_ws ? 0 : hc::gated_delta_rule_workspace_floats(S, T, P.Hk, P.Hv, P.Dk, P.Dv);
    Buf ws = nan_workspace(wf);
    CK(hc::gated_delta_rule(d, dq.p, P.ldq, dk.p, P.ldk, dv.p, P.ldv, dg.p, P.ldg, db.p, P.ldb, dout.p, P.ldo,
                            dst.as<float>(), dslot.as<int32_t>(), dcu.as<int32_t>(), S, T, P.Hk, P.Hv, P.Dk, P.Dv,
                            wf ? ws.as<float>() : nullptr, nullptr));
  } else {
    Buf ws = nan_workspace(hc::gated_delta_rule_chunked_workspace_floats(S, T, P.Hk, P.Hv, P.Dk, P.Dv));
    CK(hc::gated_delta_rule_chunked(d, dq.p, P.ldq, dk.p, P.ldk, dv.p, P.ldv, dg.p, P.ldg, db.p, P.ldb, dout.p,
                                    P.ldo, dst.as<float>(), dslot.as<int32_t>(), dcu.as<int32_t>(), S, T, P.Hk, P.Hv,
                                    P.Dk, P.Dv, T ? ws.as<float>() : nullptr, nullptr));
  }
  auto og = down(dout, T * P.ldo, d);
  part.scatter(og, P.ldo, out);
}

// Sequential reference: gated_delta_ref_token (check_util.h) over every token of every live sequence.
void reference(const Problem& P, std::vector<double>& oref, std::vector<double>& sref) {
  const int64_t S = P.lens.size(), Dk = P.Dk, Dv = P.Dv;
  oref.assign(P.T * P.ldo, 0.0);
  sref.assign(P.st0.begin(), P.st0.end());
  for (int64_t s = 0; s < S; ++s) {
    if (P.slot[s] < 0) continue;
    for (int64_t h = 0; h < P.Hv; ++h) {
      const int64_t kh = h / (P.Hv / P.Hk);
      double* Sm = sref.data() + (P.slot[s] * P.Hv + h) * Dk * Dv;
      for (int64_t t = P.cu[s]; t < P.cu[s + 1]; ++t)
        gated_delta_ref_token(&P.q[t * P.ldq + kh * Dk], &P.k[t * P.ldk + kh * Dk], &P.v[t * P.ldv + h * Dv],
                              P.g[t * P.ldg + h], P.beta[t * P.ldb + h], Dk, Dv, Sm, &oref[t * P.ldo + h * Dv]);
    }
  }
}

// mode 0: one direct call; 1: two direct calls (every sequence split at a random row); 2: one call through
// gated_delta_rule (the dispatch); 3: the dispatch without a workspace (the sequential kernel). gmin: most negative
// log decay.
void check(DType d, int64_t Hk, int64_t Hv, int64_t Dk, int64_t Dv, const std::vector<int>& lens, int mode,
           float gmin = -1.0f, bool corr = false) {
  Problem P{Hk, Hv, Dk, Dv};
  P.lens = lens;
  const int64_t S = lens.size(), slots = S + 2;
  make_varlen_batch(lens, slots, P.cu, P.slot);
  P.T = P.cu[S];
  P.ldq = Hk * Dk + 3, P.ldk = Hk * Dk + 1, P.ldv = Hv * Dv + 2, P.ldg = Hv + 1, P.ldb = Hv + 3, P.ldo = Hv * Dv + 5;
  const int64_t T = P.T;
  P.q = randn(T * P.ldq, 1.0f, d), P.k = randn(T * P.ldk, 1.0f, d), P.v = randn(T * P.ldv, 1.0f, d);
  P.g = randu(T * P.ldg, gmin, -0.001f, d), P.beta = randu(T * P.ldb, 0.05f, 0.95f, d);
  if (corr) {  // nearly parallel keys (one direction + 10% noise): the worst conditioning of the triangular solve
    const auto base = randn(P.ldk, 1.0f, DType::f32);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < P.ldk; ++c) P.k[t * P.ldk + c] = round_dt(base[c] + 0.1f * P.k[t * P.ldk + c], d);
    P.beta = randu(T * P.ldb, 0.9f, 1.0f, d);
  }
  P.st0 = randn(slots * Hv * Dk * Dv, 0.1f, DType::f32);
  const std::vector<float> o0 = randn(T * P.ldo, 1.0f, d);
  std::vector<float> out = o0;
  Buf dst = up(P.st0, DType::f32);
  std::vector<int> zero(S, 0), mid(S);
  for (int64_t s = 0; s < S; ++s) mid[s] = randint(0, lens[s]);
  if (mode == 1) {
    run_call(d, P, zero, mid, dst, out, false);
    run_call(d, P, mid, lens, dst, out, false);
  } else {
    run_call(d, P, zero, lens, dst, out, mode >= 2, mode == 3);
  }
  auto sg = down(dst, P.st0.size(), DType::f32);
  std::vector<double> oref, sref;
  reference(P, oref, sref);
  // every slot of the pool: padding and unused slots must keep st0 exactly
  std::vector<float> og2, sg2;
  std::vector<double> or2, sr2;
  const bool untouched = split_varlen_results(out, o0, oref, P.ldo, Hv * Dv, sg, P.st0, sref, Hv * Dk * Dv, P.cu,
                                              P.slot, og2, or2, sg2, sr2);
  const std::string ls = lens_str(lens);
  char name[200];
  std::snprintf(name, sizeof name, "gdn_chunked %s Hk=%ld Hv=%ld Dk=%ld Dv=%ld gmin=%g%s lens=%s",
                mode == 1 ? "2calls" : mode == 2 ? "dispatch" : mode == 3 ? "dispatch-no-ws" : "1call", (long)Hk,
                (long)Hv, (long)Dk, (long)Dv,
                gmin, corr ? " corr-keys" : "", ls.c_str());
  compare(std::string(name) + " out", d, og2, or2, 5e-5, 1.6e-2);
  compare(std::string(name) + " state", d, sg2, sr2, 5e-5, 1e-3);
  expect(std::string(name) + " padding untouched", untouched);
}
// Qwen3.5-4B heads (Hk 16, Hv 32, Dk = Dv = 128), random inputs: the sequential kernel (gated_delta_rule without a
// workspace) vs the chunked form. The previous one-kernel chunked form (removed; commit 7dcb895 has it) took, on the
// H200 of this session: bf16 6.13 ms (1 × 8192) / 4.04 ms (16 × 512), f32 6.14 / 4.06 ms.
void bench_gdn_chunked() {
  const int64_t Hk = 16, Hv = 32, Dk = 128, Dv = 128;
  for (DType d : {DType::bf16, DType::f32})
    for (auto cfg : {std::make_pair(1L, 8192L), std::make_pair(16L, 512L)}) {
      const int64_t S = cfg.first, L = cfg.second, T = S * L;
      std::vector<int32_t> cu(S + 1), sl(S);
      for (int64_t s = 0; s <= S; ++s) cu[s] = static_cast<int32_t>(s * L);
      for (int64_t s = 0; s < S; ++s) sl[s] = static_cast<int32_t>(s);
      Buf q = up(randu(T * Hk * Dk, -1.0f, 1.0f, d), d), k = up(randu(T * Hk * Dk, -1.0f, 1.0f, d), d),
          v = up(randu(T * Hv * Dv, -1.0f, 1.0f, d), d), g = up(randu(T * Hv, -1.0f, -0.001f, d), d),
          b = up(randu(T * Hv, 0.05f, 0.95f, d), d), o(T * Hv * Dv * hc::dtype_size(d)),
          st = up(std::vector<float>(S * Hv * Dk * Dv, 0.0f), DType::f32), dcu = up_raw(cu), dsl = up_raw(sl);
      Buf ws(hc::gated_delta_rule_chunked_workspace_floats(S, T, Hk, Hv, Dk, Dv) * sizeof(float));
      const double ms_seq = time_ms([&] {
        CK(hc::gated_delta_rule(d, q.p, Hk * Dk, k.p, Hk * Dk, v.p, Hv * Dv, g.p, Hv, b.p, Hv, o.p, Hv * Dv,
                                st.as<float>(), dsl.as<int32_t>(), dcu.as<int32_t>(), S, T, Hk, Hv, Dk, Dv, nullptr,
                                nullptr));
      }, 2);
      const double ms_new = time_ms([&] {
        CK(hc::gated_delta_rule_chunked(d, q.p, Hk * Dk, k.p, Hk * Dk, v.p, Hv * Dv, g.p, Hv, b.p, Hv, o.p, Hv * Dv,
                                        st.as<float>(), dsl.as<int32_t>(), dcu.as<int32_t>(), S, T, Hk, Hv, Dk, Dv,
                                        ws.as<float>(), nullptr));
      }, 10);
      std::printf("TIME gdn_chunked prefill %s %ldx%ld Hv=32 Dk=Dv=128: sequential %.3f ms, chunked %.3f ms "
                  "(%.1fx; workspace %.0f MB)\n",
                  dname(d), (long)S, (long)L, ms_seq, ms_new, ms_seq / ms_new, ws.bytes / 1e6);
    }
}
}  // namespace

void check_gdn_chunked() {
  for (DType d : {DType::f32, DType::bf16}) {
    if (g_small) {
      check(d, 1, 2, 64, 40, {1, 70, 3}, 0);
      check(d, 1, 2, 64, 64, {65, 2}, 1);
      check(d, 1, 2, 128, 128, {70}, 0);
      continue;
    }
    for (int n : {1, 2, 5, 63, 64, 65, 127, 128, 129, 300, 1000, 1100}) check(d, 2, 4, 128, 128, {n}, 0);
    check(d, 2, 4, 128, 128, {1, 64, 65, 1000, 17}, 0);   // ragged, padding sequence in the middle
    check(d, 1, 2, 64, 64, {63, 128, 129}, 0);
    check(d, 2, 4, 64, 128, {200, 7}, 0);
    check(d, 2, 4, 128, 64, {31, 333}, 0);
    check(d, 1, 2, 64, 80, {150, 1, 90}, 0);              // partial 32- and 64-column tiles
    check(d, 2, 4, 100, 72, {130, 5, 64}, 0);             // Dk, Dv not multiples of 8 (zero-padded operands)
    check(d, 1, 1, 36, 24, {1, 257}, 1);
    check(d, 2, 4, 128, 128, {700}, 0, -8.0f);            // strong decay: e^{b} underflows within a chunk
    check(d, 2, 4, 128, 128, {300, 9}, 0, -0.05f, true);  // nearly parallel keys, β ≈ 1, slow decay
    check(d, 2, 4, 128, 128, {300, 77, 1, 129}, 1);        // continuation over two calls
    check(d, 1, 2, 64, 64, {1000}, 1);
    check(d, 2, 4, 128, 128, {500, 3, 260}, 2);           // through gated_delta_rule's dispatch
    check(d, 2, 4, 128, 128, {100, 40}, 3);               // the dispatch without a workspace
    for (int rep = 0; rep < 4; ++rep) {                   // random ragged batches of 1-4 sequences
      std::vector<int> lens(randint(1, 4));
      for (int& n : lens) n = randint(1, 400);
      check(d, 2, 4, rep % 2 ? 64 : 128, rep % 2 ? 64 : 128, lens, rep % 3 == 2 ? 1 : 0);
    }
  }
  if (g_bench) bench_gdn_chunked();
}
