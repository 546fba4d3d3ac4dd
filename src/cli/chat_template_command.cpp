// hylora chat-template --model DIR
//   {"messages": [...], "tools": [...], "add_generation_prompt": true, "enable_thinking": false} -> {"text": "..."}
// Every field of the input object is passed to the template, as apply_chat_template's keyword arguments are.
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/jsonl_io.h"
#include "text/chat_template.h"

namespace hylora::cli {

int run_chat_template_command(int argc, char** argv) {
  CLI::App app{"Render chat messages with a model directory's chat template (JSONL on stdin and stdout)",
               "chat-template"};
  std::string model_dir;
  int64_t max_line_bytes = kDefaultMaxLineBytes;
  app.add_option("--model", model_dir, "directory holding tokenizer_config.json (or chat_template.jinja)")->required();
  add_max_line_bytes_option(app, max_line_bytes);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  require_directory("--model", model_dir);
  auto tmpl = text::ChatTemplate::from_directory(model_dir);
  return run_jsonl_loop("chat-template", max_line_bytes, [&](const nlohmann::ordered_json& in) {
    return nlohmann::ordered_json{{"text", tmpl->render(in)}};
  });
}

}  // namespace hylora::cli
