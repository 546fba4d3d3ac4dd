// hylora chat-template --model DIR
//   {"messages": [...], "tools": [...], "add_generation_prompt": true, "enable_thinking": false} -> {"text": "..."}
// Every field of the input object is passed to the template, as apply_chat_template's keyword arguments are.
#include <CLI/CLI.hpp>

#include "text/chat_template.h"
#include "text/jsonl_loop.h"
#include "text/text_commands.h"

int run_chat_template_command(int argc, char** argv) {
  CLI::App app{"Render chat messages with a model directory's chat template (JSONL on stdin and stdout)",
               "chat-template"};
  std::string model_dir;
  app.add_option("--model", model_dir, "directory holding tokenizer_config.json (or chat_template.jinja)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto tmpl = hylora::text::ChatTemplate::from_directory(model_dir);
  return hylora::text::run_jsonl_loop("chat-template", [&](const nlohmann::ordered_json& in) {
    return nlohmann::ordered_json{{"text", tmpl->render(in)}};
  });
}
