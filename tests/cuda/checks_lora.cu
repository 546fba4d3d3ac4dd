// Checks of the multi-LoRA shrink/expand (lora.md §3-4): ragged segments with base rows mixed in, empty segments,
// more segments than a tile, 1..4+ slices with different output sizes, ranks 1..max_r with rank < max_r, both
// shrink and both expand paths (the run's path is used for both), decode batches 1 / 3 / 64 / 65, unaligned
// (scalar) shapes, `in` not a multiple of the SGMV K chunk, partial row / column tiles, rank metadata given or not,
// embedding LoRA. With --bench: LoRA timings (bench_lora).
#include "ops/cuda/lora.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace hc = hylora::cuda;

namespace {
struct Scenario {
  const char* name;
  int64_t P;                        // physical rows
  std::vector<int> seg_sizes;       // rows per segment (0 = empty)
  std::vector<int64_t> out_sizes;   // per slice
  int64_t in, max_r, slots;
};

void run(const Scenario& sc, DType d, hc::LoraPath path, bool pass_rank) {
  const int n = static_cast<int>(sc.out_sizes.size());
  const int64_t G = sc.seg_sizes.size();
  int64_t T_lora = 0;
  for (int s : sc.seg_sizes) T_lora += s;
  if (T_lora > sc.P) std::abort();
  // physical rows of the LoRA tokens: a random subset, the rest are base rows
  std::vector<int32_t> phys(sc.P);
  for (int64_t i = 0; i < sc.P; ++i) phys[i] = static_cast<int32_t>(i);
  std::shuffle(phys.begin(), phys.end(), g_rng);
  std::vector<int32_t> perm(phys.begin(), phys.begin() + T_lora);
  std::vector<int32_t> indptr(G + 1, 0), seg_slot(G);
  for (int64_t g = 0; g < G; ++g) {
    indptr[g + 1] = indptr[g] + sc.seg_sizes[g];
    seg_slot[g] = randint(0, static_cast<int>(sc.slots - 1));
  }
  // ranks: 1..max_r, at least one == max_r and one < max_r
  std::vector<int32_t> rank(sc.slots * n);
  for (auto& r : rank) r = randint(1, static_cast<int>(sc.max_r));
  rank[0] = static_cast<int32_t>(sc.max_r);
  if (rank.size() > 1) rank[1] = std::max<int32_t>(1, static_cast<int32_t>(sc.max_r / 2 - 1));
  int64_t total_out = 0;
  std::vector<int64_t> off(n);
  for (int k = 0; k < n; ++k) {
    off[k] = total_out;
    total_out += sc.out_sizes[k];
  }
  // 16-byte aligned x and y rows when in % 8 == 0 (vector / cp.async paths), unaligned otherwise (scalar paths)
  const int64_t ldx = sc.in + (sc.in % 8 == 0 ? 8 : 5), ldy = total_out + (sc.in % 8 == 0 ? 8 : 7);
  auto x = randn(sc.P * ldx, 1.0f, d), y0 = randn(sc.P * ldy, 1.0f, d);
  std::vector<std::vector<float>> A(n), B(n);
  std::vector<Buf> dA, dB;
  hc::LoraSlices sl;
  sl.n = n;
  for (int k = 0; k < n; ++k) {
    A[k] = randn(sc.slots * sc.max_r * sc.in, 0.05f, d);
    B[k] = randn(sc.slots * sc.out_sizes[k] * sc.max_r, 0.1f, d);
    for (int64_t s = 0; s < sc.slots; ++s) {  // zero past the rank (the pool's contract)
      const int r = rank[s * n + k];
      for (int64_t rr = r; rr < sc.max_r; ++rr)
        for (int64_t j = 0; j < sc.in; ++j) A[k][(s * sc.max_r + rr) * sc.in + j] = 0.0f;
      for (int64_t o = 0; o < sc.out_sizes[k]; ++o)
        for (int64_t rr = r; rr < sc.max_r; ++rr) B[k][(s * sc.out_sizes[k] + o) * sc.max_r + rr] = 0.0f;
    }
    dA.push_back(up(A[k], d));
    dB.push_back(up(B[k], d));
    sl.A[k] = dA.back().p;
    sl.B[k] = dB.back().p;
    sl.out_off[k] = off[k];
    sl.out_size[k] = sc.out_sizes[k];
  }
  Buf dx = up(x, d), dy = up(y0, d), dperm = up_raw(perm), dind = up_raw(indptr), dslot = up_raw(seg_slot),
      drank = up_raw(rank), ds(std::max<int64_t>(1, T_lora * n * sc.max_r) * 4);
  CK(cudaMemset(ds.p, 0xff, ds.bytes));  // NaN garbage: the shrink must write everything
  hc::LoraSegments seg{dperm.as<int32_t>(), T_lora, dind.as<int32_t>(), dslot.as<int32_t>(), G,
                       pass_rank ? drank.as<int32_t>() : nullptr};
  CK(hc::lora_shrink(d, dx.p, ldx, sc.in, sl, sc.max_r, seg, ds.as<float>(), path, nullptr));
  CK(hc::lora_expand(d, ds.as<float>(), sl, sc.max_r, seg, dy.p, ldy, nullptr, path));  // same path for expand
  auto s_got = down(ds, T_lora * n * sc.max_r, DType::f32);
  auto y_got = down(dy, sc.P * ldy, d);
  // reference
  std::vector<double> s_ref(T_lora * n * sc.max_r, 0.0);
  std::vector<double> y_ref(y0.begin(), y0.end());
  for (int64_t g = 0; g < G; ++g) {
    const int slot = seg_slot[g];
    for (int32_t i = indptr[g]; i < indptr[g + 1]; ++i) {
      const int64_t row = perm[i];
      for (int k = 0; k < n; ++k) {
        for (int64_t r = 0; r < sc.max_r; ++r) {
          double a = 0;
          for (int64_t j = 0; j < sc.in; ++j) a += (double)x[row * ldx + j] * A[k][(slot * sc.max_r + r) * sc.in + j];
          s_ref[(i * n + k) * sc.max_r + r] = a;
        }
        for (int64_t o = 0; o < sc.out_sizes[k]; ++o) {
          double a = 0;
          for (int64_t r = 0; r < sc.max_r; ++r)
            a += s_ref[(i * n + k) * sc.max_r + r] * B[k][(slot * sc.out_sizes[k] + o) * sc.max_r + r];
          y_ref[row * ldy + off[k] + o] += a;
        }
      }
    }
  }
  std::vector<bool> is_lora(sc.P, false);
  for (auto r : perm) is_lora[r] = true;
  bool untouched = true;
  for (int64_t r = 0; r < sc.P; ++r)
    for (int64_t c = 0; c < ldy; ++c)
      if ((!is_lora[r] || c >= total_out) && y_got[r * ldy + c] != y0[r * ldy + c]) untouched = false;
  std::vector<float> yg;
  std::vector<double> yr;
  for (int64_t r = 0; r < sc.P; ++r)
    if (is_lora[r])
      for (int64_t c = 0; c < total_out; ++c) {
        yg.push_back(y_got[r * ldy + c]);
        yr.push_back(y_ref[r * ldy + c]);
      }
  char name[160];
  std::snprintf(name, sizeof name, "lora %s T=%ld G=%ld slices=%d in=%ld max_r=%ld %s%s", sc.name, (long)T_lora,
                (long)G, n, (long)sc.in, (long)sc.max_r,
                path == hc::LoraPath::kSgmv ? "sgmv" : path == hc::LoraPath::kDecode ? "decode" : "auto",
                pass_rank ? "" : " no-rank");
  compare(std::string(name) + " shrink", d, s_got, s_ref, 2e-5, 2e-5);
  if (!yg.empty()) compare(std::string(name) + " expand", d, yg, yr, 2e-5, 1.6e-2);
  expect(std::string(name) + " base rows/pad untouched", untouched);
}

void run_embedding(DType d) {
  const int64_t P = g_small ? 20 : 300, vocab = g_small ? 500 : 151936, max_r = 32, slots = 4, out = g_small ? 64 : 2560;
  std::vector<int> sizes = g_small ? std::vector<int>{3, 0, 5} : std::vector<int>{40, 0, 100, 1, 77};
  int64_t T_lora = 0;
  for (int s : sizes) T_lora += s;
  std::vector<int32_t> phys(P), ids(P);
  for (int64_t i = 0; i < P; ++i) {
    phys[i] = static_cast<int32_t>(i);
    ids[i] = randint(0, static_cast<int>(vocab - 1));
  }
  std::shuffle(phys.begin(), phys.end(), g_rng);
  std::vector<int32_t> perm(phys.begin(), phys.begin() + T_lora), indptr(sizes.size() + 1, 0), seg_slot(sizes.size());
  for (size_t g = 0; g < sizes.size(); ++g) {
    indptr[g + 1] = indptr[g] + sizes[g];
    seg_slot[g] = randint(0, static_cast<int>(slots - 1));
  }
  std::vector<int32_t> rank(slots);
  for (auto& r : rank) r = randint(1, static_cast<int>(max_r - 1));
  auto A = randn(slots * max_r * vocab, 1.0f, d), B = randn(slots * out * max_r, 0.1f, d), y0 = randn(P * out, 1.0f, d);
  for (int64_t s = 0; s < slots; ++s)
    for (int64_t r = rank[s]; r < max_r; ++r) {
      for (int64_t v = 0; v < vocab; ++v) A[(s * max_r + r) * vocab + v] = 0.0f;
      for (int64_t o = 0; o < out; ++o) B[(s * out + o) * max_r + r] = 0.0f;
    }
  Buf dA = up(A, d), dB = up(B, d), dy = up(y0, d), dids = up_raw(ids), dperm = up_raw(perm), dind = up_raw(indptr),
      dslot = up_raw(seg_slot), drank = up_raw(rank), ds(T_lora * max_r * 4);
  hc::LoraSegments seg{dperm.as<int32_t>(), T_lora, dind.as<int32_t>(), dslot.as<int32_t>(),
                       static_cast<int64_t>(sizes.size()), drank.as<int32_t>()};
  hc::LoraSlices sl;
  sl.n = 1;
  sl.B[0] = dB.p;
  sl.out_size[0] = out;
  CK(hc::lora_embedding_shrink(d, dids.as<int32_t>(), dA.p, vocab, max_r, seg, ds.as<float>(), nullptr));
  CK(hc::lora_expand(d, ds.as<float>(), sl, max_r, seg, dy.p, out, nullptr));
  auto got = down(dy, P * out, d);
  std::vector<double> ref(y0.begin(), y0.end());
  for (size_t g = 0; g < sizes.size(); ++g)
    for (int32_t i = indptr[g]; i < indptr[g + 1]; ++i)
      for (int64_t o = 0; o < out; ++o) {
        double a = 0;
        for (int64_t r = 0; r < max_r; ++r)
          a += (double)A[(seg_slot[g] * max_r + r) * vocab + ids[perm[i]]] * B[(seg_slot[g] * out + o) * max_r + r];
        ref[perm[i] * out + o] += a;
      }
  compare("lora embedding vocab=" + std::to_string(vocab) + " max_r=32", d, got, ref, 2e-5, 1.6e-2);
}
}  // namespace

// LoRA timings at Qwen3.5-4B-like shapes: in 4096, 3 slices 4096/1024/1024 (q/k/v-like), 8 slots, x / A / B / y of
// the dtype (fp32: the engine's LoRA in both --dtype modes), both paths where they compete. `hylora_cuda_checks
// --only lora --bench`; the same function linked against another lora.cu times that one (old vs new).
void bench_lora() {
  struct Cfg {
    DType d;
    int64_t T, G, r;
    hc::LoraPath path;
  };
  const auto S = hc::LoraPath::kSgmv, D = hc::LoraPath::kDecode;
  std::vector<Cfg> cfgs;
  for (DType d : {DType::bf16, DType::f32}) {
    cfgs.push_back({d, 64, 8, 16, D});
    cfgs.push_back({d, 64, 8, 16, S});
    cfgs.push_back({d, 8192, 1, 64, S});
    cfgs.push_back({d, 8192, 8, 16, S});
  }
  // the kAuto crossover: both paths at 16..256 rows per segment
  for (int64_t T : {128L, 256L, 512L, 1024L, 2048L})
    for (auto p : {D, S}) cfgs.push_back({DType::f32, T, 8, 16, p});
  for (int64_t T : {64L, 256L, 1024L, 8192L})
    for (auto p : {D, S}) cfgs.push_back({DType::f32, T, 1, 64, p});
  const int64_t in = 4096, slots = 8, ldy = 6144;
  const std::vector<int64_t> outs = {4096, 1024, 1024};
  for (const Cfg& c : cfgs) {
    const size_t es = hc::dtype_size(c.d);
    std::vector<int32_t> perm(c.T), ind(c.G + 1), slot(c.G), rank(slots * 3, static_cast<int32_t>(c.r));
    for (int64_t i = 0; i < c.T; ++i) perm[i] = static_cast<int32_t>(i);
    for (int64_t g = 0; g <= c.G; ++g) ind[g] = static_cast<int32_t>(g * c.T / c.G);
    for (int64_t g = 0; g < c.G; ++g) slot[g] = static_cast<int32_t>(g);
    Buf x(c.T * in * es), y(c.T * ldy * es), s(c.T * 3 * c.r * 4), dp = up_raw(perm), di = up_raw(ind),
        ds = up_raw(slot), dr = up_raw(rank);
    std::vector<Buf> ab;
    hc::LoraSlices sl;
    sl.n = 3;
    int64_t off = 0;
    for (int k = 0; k < 3; ++k) {
      ab.emplace_back(slots * c.r * in * es);
      sl.A[k] = ab.back().p;
      ab.emplace_back(slots * outs[k] * c.r * es);
      sl.B[k] = ab.back().p;
      sl.out_off[k] = off;
      sl.out_size[k] = outs[k];
      off += outs[k];
    }
    // small nonzero values (bytes 0x3c: 0.0115 in fp32 and in bf16), so y stays finite over the repetitions
    for (Buf* b : {&x, &y}) CK(cudaMemset(b->p, 0x3c, b->bytes));
    for (Buf& b : ab) CK(cudaMemset(b.p, 0x3c, b.bytes));
    hc::LoraSegments seg{dp.as<int32_t>(), c.T, di.as<int32_t>(), ds.as<int32_t>(), c.G, dr.as<int32_t>()};
    const double ms_s =
        time_ms([&] { CK(hc::lora_shrink(c.d, x.p, in, in, sl, c.r, seg, s.as<float>(), c.path, nullptr)); });
    const double ms_e =
        time_ms([&] { CK(hc::lora_expand(c.d, s.as<float>(), sl, c.r, seg, y.p, ldy, nullptr, c.path)); });
    std::printf("TIME lora %s T=%ld G=%ld r=%ld in=4096 slices 4096/1024/1024 %s: shrink %.4f ms, expand %.4f ms\n",
                dname(c.d), (long)c.T, (long)c.G, (long)c.r, c.path == S ? "sgmv" : "decode", ms_s, ms_e);
  }
}

void check_lora() {
  std::vector<Scenario> scs;
  if (g_small) {
    scs = {{"prefill", 60, {20, 0, 17, 3}, {96, 32, 32}, 72, 16, 3},
           {"decode", 12, {1, 1, 1, 1, 1, 1, 1, 1}, {64, 8}, 40, 8, 4},
           {"prefill-unaligned", 50, {30, 9}, {40, 12}, 30, 6, 2}};  // scalar copies of x, A, s, B and y
  } else {
    scs = {{"prefill-1slice", 700, {450, 0, 33, 100}, {1024}, 1024, 64, 4},
           {"prefill-3slices", 650, {17, 0, 500, 1, 60}, {512, 128, 128}, 640, 16, 3},
           {"prefill-4slices-r128", 520, {0, 200, 300, 0}, {256, 96, 320, 64}, 512, 128, 5},
           // in not a multiple of the SGMV K chunk, partial row tiles (130 = 64 + 64 + 2, 65), max_r < a rank group,
           // a slice of 264 columns (a partial 128-column expand tile)
           {"prefill-partial-k", 400, {130, 0, 65, 64, 1}, {264, 72}, 1000, 48, 3},
           {"prefill-unaligned", 300, {130, 70}, {200, 50}, 333, 30, 3},  // scalar copies (in, ld, max_r % 4 != 0)
           {"gdn-5slices", 300, {100, 50, 7, 120}, {384, 128, 128, 16, 16}, 256, 32, 4},
           {"many-segments", 1600, {}, {192, 64}, 320, 16, 50},
           {"decode-32", 48, std::vector<int>(32, 1), {512, 128, 128}, 512, 64, 32},
           {"decode-1", 4, {1}, {2560}, 2560, 16, 8},
           {"decode-3", 5, {1, 0, 2}, {512, 128, 128}, 512, 32, 4},
           {"decode-64x8adapters", 64, std::vector<int>(8, 8), {2560}, 2560, 16, 8},
           {"decode-65", 70, {9, 0, 8, 8, 8, 8, 8, 8, 8, 0}, {1024, 256, 256}, 2560, 64, 9},
           {"decode-unaligned", 10, {1, 2, 3}, {130}, 300, 6, 3},  // scalar shrink (in, ld) and expand (max_r)
           {"decode-many-segments", 120, {}, {200, 72}, 256, 8, 12},
           {"decode-uneven", 64, {1, 2, 0, 1, 3, 1, 1, 0, 1, 1, 2, 1}, {200, 40}, 300, 24, 8}};
    auto named = [&](const char* name) -> Scenario& {
      for (auto& sc : scs)
        if (std::string(sc.name) == name) return sc;
      std::abort();
    };
    // 60 segments of 0..25 rows: more segments than rows in a tile, tiles of many segments in one launch
    for (int g = 0; g < 60; ++g) named("many-segments").seg_sizes.push_back(randint(0, 25));
    for (int g = 0; g < 40; ++g) named("decode-many-segments").seg_sizes.push_back(randint(0, 3));  // some empty
  }
  for (DType d : {DType::f32, DType::bf16}) {
    for (const auto& sc : scs) {
      run(sc, d, hc::LoraPath::kSgmv, true);
      run(sc, d, hc::LoraPath::kDecode, true);
    }
    run(scs[1], d, hc::LoraPath::kAuto, false);
    run(scs.back(), d, hc::LoraPath::kAuto, false);
    run_embedding(d);
  }
  if (g_bench) bench_lora();
}
