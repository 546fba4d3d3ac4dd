#include "server/request_parser.h"

#include <cmath>
#include <optional>
#include <random>

#include "server/api_error.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace hylora::server {

namespace {
using json = nlohmann::ordered_json;

const json* field(const json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

double get_number(const json& j, const char* name, double def, double lo, double hi) {
  const json* v = field(j, name);
  if (!v) return def;
  if (!v->is_number()) throw bad_request(std::string("'") + name + "' must be a number", name);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad_request(std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "], got " + v->dump(),
                      name);
  return x;
}

int64_t get_int(const json& j, const char* name, int64_t def, int64_t lo, int64_t hi) {
  const json* v = field(j, name);
  if (!v) return def;
  if (!v->is_number_integer()) throw bad_request(std::string("'") + name + "' must be an integer", name);
  // Unsigned values past INT64_MAX are out of range too.
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw bad_request(std::string("'") + name + "' is out of range", name);
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi)
    throw bad_request(std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "], got " + std::to_string(x),
                      name);
  return x;
}

bool get_bool(const json& j, const char* name, bool def) {
  const json* v = field(j, name);
  if (!v) return def;
  if (!v->is_boolean()) throw bad_request(std::string("'") + name + "' must be true or false", name);
  return v->get<bool>();
}

std::vector<int32_t> token_ids(const json& v, const char* name, int64_t vocab) {
  if (!v.is_array()) throw bad_request(std::string("'") + name + "' must be an array of token ids", name);
  std::vector<int32_t> ids;
  for (auto& t : v) {
    if (!t.is_number_integer()) throw bad_request(std::string("'") + name + "' must hold integers", name);
    const int64_t x = t.is_number_unsigned() && t.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                          ? INT64_MAX
                          : t.get<int64_t>();
    if (x < 0 || x >= vocab)
      throw bad_request(std::string("token id ") + t.dump() + " in '" + name + "' is outside the vocabulary [0, " +
                            std::to_string(vocab) + ")",
                        name);
    ids.push_back(static_cast<int32_t>(x));
  }
  return ids;
}

std::vector<std::string> stop_strings(const json& j, const char* name, int64_t max) {
  const json* v = field(j, name);
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_string()) out.push_back(v->get<std::string>());
  else if (v->is_array()) {
    for (auto& s : *v) {
      if (!s.is_string()) throw bad_request(std::string("'") + name + "' must be a string or an array of strings", name);
      out.push_back(s.get<std::string>());
    }
  } else
    throw bad_request(std::string("'") + name + "' must be a string or an array of strings", name);
  if (static_cast<int64_t>(out.size()) > max)
    throw bad_request(std::string("at most ") + std::to_string(max) + " stop strings", name);
  for (auto& s : out)
    if (s.empty() || s.size() > 256) throw bad_request("stop strings must be 1 to 256 bytes", name);
  return out;
}

const text::Tokenizer& need_tokenizer(const ModelContext& ctx, const char* what) {
  if (!ctx.tokenizer)
    throw bad_request(std::string("this model has no tokenizer.json: ") + what + " is not available; send token ids");
  return *ctx.tokenizer;
}

// The sampling fields shared by the OpenAI endpoints (top level) and /generate (sampling_params).
void parse_sampling(const json& j, ParsedRequest& r, double default_temperature) {
  r.sampling.temperature = get_number(j, "temperature", default_temperature, 0, 100);
  r.sampling.top_p = get_number(j, "top_p", 1.0, 0, 1);
  if (r.sampling.top_p == 0) throw bad_request("'top_p' must be > 0", "top_p");
  r.sampling.top_k = get_int(j, "top_k", -1, -1, INT32_MAX);
  if (r.sampling.top_k == 0) throw bad_request("'top_k' must be -1 (off) or positive", "top_k");
  r.sampling.min_p = get_number(j, "min_p", 0.0, 0, 1);
}
}  // namespace

// Fields this server does not implement are refused when set to anything but their no-op value, so that a client
// never gets an answer computed differently from what it asked for.
void refuse_unsupported(const json& j) {
  auto nonzero = [&](const char* name, double neutral) {
    const json* v = field(j, name);
    if (v && !(v->is_number() && v->get<double>() == neutral))
      throw bad_request(std::string("'") + name + "' is not supported by this server (only " +
                            std::to_string(neutral).substr(0, 3) + ")",
                        name);
  };
  nonzero("frequency_penalty", 0);
  nonzero("presence_penalty", 0);
  nonzero("repetition_penalty", 1);
  if (const json* v = field(j, "logit_bias"); v && !(v->is_object() && v->empty()))
    throw bad_request("'logit_bias' is not supported by this server", "logit_bias");
  if (const json* v = field(j, "echo"); v && !(v->is_boolean() && !v->get<bool>()))
    throw bad_request("'echo' is not supported by this server", "echo");
  if (const json* v = field(j, "best_of"); v && !(v->is_number_integer() && v->get<int64_t>() == 1))
    throw bad_request("'best_of' other than 1 is not supported by this server", "best_of");
}

ParsedRequest parse_request(const json& body, Endpoint endpoint, const ModelContext& ctx) {
  ParsedRequest r;
  const ServerLimits& L = ctx.limits;
  // Sampling: SGLang keeps it under sampling_params, OpenAI at the top level.
  const json* sp = &body;
  if (endpoint == Endpoint::kGenerate) {
    static const json kEmpty = json::object();
    sp = field(body, "sampling_params");
    if (sp && !sp->is_object()) throw bad_request("'sampling_params' must be an object", "sampling_params");
    if (!sp) sp = &kEmpty;
  }
  refuse_unsupported(*sp);
  parse_sampling(*sp, r, 1.0);

  std::optional<int64_t> seed;
  if (field(*sp, "seed")) seed = get_int(*sp, "seed", 0, INT64_MIN, INT64_MAX);
  if (endpoint == Endpoint::kGenerate && field(*sp, "sampling_seed"))
    seed = get_int(*sp, "sampling_seed", 0, INT64_MIN, INT64_MAX);
  if (seed) r.sampling.seed = static_cast<uint64_t>(*seed);
  else r.sampling.seed = std::random_device{}() * 0x100000001ull;  // unseeded: fresh per request

  if (endpoint == Endpoint::kGenerate) {
    r.max_new_tokens = get_int(*sp, "max_new_tokens", 128, 0, L.max_new_tokens);
    r.ignore_eos = get_bool(*sp, "ignore_eos", false);
    r.stop = stop_strings(*sp, "stop", L.max_stop_strings);
    if (const json* v = field(*sp, "stop_token_ids")) r.stop_token_ids = token_ids(*v, "stop_token_ids", L.vocab_size);
    r.n = get_int(*sp, "n", 1, 1, L.max_n);
    r.stream = get_bool(body, "stream", false);
    r.logprobs = get_bool(body, "return_logprob", false);
    r.top_logprobs = get_int(body, "top_logprobs_num", 0, 0, L.max_top_logprobs);
    if (r.logprobs) r.prompt_logprob_start = get_int(body, "logprob_start_len", -1, -1, INT32_MAX);
    if (r.logprobs && r.prompt_logprob_start < 0) r.prompt_logprob_start = -1;
    const json* lp = field(body, "lora_path");
    if (lp && !lp->is_string()) throw bad_request("'lora_path' must be an adapter name or null", "lora_path");
    r.model = lp ? lp->get<std::string>() : ctx.base_name;
    r.adapter = lp ? ctx.resolve_model(r.model) : "";
    const json* text = field(body, "text");
    const json* ids = field(body, "input_ids");
    if ((text != nullptr) == (ids != nullptr)) throw bad_request("give exactly one of 'text' and 'input_ids'");
    if (text) {
      if (!text->is_string()) throw bad_request("'text' must be a string (batches are not supported)", "text");
      r.prompt = need_tokenizer(ctx, "'text'").encode(text->get<std::string>());
    } else {
      r.prompt = token_ids(*ids, "input_ids", L.vocab_size);
    }
  } else {
    const json* m = field(body, "model");
    if (m && !m->is_string()) throw bad_request("'model' must be a string", "model");
    r.model = m ? m->get<std::string>() : ctx.base_name;
    r.adapter = ctx.resolve_model(r.model);
    const int64_t def_max = endpoint == Endpoint::kCompletions ? 16 : L.max_new_tokens;
    r.max_new_tokens = get_int(body, "max_tokens", def_max, 0, L.max_new_tokens);
    if (field(body, "max_completion_tokens"))
      r.max_new_tokens = get_int(body, "max_completion_tokens", def_max, 0, L.max_new_tokens);
    r.ignore_eos = get_bool(body, "ignore_eos", false);
    r.stop = stop_strings(body, "stop", L.max_stop_strings);
    r.n = get_int(body, "n", 1, 1, L.max_n);
    r.stream = get_bool(body, "stream", false);
    if (const json* so = field(body, "stream_options")) {
      if (!so->is_object()) throw bad_request("'stream_options' must be an object", "stream_options");
      r.include_usage = get_bool(*so, "include_usage", false);
    }
    if (endpoint == Endpoint::kCompletions) {
      r.top_logprobs = get_int(body, "logprobs", -1, -1, L.max_top_logprobs);
      r.logprobs = r.top_logprobs >= 0;
      r.top_logprobs = std::max<int64_t>(r.top_logprobs, 0);
      const json* p = field(body, "prompt");
      if (!p) throw bad_request("'prompt' is required", "prompt");
      if (p->is_string()) {
        r.prompt = need_tokenizer(ctx, "a text prompt").encode(p->get<std::string>());
      } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
        r.prompt = token_ids(*p, "prompt", L.vocab_size);
      } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
        r.prompt = need_tokenizer(ctx, "a text prompt").encode((*p)[0].get<std::string>());
      } else {
        throw bad_request("'prompt' must be a string or an array of token ids (one prompt per request)", "prompt");
      }
    } else {
      r.logprobs = get_bool(body, "logprobs", false);
      r.top_logprobs = get_int(body, "top_logprobs", 0, 0, L.max_top_logprobs);
      const json* msgs = field(body, "messages");
      if (!msgs || !msgs->is_array() || msgs->empty())
        throw bad_request("'messages' must be a non-empty array", "messages");
      for (auto& m : *msgs)
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
          throw bad_request("each message must be an object with a string 'role'", "messages");
      if (!ctx.chat_template) need_tokenizer(ctx, "chat");
      if (!ctx.chat_template) throw bad_request("this model has no chat template");
      // The template sees the messages, tools and any template kwargs, as apply_chat_template does.
      json req = json::object();
      req["messages"] = *msgs;
      if (const json* t = field(body, "tools")) req["tools"] = *t;
      req["add_generation_prompt"] = true;
      if (const json* kw = field(body, "chat_template_kwargs")) {
        if (!kw->is_object()) throw bad_request("'chat_template_kwargs' must be an object", "chat_template_kwargs");
        for (auto& [k, v] : kw->items()) req[k] = v;
      }
      std::string prompt_text;
      try {
        prompt_text = ctx.chat_template->render(req);
      } catch (const std::exception& e) {
        throw bad_request(std::string("chat template failed: ") + e.what(), "messages");
      }
      r.prompt = need_tokenizer(ctx, "chat").encode(prompt_text);
    }
  }
  if (r.prompt.empty()) throw bad_request("the prompt is empty");
  if (static_cast<int64_t>(r.prompt.size()) > L.max_prompt_tokens)
    throw bad_request("the prompt has " + std::to_string(r.prompt.size()) + " tokens; the limit is " +
                          std::to_string(L.max_prompt_tokens) + " (the model's context)",
                      "prompt");
  if (!r.stop.empty() && !ctx.tokenizer) throw bad_request("stop strings need a tokenizer; use stop_token_ids", "stop");
  if (r.stream && r.n > 1 && endpoint == Endpoint::kGenerate)
    throw bad_request("streaming /generate supports n = 1 only", "n");
  return r;
}

}  // namespace hylora::server
