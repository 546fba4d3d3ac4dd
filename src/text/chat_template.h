#pragma once
// A model's chat template as transformers applies it (apply_chat_template(..., tokenize=False)): the Jinja
// template from DIR/chat_template.jinja or tokenizer_config.json's "chat_template", rendered with the
// messages, tools, add_generation_prompt, any extra keyword (e.g. enable_thinking) and the special tokens
// (bos_token, eos_token, ...) of tokenizer_config.json.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "text/jinja/template.h"

namespace hylora::text {

class ChatTemplate {
 public:
  // `config` is tokenizer_config.json's content (special tokens); `source_name` names the template in errors.
  ChatTemplate(const std::string& source, const nlohmann::json& config, const std::string& source_name);
  static std::unique_ptr<ChatTemplate> from_directory(const std::string& dir);

  // `request`: {"messages": [...], "tools": [...]?, "add_generation_prompt": bool?, ...other template kwargs}.
  std::string render(const nlohmann::ordered_json& request) const;

 private:
  std::string name_;
  jinja::Template template_;
  jinja::Object special_tokens_;
};

}  // namespace hylora::text
