// moe_permute_by_slot (ops/cuda/moe_permute.h), the device form of ops::moe_permute, against a host counting sort
// with the CPU reference's order: pairs by (expert, slot, token); expert offsets; LoRA segments per (expert, slot ≥ 0)
// over the compacted adapter pairs. The device lists E·slots segments: the non-empty ones first (they must be the
// reference's, row for row), then empty ones with a valid group, so that the first min(E·slots, n) segments hold
// every adapter row (the bound the engine launches the expert LoRA kernels with).
#include <algorithm>
#include <string>
#include <vector>

#include "check_util.h"
#include "ops/cuda/moe_permute.h"

namespace hc = hylora::cuda;
using namespace chk;

namespace {

struct Case {
  int64_t T, k, E, slots;
  double base_share;  // tokens without an adapter
};

void run(const Case& c) {
  const int64_t n = c.T * c.k, S1 = c.slots + 1, G = c.E * c.slots;
  std::vector<int32_t> ids(n), row_slot(c.T);
  for (int64_t t = 0; t < c.T; ++t) {
    const bool base = c.slots == 0 || std::uniform_real_distribution<double>(0, 1)(g_rng) < c.base_share;
    row_slot[t] = base ? -1 : randint(0, static_cast<int>(c.slots) - 1);
    std::vector<int> pool(c.E);
    for (int e = 0; e < c.E; ++e) pool[e] = e;
    std::shuffle(pool.begin(), pool.end(), g_rng);
    for (int64_t j = 0; j < c.k; ++j) ids[t * c.k + j] = pool[j];  // distinct experts per token
  }
  // Host reference: stable counting sort by key.
  std::vector<std::vector<int32_t>> bucket(c.E * S1);
  for (int64_t p = 0; p < n; ++p) bucket[ids[p] * S1 + row_slot[p / c.k] + 1].push_back(static_cast<int32_t>(p));
  std::vector<int32_t> pair, offs(c.E + 1), first(c.E * S1);
  for (int64_t b = 0; b < c.E * S1; ++b) {
    if (b % S1 == 0) offs[b / S1] = static_cast<int32_t>(pair.size());
    first[b] = static_cast<int32_t>(pair.size());
    pair.insert(pair.end(), bucket[b].begin(), bucket[b].end());
  }
  offs[c.E] = static_cast<int32_t>(n);
  std::vector<std::vector<int32_t>> ref_rows;  // sorted rows of each non-empty (expert, slot ≥ 0) segment, in order
  std::vector<int32_t> ref_group;
  for (int64_t e = 0; e < c.E; ++e)
    for (int64_t s = 0; s < c.slots; ++s) {
      const auto& bk = bucket[e * S1 + s + 1];
      if (bk.empty()) continue;
      std::vector<int32_t> rows;
      for (size_t i = 0; i < bk.size(); ++i) rows.push_back(first[e * S1 + s + 1] + static_cast<int32_t>(i));
      ref_rows.push_back(rows);
      ref_group.push_back(static_cast<int32_t>(s * c.E + e));
    }

  Buf dids = up_raw(ids), dslot = up_raw(row_slot), dpair(std::max<int64_t>(n, 1) * 4), doffs((c.E + 1) * 4),
      dperm(std::max<int64_t>(n, 1) * 4), dindptr((G + 1) * 4), dgroup(std::max<int64_t>(G, 1) * 4);
  const size_t wsb = hc::moe_permute_by_slot_workspace_bytes(n, c.E, c.slots);
  Buf ws(wsb);
  CK(hc::moe_permute_by_slot(dids.as<int32_t>(), n, c.k, dslot.as<int32_t>(), c.E, c.slots, dpair.as<int32_t>(),
                             doffs.as<int32_t>(), dperm.as<int32_t>(), dindptr.as<int32_t>(), dgroup.as<int32_t>(),
                             ws.p, wsb, nullptr));
  CK(cudaDeviceSynchronize());
  const std::string name = "moe_permute_by_slot T=" + std::to_string(c.T) + " k=" + std::to_string(c.k) +
                           " E=" + std::to_string(c.E) + " slots=" + std::to_string(c.slots);
  expect(name + " pairs", down_raw<int32_t>(dpair, n) == pair);
  expect(name + " expert offsets", down_raw<int32_t>(doffs, c.E + 1) == offs);
  if (c.slots == 0) return;
  const auto indptr = down_raw<int32_t>(dindptr, G + 1), group = down_raw<int32_t>(dgroup, G);
  const auto perm = down_raw<int32_t>(dperm, std::max<int64_t>(n, 1));
  std::vector<std::vector<int32_t>> got_rows;
  std::vector<int32_t> got_group;
  bool monotone = indptr[0] == 0;
  for (int64_t g = 0; g < G; ++g) {
    monotone &= indptr[g + 1] >= indptr[g];
    if (indptr[g + 1] == indptr[g]) continue;
    got_rows.emplace_back(perm.begin() + indptr[g], perm.begin() + indptr[g + 1]);
    got_group.push_back(group[g]);
  }
  expect(name + " LoRA segments (rows, groups)", monotone && got_rows == ref_rows && got_group == ref_group,
         "segments " + std::to_string(got_rows.size()) + " vs " + std::to_string(ref_rows.size()));
  // Non-empty segments form a prefix, every row is inside the first min(G, n), and the empty tail has valid groups.
  const int64_t nne = static_cast<int64_t>(ref_rows.size()), bound = std::min<int64_t>(G, n);
  bool prefix = nne <= bound;
  for (int64_t g = 0; g < G; ++g) {
    const bool ne = indptr[g + 1] > indptr[g];
    prefix &= ne == (g < nne);
    prefix &= group[g] >= 0 && group[g] < G;
  }
  prefix &= indptr[bound] == indptr[G];
  expect(name + " LoRA segments non-empty first, within min(E*slots, n)", prefix,
         std::to_string(nne) + " non-empty, bound " + std::to_string(bound));
}

}  // namespace

void check_moe_permute() {
  const Case cases[] = {
      {1, 8, 256, 8, 0.0},     // one decode row with an adapter
      {64, 8, 256, 8, 0.3},    // decode batch, adapters and base rows mixed
      {437, 6, 128, 4, 0.5},   // a prefill chunk past a tile
      {33, 4, 16, 3, 1.0},     // adapters possible, every row base
      {50, 8, 64, 0, 0.0},     // no adapter slots
      {5, 22, 512, 8, 0.2},    // Nemotron-3-Super routing: 512 experts, top-22
      {40, 6, 1500, 2, 0.5},   // more experts than segments_kernel's block: its scan carries over chunks
  };
  for (const Case& c : cases) run(c);
}
