// Bucket padding of decode steps for CUDA-graph replay (batch/graph_padding.h): the padded layout depends only on the
// GraphShape, live rows are copied unchanged, padding follows the kernels' conventions.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "batch/graph_padding.h"
#include "core/error.h"

namespace hylora {
namespace {

struct SeqSpec {
  int32_t token, position, state_slot, adapter_slot;
  std::vector<int32_t> pages;
};

// A decode step as the executor lays it out: one new token per sequence, logits of every row, adapter rows grouped
// by slot (ascending).
StepBatch decode_batch(const std::vector<SeqSpec>& seqs, int64_t page_size) {
  StepBatch b;
  const int64_t S = static_cast<int64_t>(seqs.size());
  int64_t P = 1;
  for (const SeqSpec& s : seqs) P = std::max<int64_t>(P, static_cast<int64_t>(s.pages.size()));
  std::vector<int32_t> slots;
  for (const SeqSpec& s : seqs)
    if (s.adapter_slot >= 0 && std::find(slots.begin(), slots.end(), s.adapter_slot) == slots.end())
      slots.push_back(s.adapter_slot);
  std::sort(slots.begin(), slots.end());
  std::vector<int32_t> perm;
  std::vector<int32_t> indptr{0};
  for (int32_t sl : slots) {
    for (int64_t i = 0; i < S; ++i)
      if (seqs[i].adapter_slot == sl) perm.push_back(static_cast<int32_t>(i));
    indptr.push_back(static_cast<int32_t>(perm.size()));
  }
  const int64_t G = static_cast<int64_t>(slots.size()), L = static_cast<int64_t>(perm.size());
  b.num_tokens = b.padded_tokens = b.num_seqs = b.padded_seqs = b.num_logit_rows = S;
  b.max_pages = P;
  b.page_size = page_size;
  b.num_lora_rows = b.num_logit_lora_rows = L;
  b.num_lora_segments = b.num_logit_lora_segments = G;
  int64_t off = 0;
  auto field = [&](StepBatch::Field& f, int64_t n) {
    f.offset = off;
    f.size = n;
    off += n;
  };
  field(b.token_ids, S); field(b.positions, S); field(b.kv_slots, S); field(b.row_slot, S);
  field(b.cu_seqlens, S + 1); field(b.context_lens, S); field(b.state_slots, S); field(b.page_table, S * P);
  field(b.logit_rows, S); field(b.lora_perm, L); field(b.lora_indptr, G + 1); field(b.lora_slot, G);
  field(b.logit_lora_perm, L); field(b.logit_lora_indptr, G + 1); field(b.logit_lora_slot, G);
  b.data.assign(off, -1);
  b.at(b.cu_seqlens)[0] = 0;
  for (int64_t i = 0; i < S; ++i) {
    const SeqSpec& s = seqs[i];
    b.at(b.token_ids)[i] = s.token;
    b.at(b.positions)[i] = s.position;
    b.at(b.kv_slots)[i] = s.pages[s.position / page_size] * static_cast<int32_t>(page_size) +
                          s.position % static_cast<int32_t>(page_size);
    b.at(b.row_slot)[i] = s.adapter_slot;
    b.at(b.cu_seqlens)[i + 1] = static_cast<int32_t>(i + 1);
    b.at(b.context_lens)[i] = s.position + 1;
    b.at(b.state_slots)[i] = s.state_slot;
    for (size_t p = 0; p < s.pages.size(); ++p) b.at(b.page_table)[i * P + p] = s.pages[p];
    b.at(b.logit_rows)[i] = static_cast<int32_t>(i);
  }
  for (const auto* f : {&b.lora_perm, &b.logit_lora_perm}) std::copy(perm.begin(), perm.end(), b.at(*f));
  for (const auto* f : {&b.lora_indptr, &b.logit_lora_indptr}) std::copy(indptr.begin(), indptr.end(), b.at(*f));
  for (const auto* f : {&b.lora_slot, &b.logit_lora_slot}) std::copy(slots.begin(), slots.end(), b.at(*f));
  return b;
}

std::vector<int32_t> field(const StepBatch& b, const StepBatch::Field& f) {
  return std::vector<int32_t>(b.at(f), b.at(f) + f.size);
}

TEST(GraphPadding, PaddingSegmentsAddNoAdapterSlot) {
  // One sequence on adapter slot 3, padded to 4 segments: the empty ones sit on slot 3 too, so the padded step's
  // slots (which decide the skipped LoRA targets, GraphShape::lora_targets) are the step's own.
  const StepBatch b = decode_batch({{11, 5, 7, 3, {3, 9}}}, 4);
  const StepBatch p = pad_to_graph_shape(b, graph_shape_of(b, 4));
  EXPECT_EQ(field(p, p.lora_slot), (std::vector<int32_t>{3, 3, 3, 3}));
  EXPECT_EQ(field(p, p.logit_lora_slot), (std::vector<int32_t>{3, 3, 3, 3}));
  EXPECT_EQ(host_views(p).lora.group_host, (std::vector<int32_t>{3, 3, 3, 3}));
}

TEST(GraphPadding, PadsADecodeStepToItsBucket) {
  // 3 sequences over 4-token pages: adapter slot 2, base, adapter slot 0.
  const StepBatch b = decode_batch({{11, 5, 7, 2, {3, 9}}, {12, 0, 1, -1, {4}}, {13, 9, 0, 0, {5, 6, 8}}}, 4);
  ASSERT_TRUE(is_decode_step(b));
  const GraphShape shape = graph_shape_of(b, 4);
  EXPECT_EQ(shape, (GraphShape{4, 4, 4, {}}));
  const StepBatch p = pad_to_graph_shape(b, shape);
  EXPECT_EQ(p.num_tokens, 4);
  EXPECT_EQ(p.num_seqs, 4);
  EXPECT_EQ(p.num_logit_rows, 4);
  EXPECT_EQ(p.max_pages, 4);
  EXPECT_EQ(field(p, p.token_ids), (std::vector<int32_t>{11, 12, 13, 0}));
  EXPECT_EQ(field(p, p.positions), (std::vector<int32_t>{5, 0, 9, 0}));
  EXPECT_EQ(field(p, p.kv_slots), (std::vector<int32_t>{37, 16, 33, -1}));
  EXPECT_EQ(field(p, p.row_slot), (std::vector<int32_t>{2, -1, 0, -1}));
  EXPECT_EQ(field(p, p.cu_seqlens), (std::vector<int32_t>{0, 1, 2, 3, 3}));  // the padding sequence owns no row
  EXPECT_EQ(field(p, p.context_lens), (std::vector<int32_t>{6, 1, 10, 0}));
  EXPECT_EQ(field(p, p.state_slots), (std::vector<int32_t>{7, 1, 0, -1}));
  EXPECT_EQ(field(p, p.page_table),
            (std::vector<int32_t>{3, 9, -1, -1, 4, -1, -1, -1, 5, 6, 8, -1, -1, -1, -1, -1}));
  EXPECT_EQ(field(p, p.logit_rows), (std::vector<int32_t>{0, 1, 2, 3}));
  // Segments: slot 0 (row 2), slot 2 (row 0), then two empty ones on the step's first slot (0 here).
  EXPECT_EQ(p.num_lora_rows, 4);
  EXPECT_EQ(p.num_lora_segments, 4);
  EXPECT_EQ(field(p, p.lora_perm), (std::vector<int32_t>{2, 0, 0, 0}));
  EXPECT_EQ(field(p, p.lora_indptr), (std::vector<int32_t>{0, 1, 2, 2, 2}));
  EXPECT_EQ(field(p, p.lora_slot), (std::vector<int32_t>{0, 2, 0, 0}));
  EXPECT_EQ(field(p, p.logit_lora_perm), field(p, p.lora_perm));
  EXPECT_EQ(field(p, p.logit_lora_indptr), field(p, p.lora_indptr));
  EXPECT_EQ(field(p, p.logit_lora_slot), field(p, p.lora_slot));
  // The views the models read have the bucket's sizes and the host copy of every segment's slot.
  const StepTensors t = host_views(p);
  EXPECT_EQ(t.layout.num_tokens, 4);
  EXPECT_EQ(t.layout.num_seqs, 4);
  EXPECT_EQ(t.lora.num_rows, 4);
  EXPECT_EQ(t.lora.group_host, (std::vector<int32_t>{0, 2, 0, 0}));
  EXPECT_EQ(t.logit_lora.num_segments, 4);
}

TEST(GraphPadding, OneShapeOneLayout) {
  // Different adapter mixes, slots, contexts and live counts in one bucket: the same field offsets and sizes, so one
  // captured graph reads either step's arrays at the same addresses.
  const StepBatch a = decode_batch({{1, 3, 0, 1, {0}}, {2, 7, 1, 3, {1, 2}}, {3, 2, 2, 1, {3}}, {4, 0, 3, -1, {4}},
                                    {5, 4, 4, 0, {5, 6}}}, 4);
  const StepBatch b = decode_batch({{9, 12, 5, 2, {7, 8, 9, 10}}, {8, 1, 6, -1, {11}}}, 4);
  const GraphShape sa = graph_shape_of(a, 4), sb = graph_shape_of(b, 4);
  EXPECT_EQ(sa.rows, 8);
  EXPECT_EQ(sb.rows, 2);
  const GraphShape shape{8, 4, 4, {}};
  const StepBatch pa = pad_to_graph_shape(a, shape), pb = pad_to_graph_shape(b, shape);
  EXPECT_EQ(pa.data.size(), pb.data.size());
  for (auto f : {&StepBatch::token_ids, &StepBatch::kv_slots, &StepBatch::cu_seqlens, &StepBatch::page_table,
                 &StepBatch::logit_rows, &StepBatch::lora_perm, &StepBatch::lora_indptr, &StepBatch::lora_slot,
                 &StepBatch::logit_lora_perm, &StepBatch::logit_lora_indptr, &StepBatch::logit_lora_slot}) {
    EXPECT_EQ((pa.*f).offset, (pb.*f).offset);
    EXPECT_EQ((pa.*f).size, (pb.*f).size);
  }
  EXPECT_EQ(field(pb, pb.lora_indptr), (std::vector<int32_t>{0, 1, 1, 1, 1}));
}

TEST(GraphPadding, ShapeKeys) {
  const StepBatch base = decode_batch({{1, 30, 0, -1, {0, 1, 2, 3, 4, 5, 6, 7}}, {2, 0, 1, -1, {8}}}, 4);
  EXPECT_EQ(graph_shape_of(base, 8), (GraphShape{2, 8, 0, {}}));  // no adapter row: no LoRA kernels in the graph
  const StepBatch lora = decode_batch({{1, 30, 0, 5, {0, 1, 2, 3, 4, 5, 6, 7}}, {2, 0, 1, -1, {8}}}, 4);
  EXPECT_EQ(graph_shape_of(lora, 8), (GraphShape{2, 8, 8, {}}));
  const StepBatch b9 = decode_batch({{1, 32, 0, -1, {0, 1, 2, 3, 4, 5, 6, 7, 9}}}, 4);
  EXPECT_EQ(graph_shape_of(b9, 8), (GraphShape{1, 16, 0, {}}));
  EXPECT_EQ(page_bucket(1), 1);
  EXPECT_EQ(page_bucket(3), 4);
  EXPECT_EQ(page_bucket(64), 64);
  EXPECT_EQ(page_bucket(65), 128);
  EXPECT_EQ(bucket_size(3), 4);
  EXPECT_EQ(bucket_size(9), 16);
  EXPECT_EQ(bucket_size(250), 256);
}

TEST(GraphPadding, PrefillIsNotADecodeStepAndAStepMustFitItsShape) {
  StepBatch b = decode_batch({{1, 3, 0, -1, {0}}, {2, 0, 1, -1, {1}}}, 4);
  EXPECT_THROW(pad_to_graph_shape(b, GraphShape{1, 4, 0, {}}), Error);   // 2 sequences into 1 row
  EXPECT_THROW(pad_to_graph_shape(b, GraphShape{2, 0, 0, {}}), Error);   // pages
  b.at(b.cu_seqlens)[1] = 2;  // sequence 0 with two rows, sequence 1 with none: not a decode step
  EXPECT_FALSE(is_decode_step(b));
  EXPECT_THROW(pad_to_graph_shape(b, GraphShape{2, 4, 0, {}}), Error);
  const StepBatch l = decode_batch({{1, 3, 0, 1, {0}}, {2, 0, 1, 2, {1}}}, 4);
  EXPECT_THROW(pad_to_graph_shape(l, GraphShape{2, 4, 1, {}}), Error);  // 2 segments into 1
}

}  // namespace
}  // namespace hylora
