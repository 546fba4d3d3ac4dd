// BPE on arbitrary bytes: encode any input with the bundled model's tokenizer, decode any id sequence (the same
// bytes read as ids), and stream-decode it.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tok =
      hylora::text::Tokenizer::from_directory(HYLORA_FIXTURES_DIR "/qwen3_5_causal_bf16/model");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ids = tok->encode(text);
  (void)tok->decode(ids, false);
  const auto vocab = static_cast<uint32_t>(tok->vocab_size());
  std::vector<int32_t> raw;
  for (size_t i = 0; i + 4 <= size; i += 4) {
    uint32_t v;
    std::memcpy(&v, data + i, 4);
    raw.push_back(static_cast<int32_t>(v % vocab));
  }
  try {
    (void)tok->decode(raw, size % 2 == 0);
    hylora::text::StreamDecoder stream(*tok, false);
    for (auto id : raw) (void)stream.push(id);
    (void)stream.finish();
  } catch (const hylora::Error&) {  // ids the vocabulary leaves unused
  }
  return 0;
}
