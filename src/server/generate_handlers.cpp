// The generation endpoints: one body -> n scheduler requests (one per choice) -> a JSON answer or an SSE stream
// in the endpoint's shape (OpenAI completions / chat completions, SGLang /generate).
#include <httplib.h>

#include "lora/adapter_registry.h"
#include "scheduler/scheduler.h"
#include "server/api_error.h"
#include "server/generation.h"
#include "server/handler_util.h"
#include "server/http_server.h"
#include "server/json_body.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace hylora::server {

namespace {
using json = nlohmann::json;
using scheduler::FinishReason;

struct ChoiceResult {
  std::vector<SampledToken> tokens;
  std::string text;
  bool finished = false;
  FinishReason reason = FinishReason::kStop;
  std::string message, matched_stop;
  bool has_prompt_logprobs = false;
  int64_t prompt_logprob_start = 0;
  std::vector<double> prompt_logprobs;
};

void absorb(ChoiceResult& r, const ChoiceEvent& ev) {
  switch (ev.kind) {
    case ChoiceEvent::Kind::kToken:
      r.tokens.push_back(ev.token);
      r.text += ev.text;
      break;
    case ChoiceEvent::Kind::kPromptLogprobs:
      r.has_prompt_logprobs = true;
      r.prompt_logprob_start = ev.prompt_logprob_start;
      r.prompt_logprobs = ev.prompt_logprobs;
      break;
    case ChoiceEvent::Kind::kFinish:
      r.finished = true;
      r.reason = ev.reason;
      r.message = ev.message;
      r.matched_stop = ev.matched_stop;
      r.text += ev.text;
      break;
  }
}

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

struct Formatter {
  const ModelContext& ctx;
  const ParsedRequest& p;
  Endpoint ep;
  std::string id;
  int64_t created;

  std::string token_text(int32_t t) const {
    return ctx.tokenizer ? text::to_valid_utf8(ctx.tokenizer->token_bytes(t)) : "token_id:" + std::to_string(t);
  }
  json bytes_of(const std::string& s) const {
    json b = json::array();
    for (unsigned char c : s) b.push_back(c);
    return b;
  }
  // OpenAI completions logprobs for tokens [from, to) of a choice.
  json completion_logprobs(const std::vector<SampledToken>& ts, size_t from, size_t to) const {
    json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
    for (size_t i = from; i < to; ++i) {
      tokens.push_back(token_text(ts[i].id));
      lps.push_back(ts[i].logprob);
      json top = json::object();
      for (auto& t : ts[i].top) top[token_text(t.id)] = t.logprob;
      tops.push_back(top);
      offsets.push_back(0);
    }
    return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
  }
  json chat_logprobs(const std::vector<SampledToken>& ts, size_t from, size_t to) const {
    json content = json::array();
    for (size_t i = from; i < to; ++i) {
      json top = json::array();
      for (auto& t : ts[i].top) {
        const std::string s = token_text(t.id);
        top.push_back({{"token", s}, {"logprob", t.logprob}, {"bytes", bytes_of(s)}});
      }
      const std::string s = token_text(ts[i].id);
      content.push_back({{"token", s}, {"logprob", ts[i].logprob}, {"bytes", bytes_of(s)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json logprobs(const std::vector<SampledToken>& ts, size_t from, size_t to) const {
    if (!p.logprobs) return nullptr;
    return ep == Endpoint::kChat ? chat_logprobs(ts, from, to) : completion_logprobs(ts, from, to);
  }
  static const char* openai_reason(FinishReason r) {
    return r == FinishReason::kLength ? "length" : r == FinishReason::kStop ? "stop" : "abort";
  }
  json usage(const std::vector<ChoiceResult>& rs) const {
    int64_t completion = 0;
    for (auto& r : rs) completion += static_cast<int64_t>(r.tokens.size());
    const int64_t prompt = static_cast<int64_t>(p.prompt.size());
    return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
  }
  // SGLang's /generate object for one choice (cumulative when streaming).
  json generate_object(const ChoiceResult& r) const {
    json ids = json::array();
    for (auto& t : r.tokens) ids.push_back(t.id);
    json finish = nullptr;
    if (r.finished) {
      if (r.reason == FinishReason::kLength) finish = {{"type", "length"}, {"length", r.tokens.size()}};
      else if (r.reason == FinishReason::kStop)
        finish = {{"type", "stop"},
                  {"matched", r.matched_stop.empty() ? (r.tokens.empty() ? json(nullptr) : json(r.tokens.back().id))
                                                     : json(r.matched_stop)}};
      else finish = {{"type", "abort"}, {"message", r.message}};
    }
    json meta = {{"id", id}, {"prompt_tokens", p.prompt.size()}, {"completion_tokens", r.tokens.size()},
                 {"finish_reason", finish}};
    if (p.logprobs) {
      json out = json::array(), tops = json::array();
      for (auto& t : r.tokens) {
        out.push_back({t.logprob, t.id, nullptr});
        json top = json::array();
        for (auto& a : t.top) top.push_back({a.logprob, a.id, nullptr});
        tops.push_back(top);
      }
      meta["output_token_logprobs"] = out;
      if (p.top_logprobs > 0) meta["output_top_logprobs"] = tops;
      if (r.has_prompt_logprobs) {
        json in = json::array();
        if (p.prompt_logprob_start == 0) in.push_back({nullptr, p.prompt[0], nullptr});
        for (size_t i = 0; i < r.prompt_logprobs.size(); ++i)
          in.push_back({r.prompt_logprobs[i], p.prompt[r.prompt_logprob_start + i], nullptr});
        meta["input_token_logprobs"] = in;
      }
    }
    return {{"text", ctx.tokenizer ? json(r.text) : json(nullptr)}, {"output_ids", ids}, {"meta_info", meta}};
  }
  json full_response(const std::vector<ChoiceResult>& rs) const {
    if (ep == Endpoint::kGenerate) {
      if (rs.size() == 1) return generate_object(rs[0]);
      json a = json::array();
      for (auto& r : rs) a.push_back(generate_object(r));
      return a;
    }
    json choices = json::array();
    for (size_t i = 0; i < rs.size(); ++i) {
      json c = {{"index", i}, {"logprobs", logprobs(rs[i].tokens, 0, rs[i].tokens.size())},
                {"finish_reason", openai_reason(rs[i].reason)}};
      if (ep == Endpoint::kChat) c["message"] = {{"role", "assistant"}, {"content", rs[i].text}};
      else c["text"] = rs[i].text;
      choices.push_back(c);
    }
    return {{"id", id}, {"object", ep == Endpoint::kChat ? "chat.completion" : "text_completion"},
            {"created", created}, {"model", p.model}, {"choices", choices}, {"usage", usage(rs)}};
  }
  // One SSE chunk of an OpenAI stream for choice `i`.
  json chunk(size_t i, const std::string& text, json lp, const char* finish, bool role = false) const {
    json c = {{"index", i}, {"logprobs", lp}, {"finish_reason", finish ? json(finish) : json(nullptr)}};
    if (ep == Endpoint::kChat) {
      json delta = json::object();
      if (role) delta["role"] = "assistant";
      if (role || !text.empty()) delta["content"] = text;
      c["delta"] = delta;
    } else {
      c["text"] = text;
    }
    return {{"id", id}, {"object", ep == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
            {"created", created}, {"model", p.model}, {"choices", json::array({c})}};
  }
};

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

struct StreamState {
  ParsedRequest p;
  std::vector<ChoiceResult> results;
  std::vector<uint64_t> ids;
  bool started = false, ended = false;
};
}  // namespace

void HttpServer::handle_generation(const std::string& req_body, httplib::Response& res, Endpoint ep) {
  guarded(res, [&] {
    const auto body = parse_json_body(req_body, opt_.max_body_bytes);
    auto state = std::make_shared<StreamState>();
    state->p = parse_request(body, ep, ctx_);
    const ParsedRequest& p = state->p;
    // One adapter reference per choice, taken before anything is submitted; each choice's sink gives its back.
    std::vector<lora::AdapterPtr> handles;
    try {
      while (!p.adapter.empty() && static_cast<int64_t>(handles.size()) < p.n)
        handles.push_back(registry_.acquire(p.adapter));
    } catch (...) {
      for (size_t i = 0; i < handles.size(); ++i) registry_.release(p.adapter);
      throw;
    }
    auto channel = std::make_shared<Channel>(static_cast<int>(p.n));
    std::vector<scheduler::GenerationRequest> choices;
    for (int64_t i = 0; i < p.n; ++i) {
      scheduler::GenerationRequest g;
      g.prompt = p.prompt;
      if (!handles.empty()) g.adapter = handles[i];
      g.sampling = p.sampling;
      g.sampling.seed = p.sampling.seed + static_cast<uint64_t>(i);  // distinct, reproducible choices
      g.max_new_tokens = p.max_new_tokens;
      g.ignore_eos = p.ignore_eos;
      g.stop_token_ids = p.stop_token_ids;
      g.token_logprobs = p.logprobs;
      g.top_logprobs = p.logprobs ? p.top_logprobs : 0;
      g.prompt_logprob_start = p.prompt_logprob_start;
      g.sink = std::make_shared<ChoiceSink>(
          channel, static_cast<int>(i),
          ChoiceSinkOptions{ctx_.tokenizer, p.stop, p.adapter, &registry_, &metrics_});
      choices.push_back(std::move(g));
    }
    state->ids = sched_.submit_group(std::move(choices));  // together: seeded choices reproduce run to run
    state->results.resize(p.n);
    const std::string prefix = ep == Endpoint::kChat ? "chatcmpl-" : ep == Endpoint::kCompletions ? "cmpl-" : "";
    auto fmt = std::make_shared<Formatter>(Formatter{ctx_, state->p, ep, prefix + std::to_string(state->ids[0]),
                                                     now_s()});
    if (!p.stream) {
      while (!channel->done())
        if (auto ev = channel->pop(std::chrono::milliseconds(1000))) absorb(state->results[ev->choice], *ev);
      for (auto& r : state->results) {
        if (r.reason == FinishReason::kError) throw ApiError(500, "server_error", r.message);
        if (r.reason == FinishReason::kAbort) throw ApiError(503, "server_error", "request aborted: " + r.message);
      }
      res.set_content(dump(fmt->full_response(state->results)), "application/json");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [channel, state, fmt, ep](size_t, httplib::DataSink& sink) {
          auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
          const ParsedRequest& p = state->p;
          if (!state->started && ep == Endpoint::kChat) {
            state->started = true;
            std::string s;
            for (int64_t i = 0; i < p.n; ++i) s += sse(fmt->chunk(i, "", nullptr, nullptr, true));
            return write(s);
          }
          auto ev = channel->pop(std::chrono::milliseconds(1000));
          if (!ev) {
            if (!channel->done()) return write(": keep-alive\n\n");  // also finds clients that went away
            std::string s;
            if (p.include_usage && ep != Endpoint::kGenerate) {
              json u = {{"id", fmt->id}, {"object", ep == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
                        {"created", fmt->created}, {"model", p.model}, {"choices", json::array()},
                        {"usage", fmt->usage(state->results)}};
              s += sse(u);
            }
            s += "data: [DONE]\n\n";
            state->ended = true;
            const bool ok = write(s);
            sink.done();
            return ok;
          }
          ChoiceResult& r = state->results[ev->choice];
          const size_t before = r.tokens.size();
          absorb(r, *ev);
          if (ev->kind == ChoiceEvent::Kind::kPromptLogprobs) return true;
          if (ev->kind == ChoiceEvent::Kind::kFinish && r.reason == FinishReason::kError)
            return write(sse(json::parse(error_body(500, "server_error", r.message))));
          if (ep == Endpoint::kGenerate) return write(sse(fmt->generate_object(r)));
          const bool finish = ev->kind == ChoiceEvent::Kind::kFinish;
          if (!finish && ev->text.empty() && !p.logprobs) return true;
          return write(sse(fmt->chunk(ev->choice, ev->text, fmt->logprobs(r.tokens, before, r.tokens.size()),
                                      finish ? Formatter::openai_reason(r.reason) : nullptr)));
        },
        [this, state](bool success) {
          if (success && state->ended) return;
          metrics_.disconnects++;
          for (uint64_t id : state->ids) sched_.cancel(id);  // frees the sequences, pages and adapter refs
        });
  });
}

}  // namespace hylora::server
