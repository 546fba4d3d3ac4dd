// Hostile input (issue 11): every parser of outside data refuses what is too big, too deep or inconsistent with one
// clear message naming the limit, before allocating from it; in `hylora score` one bad line fails alone.
#include <gtest/gtest.h>

#include "test_support.h"

#include <sys/resource.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/json_limits.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "io/weight_loader.h"
#include "lora/adapter_loader.h"
#include "models/model.h"
#include "models/qwen3_5_config.h"

using namespace hylora;
namespace fs = std::filesystem;
using json = nlohmann::json;
using hylora::test_support::error_of;
using hylora::test_support::temp_dir;

namespace {

const std::string kFixtures = HYLORA_FIXTURES_DIR;
const std::string kQwenModel = kFixtures + "/qwen3_5_causal_bf16/model";
const std::string kQwenAdapters = kFixtures + "/qwen3_5_causal_lora/adapters";

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

std::string deep(int n) { return std::string(n, '[') + std::string(n, ']'); }

// A safetensors file from a raw header text and data bytes.
void write_raw_safetensors(const fs::path& p, const std::string& header, const std::string& data,
                           uint64_t header_len_override = 0) {
  std::ofstream out(p, std::ios::binary);
  uint64_t n = header_len_override ? header_len_override : header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header << data;
}

std::string st_error(const std::string& header, const std::string& data, uint64_t len_override = 0) {
  auto dir = temp_dir("st");
  write_raw_safetensors(dir / "x.safetensors", header, data, len_override);
  return error_of([&] { Checkpoint::open_file((dir / "x.safetensors").string()); });
}

// Copies a directory (fixtures are read-only inputs).
fs::path copy_dir(const std::string& from, const std::string& name) {
  auto dir = temp_dir(name);
  fs::copy(from, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  return dir;
}

nlohmann::ordered_json read_ojson(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::ordered_json::parse(in);
}
void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::string run(const std::string& cmd, int& status) { return hylora::test_support::run_command(cmd, status); }

// Runs `hylora score` on `input`; stdout (and stderr when asked).
std::string score(const std::string& input, const std::string& args, int& status, bool with_stderr = false) {
  fs::path in = temp_dir("score_in") / "in.jsonl";
  write_text(in, input);
  return run(std::string(HYLORA_BINARY) + " score " + args + " < " + in.string() +
                 (with_stderr ? " 2>&1" : " 2>/dev/null"),
             status);
}

std::vector<json> lines_of(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) v.push_back(json::parse(line));  // throws (fails the test) on "nan" or invalid UTF-8
  return v;
}

}  // namespace

// ---- the shared bounded JSON helper ----

TEST(JsonLimits, DepthAndSizeAreRefusedNamingTheLimit) {
  const JsonLimits lim{1000, 8};
  EXPECT_TRUE(has(error_of([&] { parse_json_bounded(deep(9), lim, "req"); }), "nesting depth is over the limit of 8"));
  EXPECT_EQ(error_of([&] { parse_json_bounded(deep(8), lim, "req"); }), "(no error)");
  // Brackets inside strings (and escaped quotes) are text, not nesting.
  EXPECT_EQ(error_of([&] { parse_json_bounded(R"({"a": "[[[[[[[[[[\"[[[[[[[["})", lim, "req"); }), "(no error)");
  const std::string msg = error_of([&] { parse_json_bounded(std::string(1001, ' '), lim, "req"); });
  EXPECT_TRUE(has(msg, "req: 1001 bytes is over the JSON size limit of 1000 bytes")) << msg;
  EXPECT_TRUE(has(error_of([&] { parse_json_bounded("{\"a\": 1, \"a\": 2}", JsonLimits{1000, 8, true}, "h"); }),
                  "\"a\" appears twice"));
}

TEST(JsonLimits, DeepConfigJsonIsRefusedNotACrash) {
  auto dir = copy_dir(kQwenModel, "deep_config");
  auto cfg = read_ojson(dir / "config.json");
  write_text(dir / "config.json", cfg.dump().substr(0, cfg.dump().size() - 1) + ", \"x\": " + deep(100000) + "}");
  const std::string msg = error_of([&] { load_model(dir.string()); });
  EXPECT_TRUE(has(msg, "nesting depth is over the limit of 64")) << msg;
}

// ---- config values ----

TEST(ConfigLimits, NonIntegerZeroNegativeAndAbsurdSizesAreRefused) {
  auto base = read_ojson(kQwenModel + "/config.json");
  auto err = [&](const char* key, const json& v) {
    json j = json::parse(base.dump());
    j[key] = v;
    return error_of([&] { qwen3_5::parse_config(j, "config.json"); });
  };
  EXPECT_TRUE(has(err("hidden_size", 64.5), "\"hidden_size\" must be an integer")) << err("hidden_size", 64.5);
  EXPECT_TRUE(has(err("hidden_size", 1e15), "must be an integer"));
  EXPECT_TRUE(has(err("hidden_size", int64_t{1} << 40), "must be an integer in [")) << err("hidden_size", 1ll << 40);
  EXPECT_TRUE(has(err("vocab_size", uint64_t{18446744073709551615u}), "must be an integer in ["));
  EXPECT_TRUE(has(err("hidden_size", 0), "must be positive"));
  EXPECT_TRUE(has(err("num_attention_heads", -4), "positive"));
  EXPECT_TRUE(has(err("rms_norm_eps", "small"), "wrong type"));
}

TEST(ConfigLimits, AbsurdSizeFailsBeforeAllocating) {
  auto dir = copy_dir(kQwenModel, "absurd_config");
  auto cfg = read_ojson(dir / "config.json");
  cfg["intermediate_size"] = int64_t{1} << 30;  // used to reach an allocation of 512 GiB
  write_text(dir / "config.json", cfg.dump());
  const std::string msg = error_of([&] { load_model(dir.string()); });
  EXPECT_TRUE(has(msg, "\"intermediate_size\" must be an integer in [-16777216, 16777216], found 1073741824")) << msg;
}

// ---- safetensors ----

TEST(SafetensorsLimits, OverlapGapTrailingDuplicateAndMismatchAreRefused) {
  const std::string f4(16, '\0');
  EXPECT_TRUE(has(st_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                           f4.substr(0, 8)),
                  "overlaps"));
  EXPECT_TRUE(has(st_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                           f4.substr(0, 12)),
                  "gap"));
  EXPECT_TRUE(has(st_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f4.substr(0, 8)),
                  "trailing"));
  EXPECT_TRUE(has(st_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           f4.substr(0, 8)),
                  "appears twice"));
  EXPECT_TRUE(has(st_error(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", f4.substr(0, 8)),
                  "has 8 bytes, expected 4 for dtype F32 and shape [1]"));
  EXPECT_TRUE(has(st_error(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f4.substr(0, 8)),
                  "has 8 bytes, expected 12"));
  EXPECT_TRUE(has(st_error(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", f4.substr(0, 8)),
                  "truncated safetensors file"));
  EXPECT_TRUE(has(st_error(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", f4.substr(0, 4)),
                  "integers >= 0"));
  // Shapes whose product overflows 64 bits are refused, not multiplied out.
  EXPECT_TRUE(has(st_error(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],)"
                           R"("data_offsets":[0,4]}})",
                           f4.substr(0, 4)),
                  "expected more than 2^64"));
  EXPECT_TRUE(has(st_error(R"({})", "", uint64_t{1} << 40), "is over the limit of 100000000 bytes"));
  EXPECT_TRUE(has(st_error(R"({"a":)" + deep(1000) + "}", ""), "nesting depth"));
}

TEST(SafetensorsLimits, MisalignedOffsetsAreReadExactly) {
  // safetensors does not align tensors: an f16 of one element puts the f64 after it at byte 2, the f32 at byte 10,
  // and an odd header length misaligns the whole data section. Values must be read through memcpy (a typed pointer
  // here is undefined behaviour: the sanitizer stage's UBSan alignment check fails this test on such a read).
  std::string data(2 + 8 + 4, '\0');
  const uint16_t h = 0x3c00;  // f16 1.0
  const double d = -2.5;
  const float f = 0.125f;
  std::memcpy(&data[0], &h, 2);
  std::memcpy(&data[2], &d, 8);
  std::memcpy(&data[10], &f, 4);
  std::string header = R"({"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},)"
                       R"("d":{"dtype":"F64","shape":[1],"data_offsets":[2,10]},)"
                       R"("f":{"dtype":"F32","shape":[1],"data_offsets":[10,14]}})";
  if (header.size() % 2 == 0) header += ' ';
  auto dir = temp_dir("misaligned");
  write_raw_safetensors(dir / "x.safetensors", header, data);
  const Checkpoint ck = Checkpoint::open_file((dir / "x.safetensors").string());
  EXPECT_EQ(tensor_to_f32(ck.info("h")).f32()[0], 1.0f);
  EXPECT_EQ(tensor_to_f32(ck.info("d")).f32()[0], -2.5f);
  EXPECT_EQ(tensor_to_f32(ck.info("f")).f32()[0], 0.125f);
}

TEST(SafetensorsLimits, NonStringWeightMapValueNamesTheTensor) {
  auto dir = temp_dir("idx");
  write_text(dir / "model.safetensors.index.json", R"({"weight_map": {"model.norm.weight": 5}})");
  const std::string msg = error_of([&] { Checkpoint::open_dir(dir.string()); });
  EXPECT_TRUE(has(msg, "weight_map[\"model.norm.weight\"] must be a shard file name, found 5")) << msg;
}

TEST(SafetensorsLimits, ShapeWithAnExtraUnitDimensionIsTheWrongTensor) {
  auto dir = temp_dir("squeeze");
  Tensor t = Tensor::zeros({64, 1});
  write_safetensors((dir / "model.safetensors").string(), {{"w", t}, {"conv", Tensor::zeros({8, 1, 4})}});
  WeightLoader w(Checkpoint::open_dir(dir.string()), [](const std::string& s) { return s; });
  const std::string msg = error_of([&] { w.get("w", {64}); });
  EXPECT_TRUE(has(msg, "has shape [64, 1], expected [64]")) << msg;
  EXPECT_EQ(error_of([&] { w.get("conv", {8, 4}); }), "(no error)");  // conv weights: [C, 1, K] as [C, K]
}

// ---- adapters ----

namespace {
std::string adapter_error(const std::function<void(nlohmann::ordered_json&)>& edit,
                          const std::string& adapter = "full_r16") {
  static auto model = load_model(kQwenModel);
  static lora::TargetIndex index(*model);
  auto dir = copy_dir(kQwenAdapters + "/" + adapter, "adapter");
  auto cfg = read_ojson(dir / "adapter_config.json");
  edit(cfg);
  write_text(dir / "adapter_config.json", cfg.dump(2));
  return error_of([&] { lora::load_adapter("a", dir.string(), index, 64); });
}
}  // namespace

TEST(AdapterLimits, TargetModulesThatSelectNothingAreRefused) {
  EXPECT_EQ(adapter_error([](auto&) {}), "(no error)");
  std::string msg = adapter_error([](auto& c) { c["target_modules"] = json::array(); });
  EXPECT_TRUE(has(msg, "target_modules is empty")) << msg;
  msg = adapter_error([](auto& c) { c["target_modules"] = {"not_a_module"}; });
  EXPECT_TRUE(has(msg, "is not named by target_modules [\"not_a_module\"]")) << msg;
  msg = adapter_error([](auto& c) { c["target_modules"] = "nothing\\.matches"; });
  EXPECT_TRUE(has(msg, "does not match target_modules")) << msg;
  // A regex that selects everything is PEFT's other spelling.
  EXPECT_EQ(adapter_error([](auto& c) { c["target_modules"] = ".*"; }), "(no error)");
}

TEST(AdapterLimits, LayersToTransformIsHonouredOrRefused) {
  // PEFT puts LoRA only on the listed layers: weights stored for another layer are refused, not served.
  std::string msg = adapter_error([](auto& c) { c["layers_to_transform"] = {0}; }, "mixed_r4");
  EXPECT_TRUE(has(msg, "is in layer 1, which layers_to_transform does not list")) << msg;
  EXPECT_EQ(adapter_error([](auto& c) { c["layers_to_transform"] = {0, 1, 2, 3}; }, "mixed_r4"), "(no error)");
  EXPECT_EQ(adapter_error([](auto& c) { c["layers_to_transform"] = 2; }, "mixed_r4").find("layer 0,") != std::string::npos,
            true);
  // As in PEFT, modules outside the layer stack (embed_tokens, lm_head) have no layer index: not selected.
  msg = adapter_error([](auto& c) { c["layers_to_transform"] = {0, 1, 2, 3}; });
  EXPECT_TRUE(has(msg, "has no layer index")) << msg;
  msg = adapter_error([](auto& c) { c["layers_to_transform"] = "x"; });
  EXPECT_TRUE(has(msg, "layers_to_transform must be a layer index")) << msg;
}

TEST(AdapterLimits, ScalingThatOverflowsFloat32IsRefusedAtLoad) {
  std::string msg = adapter_error([](auto& c) { c["lora_alpha"] = 1e308; });
  EXPECT_TRUE(has(msg, "is not finite in float32")) << msg;
  msg = adapter_error([](auto& c) { c["alpha_pattern"]["down_proj"] = 1e300; });
  EXPECT_TRUE(has(msg, "is not finite in float32")) << msg;
}

// ---- hylora score: one bad line fails alone ----

TEST(ScoreHostile, DeepInvalidUtf8AndTooLongLinesFailAlone) {
  int status = 0;
  const std::string good = "{\"id\": \"g\", \"input_ids\": [1, 2, 3]}\n";
  const std::string input = good + "{\"id\":\"x\",\"input_ids\":" + deep(1000) + ",\"lora\":null}\n" +
                            "{\"id\":\"b\xff\",\"input_ids\":[1,2]}\n" + "{\"id\":\"long\",\"input_ids\":[" +
                            std::string(5000, ' ') + "1,2]}\n" + good;
  const std::string out = score(input, "--model " + kQwenModel + " --max-line-bytes 4096", status);
  EXPECT_EQ(status, 1);
  auto r = lines_of(out);
  ASSERT_EQ(r.size(), 5u) << out;
  EXPECT_EQ(r[0]["logprobs"].size(), 2u);
  EXPECT_TRUE(has(r[1]["error"], "nesting depth is over the limit of 64")) << r[1];
  EXPECT_TRUE(has(r[2]["error"], "line 3")) << r[2];
  EXPECT_TRUE(has(r[3]["error"], "over the line limit of 4096 bytes")) << r[3];
  EXPECT_EQ(r[4]["logprobs"].size(), 2u);
}

TEST(ScoreHostile, FiftyMegabyteLineFailsAloneUnderTheDefaultLimit) {
  int status = 0;
  const std::string big = "{\"id\": \"big\", \"input_ids\": [" + std::string(50 << 20, ' ') + "1]}\n";
  const std::string out = score(big + "{\"id\": \"ok\", \"input_ids\": [1, 2]}\n", "--model " + kQwenModel, status);
  EXPECT_EQ(status, 1);
  auto r = lines_of(out);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(has(r[0]["error"], "line 1: 52428831 bytes is over the line limit of 16777216 bytes")) << r[0];
  EXPECT_EQ(r[1]["logprobs"].size(), 1u);
}

TEST(ScoreHostile, PromptLongerThanMaxPositionsFailsAlone) {
  auto dir = copy_dir(kQwenModel, "short_model");
  auto cfg = read_ojson(dir / "config.json");
  cfg["max_position_embeddings"] = 4;
  write_text(dir / "config.json", cfg.dump());
  int status = 0;
  const std::string out =
      score("{\"id\": \"long\", \"input_ids\": [1, 2, 3, 4, 5]}\n{\"id\": \"ok\", \"input_ids\": [1, 2, 3, 4]}\n",
            "--model " + dir.string(), status);
  EXPECT_EQ(status, 1);
  auto r = lines_of(out);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(has(r[0]["error"], "5 tokens is over the model's max_position_embeddings (4)")) << r[0];
  EXPECT_EQ(r[1]["logprobs"].size(), 3u);
}

TEST(ScoreHostile, WindowsKeepOrderAndResults) {
  std::string input;
  for (int i = 0; i < 7; ++i)
    input += "{\"id\": \"r" + std::to_string(i) + "\", \"input_ids\": [" + std::to_string(i + 1) + ", 5, 9]}\n";
  int s1 = 0, s2 = 0;
  const std::string all = score(input, "--model " + kQwenModel, s1);
  const std::string windowed = score(input, "--model " + kQwenModel + " --window-requests 2 --window-tokens 4", s2);
  EXPECT_EQ(s1, 0);
  EXPECT_EQ(s2, 0);
  // Same results in the same order; values agree to float32 rounding (batch composition changes BLAS blocking).
  auto a = lines_of(all), w = lines_of(windowed);
  ASSERT_EQ(a.size(), 7u);
  ASSERT_EQ(w.size(), 7u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["id"], w[i]["id"]);
    ASSERT_EQ(a[i]["logprobs"].size(), w[i]["logprobs"].size());
    for (size_t k = 0; k < a[i]["logprobs"].size(); ++k)
      EXPECT_NEAR(a[i]["logprobs"][k].get<double>(), w[i]["logprobs"][k].get<double>(), 1e-5);
  }
}

// Largest resident set of any finished child process so far (KiB).
long children_max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return u.ru_maxrss;
}

TEST(ScoreHostile, MemoryDoesNotGrowWithTheNumberOfRequests) {
  // Requests are read, scored and written one window at a time: 10x the requests, the same peak memory (the whole
  // input used to be held with a cache per request, ~27 KB each: 200k three-token requests took 5.5 GB).
  auto requests = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "{\"id\": \"r" + std::to_string(i) + "\", \"input_ids\": [1, 2, 3]}\n";
    return s;
  };
  int status = 0;
  score(requests(400), "--model " + kQwenModel + " --window-requests 64 >/dev/null", status);
  ASSERT_EQ(status, 0);
  const long small = children_max_rss_kib();
  score(requests(4000), "--model " + kQwenModel + " --window-requests 64 >/dev/null", status);
  ASSERT_EQ(status, 0);
  const long large = children_max_rss_kib();
  EXPECT_LT(large, small + 48 * 1024) << "peak RSS " << small << " KiB for 400 requests, " << large
                                       << " KiB for 4000";
}

TEST(ScoreHostile, WriteErrorsExitNonZero) {
  int status = 0;
  fs::path in = temp_dir("full_in") / "in.jsonl";
  write_text(in, "{\"id\": \"a\", \"input_ids\": [1, 2, 3]}\n");
  // stderr joins the pipe first, then stdout goes to the full device.
  const std::string err = run(std::string(HYLORA_BINARY) + " score --model " + kQwenModel + " < " + in.string() +
                                  " 2>&1 >/dev/full",
                              status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(has(err, "cannot write the output")) << err;
}

TEST(ScoreHostile, NonFiniteLogprobsAreAnErrorNotNan) {
  // bf16-max weights pass every load check (they are finite) but overflow float32 in the forward pass.
  auto dir = copy_dir(kQwenModel, "bf16max");
  const fs::path st = dir / "model.safetensors";
  std::string bytes;
  {
    std::ifstream in(st, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, n));
  const auto& e = header.at("model.norm.weight");
  ASSERT_EQ(e.at("dtype"), "BF16");
  for (uint64_t i = 8 + n + e.at("data_offsets")[0].get<uint64_t>(); i < 8 + n + e.at("data_offsets")[1].get<uint64_t>();
       ++i)
    bytes[i] = '\x7f';  // 0x7f7f: the largest finite bf16
  write_text(st, bytes);
  int status = 0;
  const std::string out = score("{\"id\": \"a\", \"input_ids\": [1, 2, 3]}\n{\"id\": \"b\", \"input_ids\": [1, 2]}\n",
                                "--model " + dir.string(), status);
  EXPECT_FALSE(has(out, "nan")) << out;
  auto r = lines_of(out);  // every line parses as JSON
  ASSERT_EQ(r.size(), 2u) << out;
  EXPECT_TRUE(has(r[0]["error"], "request a: log-probability 0 is not finite (NaN)")) << r[0];
  EXPECT_TRUE(has(r[1]["error"], "is not finite")) << r[1];
  EXPECT_EQ(status, 1);
}

TEST(ScoreHostile, OptionErrorsAreClearMessages) {
  int status = 0;
  std::string err = score("", "--model " + kQwenModel + " --max-lora-rank 0", status, true);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(has(err, "--max-lora-rank: Value 0 not in range 1 to 4096")) << err;
  EXPECT_LT(err.size(), 300u) << err;
  err = score("", "--model " + kQwenModel + " --max-loras-per-batch 1000000000", status, true);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(has(err, "not in range 1 to 1024")) << err;
  EXPECT_FALSE(has(err, "bad_alloc")) << err;
  err = score("", "--model " + kQwenModel + "/config.json", status, true);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(has(err, "is a file, expected a model directory")) << err;
}
