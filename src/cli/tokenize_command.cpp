// hylora tokenize --model DIR [--decode]
//   {"text": "..."} -> {"ids": [...]}      (no special tokens added; special tokens in the text are recognised)
//   {"ids": [...]}  -> {"text": "..."}     (with --decode; --skip-special-tokens drops special tokens)
#include <CLI/CLI.hpp>

#include "core/error.h"
#include "text/jsonl_loop.h"
#include "text/text_commands.h"
#include "text/tokenizer.h"

int run_tokenize_command(int argc, char** argv) {
  CLI::App app{"Text <-> token ids with a model directory's tokenizer.json (JSONL on stdin and stdout)", "tokenize"};
  std::string model_dir;
  bool decode = false, skip_special = false;
  app.add_option("--model", model_dir, "directory holding tokenizer.json (and tokenizer_config.json)")->required();
  app.add_flag("--decode", decode, "read {\"ids\": [...]} lines and write {\"text\": ...}");
  app.add_flag("--skip-special-tokens", skip_special, "with --decode: leave special tokens out of the text");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto tok = hylora::text::Tokenizer::from_directory(model_dir);
  return hylora::text::run_jsonl_loop("tokenize", [&](const nlohmann::ordered_json& in) {
    if (!in.is_object()) hylora::fail("expected a JSON object, found ", in.type_name());
    if (decode) {
      if (!in.contains("ids") || !in["ids"].is_array()) hylora::fail("expected field \"ids\": [int, ...]");
      std::vector<int32_t> ids;
      for (const auto& v : in["ids"]) {
        if (!v.is_number_integer()) hylora::fail("field \"ids\": expected integers, found ", v.dump());
        ids.push_back(v.get<int32_t>());
      }
      return nlohmann::ordered_json{{"text", tok->decode(ids, skip_special)}};
    }
    if (!in.contains("text") || !in["text"].is_string()) hylora::fail("expected field \"text\": string");
    return nlohmann::ordered_json{{"ids", tok->encode(in["text"].get<std::string>())}};
  });
}
