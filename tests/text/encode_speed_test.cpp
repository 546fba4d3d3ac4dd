// Issue requirement: encoding 1 MB of mixed text takes under a second on one core. Measured as CPU time of
// this thread (robust to other tests running in parallel), with a cold word cache.
#include <gtest/gtest.h>

#include <ctime>

#include "test_support.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace hylora::text {
namespace {

using namespace hylora::text::testing;

// 1 MB of mixed text: the corpus lines (English, CJK, Arabic, emoji, code, numbers, whitespace, special
// tokens) repeated with a running number, so that not every word is a cache hit.
std::string mixed_megabyte() {
  std::vector<std::string> texts;
  for (const auto& line : split_lines(read_file(kTestDir + "/tokenizer_corpus.jsonl")))
    texts.push_back(nlohmann::json::parse(to_valid_utf8(line)).at("text").get<std::string>());
  std::string out;
  for (std::size_t i = 0; out.size() < (1u << 20); ++i) out += texts[i % texts.size()] + " item " + std::to_string(i) + " ";
  return out;
}

// 1 MB of pseudo-random words over Latin, Cyrillic, Greek, Arabic, CJK, digits and punctuation: nearly
// every word is new, so this measures BPE merging itself rather than the word cache.
std::string random_megabyte() {
  const char32_t ranges[][2] = {{'a', 'z'}, {'A', 'Z'}, {0x430, 0x44F}, {0x3B1, 0x3C9}, {0x627, 0x64A},
                                {0x4E00, 0x4FFF}, {'0', '9'}, {'!', '/'}};
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  std::string out;
  while (out.size() < (1u << 20)) {
    const auto& r = ranges[next(8)];
    std::size_t len = 1 + next(9);
    for (std::size_t i = 0; i < len; ++i) append_utf8(out, static_cast<char32_t>(r[0] + next(r[1] - r[0] + 1)));
    out += next(10) == 0 ? "\n" : " ";
  }
  return out;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void expect_fast(const std::string& name, const std::string& text) {
  auto tok = Tokenizer::from_directory(kQwen3Dir);
  double t0 = thread_cpu_seconds();
  auto ids = tok->encode(text);
  double seconds = thread_cpu_seconds() - t0;
  // The text is kept for timing the JS reference on the same input (tools/text_reference/bench_encode.mjs).
  std::string path = ::testing::TempDir() + "/hylora_bench_" + name + ".txt";
  std::ofstream(path, std::ios::binary) << text;
  std::printf("encode %s: %zu bytes -> %zu ids in %.3f s CPU (text in %s)\n", name.c_str(), text.size(), ids.size(),
              seconds, path.c_str());
  EXPECT_GT(ids.size(), text.size() / 10);
  EXPECT_LT(seconds, 1.0);
}

TEST(EncodeSpeed, MixedMegabyteUnderOneSecondOnOneCore) { expect_fast("mixed", mixed_megabyte()); }

TEST(EncodeSpeed, RandomWordsMegabyteUnderOneSecondOnOneCore) { expect_fast("random_words", random_megabyte()); }

}  // namespace
}  // namespace hylora::text
