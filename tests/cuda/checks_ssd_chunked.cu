// Checks of the chunked Mamba2 scan (ssd_chunked.h) against the sequential recurrence in double precision: lengths
// 1 .. 1000+ (around and not multiple of the chunk of 64), ragged varlen batches with a padding sequence (slot −1:
// outputs and state untouched), N 16 / 64 / 128, hd with a partial 32-channel tile, G < nh, strong decays, and
// continuation: every sequence split over two calls (state carried in the pool) must match one call.
#include <algorithm>

#include "ops/cuda/recurrent.h"
#include "ops/cuda/ssd_chunked.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
struct Problem {
  int64_t nh, hd, G, N, T, ldx, lddt, ldB, ldy;
  std::vector<int> lens;
  std::vector<int32_t> cu, slot;
  std::vector<float> x, dt, BC, A, D, dtb, st0;  // BC: B then C in each row (ld ldB)
  float dt_min = 0.001f;
};

// One call over rows [cu[s] + from[s], cu[s] + to[s]) of every sequence (gathered), outputs scattered into out.
void run_call(DType d, const Problem& P, const std::vector<int>& from, const std::vector<int>& to, Buf& dst,
              std::vector<float>& out, bool via_dispatch) {
  const int64_t S = P.lens.size();
  const VarlenPart part(P.cu, from, to);
  const int64_t T = part.T();
  Buf dx = up(part.gather(P.x, P.ldx), d), ddt = up(part.gather(P.dt, P.lddt), d),
      dBC = up(part.gather(P.BC, P.ldB), d), dy = up(part.gather(out, P.ldy), d), dA = up(P.A, DType::f32),
      dD = up(P.D, DType::f32), ddtb = up(P.dtb, DType::f32), dcu = up_raw(part.cu), dslot = up_raw(P.slot);
  const void* Cp = static_cast<const char*>(dBC.p) + P.G * P.N * hc::dtype_size(d);
  const bool was_on = hc::ssd_chunked_enabled();
  hc::set_ssd_chunked_enabled(true);  // off by default (ssd_chunked.cu); the dispatch check turns it on
  if (via_dispatch)
    CK(hc::ssm_scan(d, dx.p, P.ldx, ddt.p, P.lddt, dBC.p, P.ldB, Cp, P.ldB, dA.as<float>(), dD.as<float>(),
                    ddtb.as<float>(), P.dt_min, dy.p, P.ldy, dst.as<float>(), dslot.as<int32_t>(), dcu.as<int32_t>(), S,
                    T, P.nh, P.hd, P.G, P.N, nullptr));
  else
    CK(hc::ssm_scan_chunked(d, dx.p, P.ldx, ddt.p, P.lddt, dBC.p, P.ldB, Cp, P.ldB, dA.as<float>(), dD.as<float>(),
                            ddtb.as<float>(), P.dt_min, dy.p, P.ldy, dst.as<float>(), dslot.as<int32_t>(),
                            dcu.as<int32_t>(), S, T, P.nh, P.hd, P.G, P.N, nullptr));
  hc::set_ssd_chunked_enabled(was_on);
  auto yg = down(dy, T * P.ldy, d);
  part.scatter(yg, P.ldy, out);
}

double softplus20(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

// Sequential reference (as checks_recurrent.cu).
void reference(const Problem& P, std::vector<double>& yref, std::vector<double>& sref) {
  const int64_t S = P.lens.size(), nh = P.nh, hd = P.hd, G = P.G, N = P.N;
  yref.assign(P.T * P.ldy, 0.0);
  sref.assign(P.st0.begin(), P.st0.end());
  for (int64_t s = 0; s < S; ++s) {
    if (P.slot[s] < 0) continue;
    for (int64_t h = 0; h < nh; ++h) {
      const int64_t gi = h / (nh / G);
      double* Sm = sref.data() + (P.slot[s] * nh + h) * hd * N;
      for (int64_t t = P.cu[s]; t < P.cu[s + 1]; ++t) {
        const double delta = std::max(softplus20((double)P.dt[t * P.lddt + h] + P.dtb[h]), (double)P.dt_min);
        const double dec = std::exp(delta * P.A[h]);
        for (int64_t p = 0; p < hd; ++p) {
          const double dx = delta * P.x[t * P.ldx + h * hd + p];
          double acc = 0;
          for (int64_t n = 0; n < N; ++n) {
            Sm[p * N + n] = dec * Sm[p * N + n] + dx * P.BC[t * P.ldB + gi * N + n];
            acc += Sm[p * N + n] * P.BC[t * P.ldB + G * N + gi * N + n];
          }
          yref[t * P.ldy + h * hd + p] = acc + (double)P.D[h] * P.x[t * P.ldx + h * hd + p];
        }
      }
    }
  }
}

// mode 0: one direct call; 1: two direct calls (every sequence split at a random row); 2: one call through ssm_scan.
// amin: most negative A (stronger decay).
void check(DType d, int64_t nh, int64_t hd, int64_t G, int64_t N, const std::vector<int>& lens, int mode,
           float amin = -4.0f) {
  Problem P{nh, hd, G, N};
  P.lens = lens;
  const int64_t S = lens.size(), slots = S + 1;
  make_varlen_batch(lens, slots, P.cu, P.slot);
  P.T = P.cu[S];
  P.ldx = nh * hd + 3, P.lddt = nh + 1, P.ldB = 2 * G * N + 5, P.ldy = nh * hd + 1;
  const int64_t T = P.T;
  P.x = randn(T * P.ldx, 1.0f, d), P.dt = randn(T * P.lddt, 1.0f, d), P.BC = randn(T * P.ldB, 1.0f, d);
  P.A = randu(nh, amin, -0.5f, DType::f32), P.D = randn(nh, 1.0f, DType::f32), P.dtb = randn(nh, 0.5f, DType::f32);
  P.st0 = randn(slots * nh * hd * N, 0.2f, DType::f32);
  const std::vector<float> y0 = randn(T * P.ldy, 1.0f, d);
  std::vector<float> out = y0;
  Buf dst = up(P.st0, DType::f32);
  std::vector<int> zero(S, 0), mid(S);
  for (int64_t s = 0; s < S; ++s) mid[s] = randint(0, lens[s]);
  if (mode == 1) {
    run_call(d, P, zero, mid, dst, out, false);
    run_call(d, P, mid, lens, dst, out, false);
  } else {
    run_call(d, P, zero, lens, dst, out, mode == 2);
  }
  auto sg = down(dst, P.st0.size(), DType::f32);
  std::vector<double> yref, sref;
  reference(P, yref, sref);
  std::vector<float> yg2, sg2;
  std::vector<double> yr2, sr2;
  const bool untouched = split_varlen_results(out, y0, yref, P.ldy, nh * hd, sg, P.st0, sref, nh * hd * N, P.cu,
                                              P.slot, yg2, yr2, sg2, sr2);
  const std::string ls = lens_str(lens);
  char name[200];
  std::snprintf(name, sizeof name, "ssd_chunked %s nh=%ld hd=%ld G=%ld N=%ld amin=%g lens=%s",
                mode == 1 ? "2calls" : mode == 2 ? "dispatch" : "1call", (long)nh, (long)hd, (long)G, (long)N, amin,
                ls.c_str());
  compare(std::string(name) + " y", d, yg2, yr2, 5e-5, 1.6e-2);
  compare(std::string(name) + " state", d, sg2, sr2, 5e-5, 1e-3);
  expect(std::string(name) + " padding untouched", untouched);
}
}  // namespace

void check_ssd_chunked() {
  for (DType d : {DType::f32, DType::bf16}) {
    if (g_small) {
      check(d, 4, 40, 2, 32, {1, 70, 3}, 0);
      check(d, 2, 32, 1, 16, {65, 2}, 1);
      continue;
    }
    for (int n : {1, 2, 5, 63, 64, 65, 128, 129, 300, 1000, 1100}) check(d, 4, 64, 2, 128, {n}, 0);
    check(d, 8, 64, 2, 128, {1, 64, 65, 700, 17}, 0);  // ragged, padding sequence in the middle
    check(d, 6, 40, 3, 64, {63, 128, 129}, 0);         // partial 32-channel tile
    check(d, 2, 96, 1, 16, {200, 7}, 0);
    check(d, 4, 64, 2, 128, {700}, 0, -30.0f);         // strong decay: e^{b} underflows within a chunk
    check(d, 4, 64, 2, 128, {300, 77, 1, 129}, 1);     // continuation over two calls
    check(d, 2, 32, 1, 64, {1000}, 1);
    check(d, 8, 64, 2, 128, {500, 3, 260}, 2);         // through ssm_scan's dispatch
    for (int rep = 0; rep < 4; ++rep) {                // random ragged batches of 1-4 sequences
      std::vector<int> lens(randint(1, 4));
      for (int& n : lens) n = randint(1, 400);
      check(d, 4, rep % 2 ? 40 : 64, 2, rep % 2 ? 64 : 128, lens, rep % 3 == 2 ? 1 : 0);
    }
  }
}
