// Reading a rank's slices straight from safetensors (docs/multi_gpu.md §6.1): WeightLoader::get_block and
// experts_block give exactly the whole tensor cut by cut_blocks (rows, column runs, experts; float32 and bf16; fused
// and per-expert experts), convert only the kept elements (bytes_read), and leave every expert's tensors counted
// as used.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include <unistd.h>

#include "core/error.h"
#include "io/safetensors_writer.h"
#include "io/weight_loader.h"

namespace hylora {
namespace {

namespace fs = std::filesystem;

Tensor random_tensor(Shape shape, std::mt19937& g) {
  Tensor t = Tensor::empty(std::move(shape));
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = n(g);
  return t;
}

void expect_equal(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.f32()[i], b.f32()[i]) << "element " << i;
}

class BlockReading : public ::testing::TestWithParam<DType> {};

TEST_P(BlockReading, BlocksEqualTheWholeTensorCutAndOnlyTheyAreRead) {
  const DType dtype = GetParam();
  const int64_t elem = dtype == DType::F32 ? 4 : 2;
  const fs::path dir = fs::temp_directory_path() / ("hylora_block_reading_" + std::to_string(::getpid()) + "_" +
                                                    std::to_string(static_cast<int>(dtype)));
  fs::create_directories(dir);
  std::mt19937 g(11);
  const int64_t E = 4, part_rows = 6, cols = 10;
  std::map<std::string, Tensor> tensors;
  tensors["w"] = random_tensor({9, cols}, g);
  tensors["conv"] = random_tensor({8, 1, 4}, g);  // stored [C, 1, K], asked for as [C, K]
  tensors["fused.gate_up"] = random_tensor({E, 2 * part_rows, cols}, g);
  for (int64_t e = 0; e < E; ++e)
    for (const char* p : {"gate_proj", "up_proj"})
      tensors["split." + std::to_string(e) + "." + p + ".weight"] = random_tensor({part_rows, cols}, g);
  write_safetensors((dir / "model.safetensors").string(), tensors, dtype);

  WeightLoader whole(Checkpoint::open_dir(dir.string()), [](const std::string& n) { return n; });
  WeightLoader part(Checkpoint::open_dir(dir.string()), [](const std::string& n) { return n; });

  // Rows (a column-parallel rank: two parts at their own offsets) and column runs (a row-parallel rank).
  const std::vector<Span> rows{{1, 2}, {5, 3}}, col_runs{{0, 3}, {7, 2}};
  expect_equal(part.get_block("w", {9, cols}, 9, cols, rows, {}), cut_blocks(whole.get("w", {9, cols}), {}, rows, {}));
  int64_t expect_bytes = 5 * cols * elem;
  EXPECT_EQ(part.bytes_read(), expect_bytes);
  expect_equal(part.get_block("w", {9, cols}, 9, cols, {}, col_runs),
               cut_blocks(whole.get("w", {9, cols}), {}, {}, col_runs));
  expect_bytes += 9 * 5 * elem;
  EXPECT_EQ(part.bytes_read(), expect_bytes);
  expect_equal(part.get_block("conv", {8, 4}, 8, 4, {{2, 4}}, {}),
               cut_blocks(whole.get("conv", {8, 4}), {}, {{2, 4}}, {}));
  expect_bytes += 4 * 4 * elem;
  EXPECT_EQ(part.bytes_read(), expect_bytes);

  // Experts 1..2, inside each the second half of gate and of up (a moe_tp rank), fused and per-expert alike.
  const Shape full{E, 2 * part_rows, cols};
  const Span experts{1, 2};
  const std::vector<Span> halves{{3, 3}, {part_rows + 3, 3}};
  const Tensor want = cut_blocks(whole.experts("fused", "gate_up", {"gate_proj", "up_proj"}, full), {experts}, halves, {});
  expect_equal(part.experts_block("fused", "gate_up", {"gate_proj", "up_proj"}, full, experts, halves, {}), want);
  expect_bytes += 2 * 6 * cols * elem;
  EXPECT_EQ(part.bytes_read(), expect_bytes);
  const Tensor got = part.experts_block("split", "gate_up", {"gate_proj", "up_proj"}, full, experts, halves, {});
  expect_equal(got, cut_blocks(whole.experts("split", "gate_up", {"gate_proj", "up_proj"}, full), {experts}, halves, {}));
  expect_bytes += 2 * 6 * cols * elem;
  EXPECT_EQ(part.bytes_read(), expect_bytes);
  EXPECT_EQ(whole.bytes_read(), (9 * cols * 2 + 8 * 4 + 2 * E * 2 * part_rows * cols) * elem);
  // Experts 0 and 3 were never converted, but they are this checkpoint's tensors, not extra ones.
  EXPECT_NO_THROW(part.require_all_used("toy"));

  // A block outside the tensor is an internal error, never a read past it.
  EXPECT_THROW(part.get_block("w", {9, cols}, 9, cols, {{8, 2}}, {}), Error);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(StoredAs, BlockReading, ::testing::Values(DType::F32, DType::BF16),
                         [](const ::testing::TestParamInfo<DType>& i) { return i.param == DType::F32 ? "F32" : "BF16"; });

}  // namespace
}  // namespace hylora
