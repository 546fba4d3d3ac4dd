#include "text/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_limits.h"

namespace hylora::text {
namespace {

// Template sources of real models are < 100 KB; tokenizer_config.json can also hold a large added-token table.
constexpr std::uintmax_t kMaxFileBytes = hylora::json_limits::kTokenizerConfig.max_bytes;

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::error_code ec;
  if (const auto size = std::filesystem::file_size(path, ec); !ec && size > kMaxFileBytes)
    hylora::fail(path, ": ", size, " bytes is over the size limit of ", kMaxFileBytes, " bytes");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

jinja::Template compile(const std::string& source, const std::string& name) {
  try {
    return jinja::Template(source);
  } catch (const hylora::Error& e) {
    hylora::fail(name, ": ", e.what());
  }
}

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source, const nlohmann::json& config, const std::string& source_name)
    : name_(source_name), template_(compile(source, source_name)) {
  // transformers passes the special tokens map: string tokens, or AddedToken dicts reduced to their content.
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (!config.contains(key)) continue;
    const auto& t = config[key];
    if (t.is_string()) special_tokens_.set(key, jinja::Value(t.get<std::string>()));
    else if (t.is_object() && t.contains("content")) special_tokens_.set(key, jinja::Value(t["content"].get<std::string>()));
  }
  if (config.contains("additional_special_tokens") && config["additional_special_tokens"].is_array()) {
    jinja::Array extra;
    for (const auto& t : config["additional_special_tokens"])
      extra.emplace_back(t.is_string() ? t.get<std::string>() : t.value("content", ""));
    special_tokens_.set("additional_special_tokens", jinja::Value::array(std::move(extra)));
  }
}

std::unique_ptr<ChatTemplate> ChatTemplate::from_directory(const std::string& dir) {
  std::string config_path = dir + "/tokenizer_config.json";
  auto config_text = read_file(config_path);
  if (!config_text) hylora::fail(config_path, ": cannot open file");
  nlohmann::json config =
      hylora::parse_json_bounded<nlohmann::json>(*config_text, hylora::json_limits::kTokenizerConfig, config_path);
  // Newer checkpoints keep the template in its own file, which transformers prefers.
  std::string jinja_path = dir + "/chat_template.jinja";
  if (auto source = read_file(jinja_path)) return std::make_unique<ChatTemplate>(*source, config, jinja_path);
  if (!config.contains("chat_template"))
    hylora::fail(config_path, ": no \"chat_template\" field (and no chat_template.jinja)");
  const auto& t = config["chat_template"];
  if (t.is_string()) return std::make_unique<ChatTemplate>(t.get<std::string>(), config, config_path + " chat_template");
  if (t.is_array()) {  // named templates: transformers uses "default"
    for (const auto& entry : t)
      if (entry.value("name", "") == "default")
        return std::make_unique<ChatTemplate>(entry.at("template").get<std::string>(), config,
                                              config_path + " chat_template[default]");
    hylora::fail(config_path, ": chat_template: expected a template named \"default\" in the list");
  }
  hylora::fail(config_path, ": chat_template: expected a string or a list of {name, template}, found ", t.type_name());
}

std::string ChatTemplate::render(const nlohmann::ordered_json& request) const {
  if (!request.is_object()) hylora::fail("expected a JSON object, found ", request.type_name());
  if (!request.contains("messages") || !request["messages"].is_array())
    hylora::fail("expected field \"messages\": [{\"role\": ..., \"content\": ...}, ...]");
  jinja::Object vars = special_tokens_;
  // The keyword arguments of apply_chat_template: tools and documents default to None.
  vars.set("tools", jinja::Value::none());
  vars.set("documents", jinja::Value::none());
  vars.set("add_generation_prompt", jinja::Value(false));
  for (const auto& [k, v] : request.items()) vars.set(k, jinja::Value::from_json(v));
  try {
    return template_.render(vars);
  } catch (const hylora::Error& e) {
    hylora::fail(name_, ": ", e.what());
  }
}

}  // namespace hylora::text
