#include "lora/lora_batch.h"

#include <map>

namespace hylora::lora {

namespace {
// Groups the indices i of `slot_of_index` (with slot >= 0) by slot.
template <typename SlotOf>
ops::LoraSegments group(int64_t n, SlotOf slot_of_index) {
  std::map<int32_t, std::vector<int64_t>> by_slot;
  for (int64_t i = 0; i < n; ++i)
    if (int32_t s = slot_of_index(i); s >= 0) by_slot[s].push_back(i);
  ops::LoraSegments seg;
  seg.seg_begin.push_back(0);
  for (auto& [slot, idx] : by_slot) {
    seg.perm.insert(seg.perm.end(), idx.begin(), idx.end());
    seg.seg_begin.push_back(static_cast<int64_t>(seg.perm.size()));
    seg.seg_slot.push_back(slot);
  }
  return seg;
}
}  // namespace

LoraBatch make_lora_batch(std::vector<int32_t> row_slot) {
  LoraBatch b;
  b.row_slot = std::move(row_slot);
  b.segments = group(b.num_rows(), [&](int64_t i) { return b.row_slot[i]; });
  return b;
}

ops::LoraSegments segments_of_rows(const std::vector<int32_t>& row_slot, const std::vector<int64_t>& rows) {
  return group(static_cast<int64_t>(rows.size()), [&](int64_t i) { return row_slot.at(rows[i]); });
}

}  // namespace hylora::lora
