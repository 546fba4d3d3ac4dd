// Checks of the tensor-parallel index kernels (ops/cuda/tensor_parallel.h) against the host loops the CPU backend
// runs (ops/cpu/tensor_parallel.cpp): vocabulary localisation with ids at every edge of a rank's range, masked row
// zeroing of strided rows with and without a permutation (the LoRA shrink's logical rows), expert routing
// localisation over several expert ranges. Results are integers and copies, so they must match exactly; a shape
// past the kernels' capped grid (65535 blocks of 256) exercises the grid-stride loops. With --bench: timings.
#include <numeric>

#include "ops/cuda/tensor_parallel.h"
#include "tests/cuda/check_util.h"

using namespace chk;
namespace tp = hylora::cuda::tp;

namespace {

std::vector<int32_t> ids_around(int64_t T, int64_t V, int64_t begin, int64_t size) {
  std::vector<int32_t> ids(T);
  for (auto& i : ids) i = randint(0, static_cast<int>(V - 1));
  const int64_t edges[] = {begin - 1, begin, begin + size - 1, begin + size};
  for (int64_t e = 0; e < 4 && e < T; ++e) {
    const int64_t v = edges[e] < 0 ? 0 : (edges[e] >= V ? V - 1 : edges[e]);
    ids[e * (T / 4)] = static_cast<int32_t>(v);
  }
  return ids;
}

void check_vocab() {
  const int64_t V = 151936;
  const std::vector<int64_t> Ts = g_small ? std::vector<int64_t>{5, 64} : std::vector<int64_t>{1, 7, 4096, 70000};
  for (int64_t ranks : {2, 4, 8})
    for (int64_t T : Ts) {
      const int64_t size = V / ranks, r = randint(0, static_cast<int>(ranks - 1)), begin = r * size;
      const auto ids = ids_around(T, V, begin, size);
      Buf di = up_raw(ids), dl(T * sizeof(int32_t)), de(T * sizeof(int32_t));
      CK(tp::localize_vocab_ids(di.as<int32_t>(), T, begin, size, dl.as<int32_t>(), de.as<int32_t>(), nullptr));
      const auto local = down_raw<int32_t>(dl, T), elsewhere = down_raw<int32_t>(de, T);
      int64_t bad = 0, held = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t l = ids[t] - begin;
        const bool mine = l >= 0 && l < size;
        held += mine;
        bad += local[t] != (mine ? l : 0) || elsewhere[t] != (mine ? 0 : 1);
      }
      char name[160];
      std::snprintf(name, sizeof name, "tp::localize_vocab_ids T=%ld rank %ld of %ld (%ld held)", (long)T, (long)r,
                    (long)ranks, (long)held);
      expect(name, bad == 0, std::to_string(bad) + " wrong ids");
    }
}

void check_zero_rows() {
  struct S { int64_t n, w, ld, tokens; bool perm; };
  std::vector<S> shapes = {{1, 1, 1, 1, false},          {37, 2048, 2048, 37, false}, {37, 64, 70, 37, false},
                           {129, 48, 48, 300, true},      {4096, 5000, 5003, 4096, false},
                           {3000, 7, 7, 5000, true}};
  if (g_small) shapes = {{5, 3, 4, 5, false}, {6, 4, 4, 9, true}};
  for (const S& s : shapes) {
    std::vector<int32_t> mask(s.tokens);
    for (auto& m : mask) m = randint(0, 2) == 0;
    mask[0] = 1;
    std::vector<int32_t> perm;
    if (s.perm) {
      std::vector<int32_t> order(s.tokens);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), g_rng);
      perm.assign(order.begin(), order.begin() + s.n);
    }
    const auto x = randn(s.n * s.ld, 1.0f, DType::f32);
    Buf dm = up_raw(mask), dp = up_raw(perm), dx = up_raw(x);
    CK(tp::zero_masked_rows(dm.as<int32_t>(), s.perm ? dp.as<int32_t>() : nullptr, dx.as<float>(), s.n, s.w, s.ld,
                            nullptr));
    const auto got = down_raw<float>(dx, s.n * s.ld);
    int64_t bad = 0, zeroed = 0;
    for (int64_t i = 0; i < s.n; ++i) {
      const bool z = mask[s.perm ? perm[i] : i] != 0;
      zeroed += z;
      for (int64_t j = 0; j < s.ld; ++j) {
        const float want = z && j < s.w ? 0.0f : x[i * s.ld + j];  // columns past w (the ld padding) untouched
        bad += std::memcmp(&got[i * s.ld + j], &want, sizeof(float)) != 0;
      }
    }
    char name[160];
    std::snprintf(name, sizeof name, "tp::zero_masked_rows n=%ld w=%ld ld=%ld perm=%d (%ld rows zeroed)", (long)s.n,
                  (long)s.w, (long)s.ld, s.perm, (long)zeroed);
    expect(name, bad == 0, std::to_string(bad) + " wrong elements");
  }
}

void check_routing() {
  const int64_t E = 128;
  const std::vector<int64_t> Ts = g_small ? std::vector<int64_t>{3, 17} : std::vector<int64_t>{1, 64, 4096, 70000};
  for (int64_t groups : {2, 8, 128})
    for (int64_t T : Ts) {
      const int64_t k = 8, P = T * k, n = E / groups, g = randint(0, static_cast<int>(groups - 1)), e0 = g * n;
      std::vector<int32_t> ids(P);
      for (auto& e : ids) e = randint(0, static_cast<int>(E - 1));
      ids[0] = static_cast<int32_t>(e0);
      if (P > 1) ids[1] = static_cast<int32_t>(e0 + n - 1);
      const auto w = randu(P, 0.01f, 1.0f, DType::f32);
      Buf di = up_raw(ids), dw = up_raw(w), dl(P * sizeof(int32_t)), dlw(P * sizeof(float));
      CK(tp::localize_expert_routing(di.as<int32_t>(), dw.as<float>(), P, e0, n, dl.as<int32_t>(), dlw.as<float>(),
                                     nullptr));
      const auto lid = down_raw<int32_t>(dl, P);
      const auto lw = down_raw<float>(dlw, P);
      int64_t bad = 0, mine_count = 0;
      for (int64_t i = 0; i < P; ++i) {
        const int64_t e = ids[i] - e0;
        const bool mine = e >= 0 && e < n;
        mine_count += mine;
        const float want_w = mine ? w[i] : 0.0f;
        bad += lid[i] != (mine ? e : 0) || std::memcmp(&lw[i], &want_w, sizeof(float)) != 0;
      }
      char name[160];
      std::snprintf(name, sizeof name, "tp::localize_expert_routing T=%ld k=%ld experts [%ld, %ld) (%ld pairs mine)",
                    (long)T, (long)k, (long)e0, (long)(e0 + n), (long)mine_count);
      expect(name, bad == 0, std::to_string(bad) + " wrong pairs");
    }
}

void bench_tp() {
  // One step's index work at a 4096-token prefill: T ids, the [T, H] partial lookup's masked rows, T·k pairs.
  const int64_t T = 4096, H = 4096, k = 8;
  Buf ids = up_raw(ids_around(T, 151936, 0, 75968)), local(T * 4), mask(T * 4), part(T * H * 4), pairs(T * k * 4),
      w(T * k * 4), lid(T * k * 4), lw(T * k * 4);
  CK(cudaMemset(pairs.p, 0, pairs.bytes));
  auto time_us = [](auto&& f) { return time_ms(f, 50) * 1e3; };
  const double tv = time_us([&] {
    CK(tp::localize_vocab_ids(ids.as<int32_t>(), T, 0, 75968, local.as<int32_t>(), mask.as<int32_t>(), nullptr));
  });
  const double tz = time_us(
      [&] { CK(tp::zero_masked_rows(mask.as<int32_t>(), nullptr, part.as<float>(), T, H, H, nullptr)); });
  const double tr = time_us([&] {
    CK(tp::localize_expert_routing(pairs.as<int32_t>(), w.as<float>(), T * k, 0, 16, lid.as<int32_t>(),
                                   lw.as<float>(), nullptr));
  });
  std::printf("TIME tp::localize_vocab_ids T=%ld: %.2f us; tp::zero_masked_rows [%ld, %ld]: %.2f us; "
              "tp::localize_expert_routing %ld pairs: %.2f us\n",
              (long)T, tv, (long)T, (long)H, tz, (long)(T * k), tr);
}

}  // namespace

void check_tensor_parallel() {
  check_vocab();
  check_zero_rows();
  check_routing();
  if (g_bench) bench_tp();
}
