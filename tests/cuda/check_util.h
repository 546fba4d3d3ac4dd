// Helpers of the CUDA op checks: device buffers, bf16/fp32 upload/download, random inputs rounded to the tested
// dtype (so that the double-precision references see exactly the GPU's inputs), error statistics and the verdict.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ops/cuda/dtype.h"

namespace chk {
using hylora::cuda::DType;

inline bool g_small = false;  // sanitizer runs: smaller shapes
inline bool g_bench = false;  // --bench: a check file may time its own kernels after its checks (with --only NAME,
                              // only that section's checks and timings run; the shared bench() is skipped)
inline int g_pass = 0, g_fail = 0;
inline std::mt19937_64 g_rng(12345);

#define CK(call)                                                                                     \
  do {                                                                                               \
    cudaError_t e_ = (call);                                                                         \
    if (e_ != cudaSuccess) {                                                                         \
      std::printf("CUDA error %s at %s:%d: %s\n", cudaGetErrorString(e_), __FILE__, __LINE__, #call); \
      std::exit(2);                                                                                  \
    }                                                                                                \
  } while (0)

inline const char* dname(DType d) { return d == DType::f32 ? "f32" : "bf16"; }

inline float round_dt(float v, DType d) {
  return d == DType::f32 ? v : __bfloat162float(__float2bfloat16_rn(v));
}

inline std::vector<float> randn(size_t n, float scale, DType d) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = round_dt(nd(g_rng) * scale, d);
  return v;
}
inline std::vector<float> randu(size_t n, float lo, float hi, DType d) {
  std::uniform_real_distribution<float> ud(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = round_dt(ud(g_rng), d);
  return v;
}
inline int randint(int lo, int hi) {  // inclusive
  return std::uniform_int_distribution<int>(lo, hi)(g_rng);
}

struct Buf {
  void* p = nullptr;
  size_t bytes = 0;
  Buf() = default;
  explicit Buf(size_t b) : bytes(b) {
    CK(cudaMalloc(&p, b ? b : 1));
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&& o) noexcept : p(o.p), bytes(o.bytes) { o.p = nullptr; }
  Buf& operator=(Buf&& o) noexcept {
    std::swap(p, o.p);
    std::swap(bytes, o.bytes);
    return *this;
  }
  ~Buf() {
    if (p) cudaFree(p);
  }
  template <typename T>
  T* as() const { return static_cast<T*>(p); }
};

inline Buf up(const std::vector<float>& v, DType d) {
  Buf b(v.size() * hylora::cuda::dtype_size(d));
  if (d == DType::f32) {
    CK(cudaMemcpy(b.p, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  } else {
    std::vector<__nv_bfloat16> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = __float2bfloat16_rn(v[i]);
    CK(cudaMemcpy(b.p, h.data(), v.size() * 2, cudaMemcpyHostToDevice));
  }
  return b;
}
template <typename T>
inline Buf up_raw(const std::vector<T>& v) {
  Buf b(v.size() * sizeof(T));
  if (!v.empty()) CK(cudaMemcpy(b.p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return b;
}
inline std::vector<float> down(const Buf& b, size_t n, DType d) {
  std::vector<float> v(n);
  CK(cudaDeviceSynchronize());
  if (d == DType::f32) {
    CK(cudaMemcpy(v.data(), b.p, n * 4, cudaMemcpyDeviceToHost));
  } else {
    std::vector<__nv_bfloat16> h(n);
    CK(cudaMemcpy(h.data(), b.p, n * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; ++i) v[i] = __bfloat162float(h[i]);
  }
  return v;
}
template <typename T>
inline std::vector<T> down_raw(const Buf& b, size_t n) {
  std::vector<T> v(n);
  CK(cudaDeviceSynchronize());
  if (n) CK(cudaMemcpy(v.data(), b.p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

// Compares got (GPU) with ref (double) over the selected indices (all if idx empty). Tolerance on
// max|Δ| / max|ref| (fp32: tol32, bf16: tol16) and on NMSE = Σ Δ² / Σ ref² (square of the same tolerance).
struct Cmp {
  double max_abs = 0, max_ref = 0, se = 0, sr = 0, max_rel = 0;
  size_t n = 0;
  bool nonfinite = false;
  void add(double g, double r) {
    if (!std::isfinite(g)) nonfinite = true;
    const double d = std::fabs(g - r);
    max_abs = std::max(max_abs, d);
    max_ref = std::max(max_ref, std::fabs(r));
    se += d * d;
    sr += r * r;
    ++n;
  }
  void finish_rel(const std::vector<float>& got, const std::vector<double>& ref) {
    const double floor = 1e-3 * max_ref;
    for (size_t i = 0; i < got.size(); ++i)
      if (std::fabs(ref[i]) > floor) max_rel = std::max(max_rel, std::fabs(got[i] - ref[i]) / std::fabs(ref[i]));
  }
};

inline bool verdict(const std::string& name, DType d, const Cmp& c, double tol32 = 2e-5, double tol16 = 1.6e-2) {
  const double tol = d == DType::f32 ? tol32 : tol16;
  const double nrm = c.max_ref > 0 ? c.max_abs / c.max_ref : c.max_abs;
  const double nmse = c.sr > 0 ? c.se / c.sr : c.se;
  const bool ok = !c.nonfinite && nrm <= tol && nmse <= tol * tol;
  (ok ? g_pass : g_fail)++;
  std::printf("%s %-58s %-4s n=%-9zu max|d|=%.3e max|ref|=%.3e max|d|/max|ref|=%.3e maxrel=%.3e nmse=%.3e\n",
              ok ? "PASS" : "FAIL", name.c_str(), dname(d), c.n, c.max_abs, c.max_ref, nrm, c.max_rel, nmse);
  std::fflush(stdout);
  return ok;
}

inline bool compare(const std::string& name, DType d, const std::vector<float>& got, const std::vector<double>& ref,
                    double tol32 = 2e-5, double tol16 = 1.6e-2) {
  Cmp c;
  for (size_t i = 0; i < got.size(); ++i) c.add(got[i], ref[i]);
  c.finish_rel(got, ref);
  return verdict(name, d, c, tol32, tol16);
}

inline bool expect(const std::string& name, bool ok, const std::string& detail = "") {
  (ok ? g_pass : g_fail)++;
  std::printf("%s %-58s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
  std::fflush(stdout);
  return ok;
}

// Milliseconds per call of f on the default stream: one warm-up call (first-launch costs, lazy module loading, L2
// state), then `reps` calls back to back between two events, so the launch gaps count as the engine would see them.
template <typename F>
double time_ms(F&& f, int reps = 20) {
  f();
  CK(cudaDeviceSynchronize());
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaEventRecord(a));
  for (int i = 0; i < reps; ++i) f();
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  float ms = 0;
  CK(cudaEventElapsedTime(&ms, a, b));
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  return ms / reps;
}

inline double silu(double x) { return x / (1.0 + std::exp(-x)); }

// The paged KV layout of an attention check: sequence s has n_new[s] new rows after prior[s] cached tokens.
// cu [S+1] new-row offsets, ctx [S] = prior + new, pt [S, max_pages] the page table (−1 past a sequence's pages),
// pages handed out in shuffled order from num_pages. max_pages = max(the most pages a sequence needs + extra_cols,
// min_cols) (extra columns stay −1); num_pages = the pages needed + spare_pages (never referenced).
struct PagedLayout {
  std::vector<int32_t> cu, ctx, pt;
  int64_t max_pages = 0, num_pages = 0, max_ctx = 0;
};
inline PagedLayout make_paged_layout(const std::vector<int>& n_new, const std::vector<int>& prior, int64_t page_size,
                                     int64_t extra_cols, int64_t min_cols, int64_t spare_pages) {
  const int64_t S = static_cast<int64_t>(n_new.size());
  PagedLayout L;
  L.cu.assign(S + 1, 0);
  L.ctx.assign(S, 0);
  int64_t most = 0, total = 0;
  for (int64_t s = 0; s < S; ++s) {
    L.cu[s + 1] = L.cu[s] + n_new[s];
    L.ctx[s] = n_new[s] + prior[s];
    L.max_ctx = std::max<int64_t>(L.max_ctx, L.ctx[s]);
    const int64_t np = (L.ctx[s] + page_size - 1) / page_size;
    most = std::max(most, np);
    total += np;
  }
  L.max_pages = std::max(most + extra_cols, min_cols);
  L.num_pages = total + spare_pages;
  std::vector<int32_t> pages(L.num_pages);
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), g_rng);
  L.pt.assign(S * L.max_pages, -1);
  int64_t next = 0;
  for (int64_t s = 0; s < S; ++s)
    for (int64_t i = 0; i < (L.ctx[s] + page_size - 1) / page_size; ++i) L.pt[s * L.max_pages + i] = pages[next++];
  return L;
}

// A varlen batch over a state-slot pool: cu [S+1] row offsets of sequences of lens[s] rows; slot [S] distinct pool
// slots out of `slots` in shuffled order, the middle sequence (S > 1) a padding one (slot −1: its outputs and its
// state must stay untouched).
inline void make_varlen_batch(const std::vector<int>& lens, int64_t slots, std::vector<int32_t>& cu,
                              std::vector<int32_t>& slot) {
  const int64_t S = static_cast<int64_t>(lens.size());
  cu.assign(S + 1, 0);
  for (int64_t s = 0; s < S; ++s) cu[s + 1] = cu[s] + lens[s];
  std::vector<int32_t> perm(slots);
  for (int64_t i = 0; i < slots; ++i) perm[i] = static_cast<int32_t>(i);
  std::shuffle(perm.begin(), perm.end(), g_rng);
  slot.assign(perm.begin(), perm.begin() + S);
  if (S > 1) slot[S / 2] = -1;
}

// A call over part of every sequence of a varlen batch (full layout: rows [full_cu[s], full_cu[s+1]) of sequence s):
// rows [full_cu[s] + from[s], full_cu[s] + to[s]) of each, in order, as a compact batch. cu [S+1]: the part's row
// offsets; rows: their full-layout indices. gather packs a full-layout buffer's rows [*, ld] (at least one row,
// zeros); scatter writes the part's output rows back into the full layout.
struct VarlenPart {
  std::vector<int32_t> cu;
  std::vector<int64_t> rows;
  VarlenPart(const std::vector<int32_t>& full_cu, const std::vector<int>& from, const std::vector<int>& to) {
    const int64_t S = static_cast<int64_t>(from.size());
    cu.assign(S + 1, 0);
    for (int64_t s = 0; s < S; ++s) {
      for (int r = from[s]; r < to[s]; ++r) rows.push_back(full_cu[s] + r);
      cu[s + 1] = static_cast<int32_t>(rows.size());
    }
  }
  int64_t T() const { return static_cast<int64_t>(rows.size()); }
  std::vector<float> gather(const std::vector<float>& src, int64_t ld) const {
    std::vector<float> r(std::max<int64_t>(T(), 1) * ld, 0.0f);
    for (int64_t t = 0; t < T(); ++t) std::copy_n(src.begin() + rows[t] * ld, ld, r.begin() + t * ld);
    return r;
  }
  void scatter(const std::vector<float>& part, int64_t ld, std::vector<float>& full) const {
    for (int64_t t = 0; t < T(); ++t) std::copy_n(part.begin() + t * ld, ld, full.begin() + rows[t] * ld);
  }
};

// Whether the output rows [T, ld] of the padding sequences (slot < 0) kept their values from before the call.
inline bool padding_rows_untouched(const std::vector<float>& got, const std::vector<float>& before,
                                   const std::vector<int32_t>& cu, const std::vector<int32_t>& slot, int64_t ld) {
  bool same = true;
  for (size_t s = 0; s < slot.size(); ++s)
    if (slot[s] < 0)
      for (int64_t e = cu[s] * ld; e < cu[s + 1] * ld; ++e) same &= got[e] == before[e];
  return same;
}

// After a varlen call: output rows [T, ld] (out; before = their values before the call) and the state pool (sg, st0:
// `per_slot` floats a slot). The live sequences' rows (columns < width) and slots go to got / ref for compare();
// everything else (padding rows, columns past width, the padding and unused slots) must have kept its old value
// exactly. Returns whether it did.
inline bool split_varlen_results(const std::vector<float>& out, const std::vector<float>& before,
                                 const std::vector<double>& out_ref, int64_t ld, int64_t width, std::vector<float> sg,
                                 const std::vector<float>& st0, const std::vector<double>& st_ref, int64_t per_slot,
                                 const std::vector<int32_t>& cu, const std::vector<int32_t>& slot,
                                 std::vector<float>& out_got, std::vector<double>& out_want,
                                 std::vector<float>& st_got, std::vector<double>& st_want) {
  bool untouched = true;
  const int64_t S = static_cast<int64_t>(slot.size());
  for (int64_t s = 0; s < S; ++s)
    for (int64_t t = cu[s]; t < cu[s + 1]; ++t)
      for (int64_t c = 0; c < ld; ++c) {
        const int64_t e = t * ld + c;
        if (slot[s] < 0 || c >= width) {
          untouched &= out[e] == before[e];
        } else {
          out_got.push_back(out[e]);
          out_want.push_back(out_ref[e]);
        }
      }
  for (int64_t s = 0; s < S; ++s) {
    if (slot[s] < 0) continue;
    const int64_t b = slot[s] * per_slot;
    for (int64_t e = b; e < b + per_slot; ++e) {
      st_got.push_back(sg[e]);
      st_want.push_back(st_ref[e]);
      sg[e] = st0[e];  // then compare the other slots exactly
    }
  }
  return untouched && std::equal(sg.begin(), sg.end(), st0.begin());
}

// One token of the gated delta rule in double precision, one value head: q̂ = q / √(‖q‖² + 1e-6) / √Dk,
// k̂ = k / √(‖k‖² + 1e-6), α = e^g, u = β (v − α Sᵀk̂), S ← α S + k̂ uᵀ, o = Sᵀq̂. q, k [Dk], v [Dv] as stored;
// S [Dk, Dv] row-major, updated in place; o [Dv].
inline void gated_delta_ref_token(const float* q, const float* k, const float* v, float g, float beta, int64_t Dk,
                                  int64_t Dv, double* S, double* o) {
  std::vector<double> qn(Dk), kn(Dk), u(Dv, 0.0);
  double sq = 0, sk = 0;
  for (int64_t i = 0; i < Dk; ++i) {
    sq += (double)q[i] * q[i];
    sk += (double)k[i] * k[i];
  }
  for (int64_t i = 0; i < Dk; ++i) {
    qn[i] = q[i] / std::sqrt(sq + 1e-6) / std::sqrt((double)Dk);
    kn[i] = k[i] / std::sqrt(sk + 1e-6);
  }
  const double dec = std::exp((double)g), b = beta;
  for (int64_t i = 0; i < Dk; ++i)
    for (int64_t j = 0; j < Dv; ++j) u[j] += S[i * Dv + j] * kn[i];
  for (int64_t j = 0; j < Dv; ++j) u[j] = b * (v[j] - dec * u[j]);
  for (int64_t j = 0; j < Dv; ++j) {
    double acc = 0;
    for (int64_t i = 0; i < Dk; ++i) {
      S[i * Dv + j] = dec * S[i * Dv + j] + kn[i] * u[j];
      acc += qn[i] * S[i * Dv + j];
    }
    o[j] = acc;
  }
}

// Double-precision RoPE of one head row v[0, hd) at position pos, as the kernels define it (angle pos·inv[i] in fp32,
// its cos and sin rounded to fp32, times scaling): the rot dims from off rotate as pairs (off + i, off + i + rot/2),
// or (off + 2i, off + 2i + 1) when interleaved; the output puts pair i at (off + i, off + i + rot/2) either way.
inline std::vector<double> rope_ref_head(const float* v, int64_t hd, float pos, const std::vector<float>& inv,
                                         int64_t rot, int64_t off, bool interleaved, float scaling) {
  std::vector<double> o(v, v + hd);
  const int64_t half = rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float ang = pos * inv[i];
    const double c = static_cast<float>(std::cos(static_cast<double>(ang))) * scaling;
    const double sn = static_cast<float>(std::sin(static_cast<double>(ang))) * scaling;
    const double a = interleaved ? v[off + 2 * i] : v[off + i];
    const double b = interleaved ? v[off + 2 * i + 1] : v[off + i + half];
    o[off + i] = a * c - b * sn;
    o[off + i + half] = b * c + a * sn;
  }
  return o;
}

// Every head of rows [T, ldx] (heads × hd from column 0) after RoPE: the GPU's values (got) and rope_ref_head of the
// inputs x, appended to got_out / ref_out in (row, head, dim) order for compare(). pos [T] of any integer type.
template <typename Pos>
inline void rope_ref_rows(const std::vector<float>& x, const std::vector<float>& got, int64_t ldx, int64_t T,
                          int64_t heads, int64_t hd, const std::vector<Pos>& pos, const std::vector<float>& inv,
                          int64_t rot, int64_t off, bool interleaved, float scaling, std::vector<float>& got_out,
                          std::vector<double>& ref_out) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const auto o = rope_ref_head(x.data() + t * ldx + h * hd, hd, static_cast<float>(pos[t]), inv, rot, off,
                                   interleaved, scaling);
      for (int64_t i = 0; i < hd; ++i) {
        ref_out.push_back(o[i]);
        got_out.push_back(got[t * ldx + h * hd + i]);
      }
    }
}

// "1,20,3": a varlen batch's sequence lengths, for check names.
inline std::string lens_str(const std::vector<int>& lens) {
  std::string s;
  for (size_t i = 0; i < lens.size(); ++i) s += (i ? "," : "") + std::to_string(lens[i]);
  return s;
}

// Double-precision causal attention over a paged KV cache for one query row: token t (q row t, ld ldq) at position pos
// sees cache positions 0..pos, found through its sequence's page-table row pt_row (page size ps). K rows are
// [slot, kw] with KV head h at h·D; V rows [slot, vw] with KV head h at h·v_head (Dv, or D when V is read from the
// latent K rows). out[h·Dv + e] for every query head h (GQA: query head h reads KV head h / (nH / nKV)).
inline void paged_attention_ref_row(const std::vector<float>& q, int64_t ldq, int64_t t, int64_t pos,
                                    const int32_t* pt_row, int64_t ps, const std::vector<float>& kpool, int64_t kw,
                                    const std::vector<float>& vpool, int64_t vw, int64_t v_head, int64_t nH,
                                    int64_t nKV, int64_t D, int64_t Dv, float scale, double* out) {
  std::vector<int64_t> slot(pos + 1);
  for (int64_t j = 0; j <= pos; ++j) slot[j] = static_cast<int64_t>(pt_row[j / ps]) * ps + j % ps;
  const int64_t gs = nH / nKV;
  for (int64_t h = 0; h < nH; ++h) {
    const int64_t kvh = h / gs;
    std::vector<double> sco(pos + 1);
    double mx = -1e300;
    for (int64_t j = 0; j <= pos; ++j) {
      double a = 0;
      for (int64_t e = 0; e < D; ++e) a += static_cast<double>(q[t * ldq + h * D + e]) * kpool[slot[j] * kw + kvh * D + e];
      sco[j] = a * scale;
      mx = std::max(mx, sco[j]);
    }
    double den = 0;
    for (auto& v : sco) den += (v = std::exp(v - mx));
    for (int64_t e = 0; e < Dv; ++e) {
      double a = 0;
      for (int64_t j = 0; j <= pos; ++j) a += sco[j] * vpool[slot[j] * vw + kvh * v_head + e];
      out[h * Dv + e] = a / den;
    }
  }
}

}  // namespace chk
