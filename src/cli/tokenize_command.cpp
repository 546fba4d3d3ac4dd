// hylora tokenize --model DIR [--decode]
//   {"text": "..."} -> {"ids": [...]}      (no special tokens added; special tokens in the text are recognised)
//   {"ids": [...]}  -> {"text": "..."}     (with --decode; --skip-special-tokens drops special tokens)
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/jsonl_io.h"
#include "core/error.h"
#include "core/json_limits.h"
#include "text/tokenizer.h"

namespace hylora::cli {

int run_tokenize_command(int argc, char** argv) {
  CLI::App app{"Text <-> token ids with a model directory's tokenizer.json (JSONL on stdin and stdout)", "tokenize"};
  std::string model_dir;
  bool decode = false, skip_special = false;
  int64_t max_line_bytes = kDefaultMaxLineBytes;
  app.add_option("--model", model_dir, "directory holding tokenizer.json (and tokenizer_config.json)")->required();
  app.add_flag("--decode", decode, "read {\"ids\": [...]} lines and write {\"text\": ...}");
  app.add_flag("--skip-special-tokens", skip_special, "with --decode: leave special tokens out of the text");
  add_max_line_bytes_option(app, max_line_bytes);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  require_directory("--model", model_dir);
  auto tok = text::Tokenizer::from_directory(model_dir);
  const auto vocab = static_cast<int64_t>(tok->vocab_size());
  return run_jsonl_loop("tokenize", max_line_bytes, [&](const nlohmann::ordered_json& in) {
    if (!in.is_object()) fail("expected a JSON object, found ", in.type_name());
    if (decode) {
      if (!in.contains("ids") || !in["ids"].is_array()) fail("expected field \"ids\": [int, ...]");
      std::vector<int32_t> ids;
      for (const auto& v : in["ids"]) {
        if (!v.is_number_integer()) fail("field \"ids\": expected integers, found ", v.dump());
        // Checked as the exact JSON integer: a cast to int32 would turn 4294967296 into 0.
        int64_t id = 0;
        if (!json_int_in_range(v, 0, vocab - 1, id))
          fail("field \"ids\": token id ", v.dump(), " is outside the vocabulary [0, ", vocab, ")");
        ids.push_back(static_cast<int32_t>(id));
      }
      return nlohmann::ordered_json{{"text", tok->decode(ids, skip_special)}};
    }
    if (!in.contains("text") || !in["text"].is_string()) fail("expected field \"text\": string");
    return nlohmann::ordered_json{{"ids", tok->encode(in["text"].get<std::string>())}};
  });
}

}  // namespace hylora::cli
