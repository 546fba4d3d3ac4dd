// tokenizer.json: bounded parse, the whole tokenizer built from it, then a short encode/decode round.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/json_limits.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto j = hylora::parse_json_bounded<nlohmann::json>(std::string_view(reinterpret_cast<const char*>(data), size),
                                                        hylora::json_limits::kTokenizer, "tokenizer.json");
    hylora::text::Tokenizer tok(j, size % 2 == 0);
    auto ids = tok.encode("Hello world! <|im_start|> 12345 \xc3\xa9\xe4\xb8\xad \xff");
    (void)tok.decode(ids, false);
    std::vector<int32_t> some;
    for (int32_t i = 0; i < 64 && i < static_cast<int32_t>(tok.vocab_size()); ++i) some.push_back(i);
    try {
      (void)tok.decode(some, true);
    } catch (const hylora::Error&) {  // sparse ids: "not in the vocabulary"
    }
  } catch (const hylora::Error&) {
  }
  return 0;
}
