#include "engine/scorer.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace hylora {

namespace {
struct Active {
  size_t request;
  SequenceCache cache;
  int64_t done = 0;  // tokens already run through the model
};

// log_softmax(row)[target] in double precision.
double logprob_of(const float* row, int64_t vocab, int32_t target) {
  double mx = row[0];
  for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
  return row[target] - mx - std::log(sum);
}
}  // namespace

std::vector<ScoreResult> score_requests(Model& model, const std::vector<ScoreRequest>& requests,
                                        const ScoreOptions& options, LoraStepBinder* lora) {
  HYLORA_CHECK(options.max_batch_tokens > 0 && options.prefill_chunk > 0, "score: batch sizes must be positive");
  std::vector<ScoreResult> results(requests.size());
  std::vector<Active> active;
  const int64_t vocab = model.vocab_size();
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    results[i].id = r.id;
    if (r.input_ids.empty()) {
      results[i].error = "request " + r.id + ": input_ids is empty (need at least one token)";
      continue;
    }
    bool ok = true;
    for (auto t : r.input_ids)
      if (t < 0 || t >= vocab) {
        results[i].error = "request " + r.id + ": token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                           std::to_string(vocab) + ")";
        ok = false;
        break;
      }
    if (ok && r.lora) {
      std::string err = lora ? lora->check(r.lora) : "no adapters are loaded (pass --lora NAME=DIR)";
      if (!err.empty()) {
        results[i].error = "request " + r.id + ": adapter \"" + *r.lora + "\": " + err;
        ok = false;
      }
    }
    if (!ok) continue;
    results[i].logprobs.assign(r.input_ids.size() - 1, 0.0);
    active.push_back({i, model.new_cache(), 0});
  }

  const int64_t max_adapters = lora ? lora->max_adapters_per_step() : 0;
  while (true) {
    ForwardBatch batch;
    std::vector<Active*> in_step;
    std::vector<std::optional<std::string>> span_lora;
    std::set<std::string> adapters;
    int64_t budget = options.max_batch_tokens;
    for (auto& a : active) {
      const auto& req = requests[a.request];
      const int64_t remaining = static_cast<int64_t>(req.input_ids.size()) - a.done;
      if (remaining == 0 || budget == 0) continue;
      if (req.lora && !adapters.count(*req.lora)) {
        if (static_cast<int64_t>(adapters.size()) >= max_adapters) continue;  // waits for a later step
        adapters.insert(*req.lora);
      }
      const int64_t take = std::min({remaining, options.prefill_chunk, budget});
      SeqSpan span;
      span.row_begin = batch.num_tokens();
      span.n_tokens = take;
      span.past_len = a.done;
      span.cache = &a.cache;
      for (int64_t j = 0; j < take; ++j) {
        batch.tokens.push_back(req.input_ids[a.done + j]);
        batch.positions.push_back(a.done + j);
      }
      batch.seqs.push_back(span);
      span_lora.push_back(req.lora);
      in_step.push_back(&a);
      budget -= take;
    }
    if (in_step.empty()) break;
    if (lora) batch.lora = lora->bind(batch, span_lora);
    Tensor logits = model.forward(batch);
    for (size_t s = 0; s < in_step.size(); ++s) {
      Active& a = *in_step[s];
      const auto& ids = requests[a.request].input_ids;
      auto& out = results[a.request].logprobs;
      const SeqSpan& span = batch.seqs[s];
      for (int64_t j = 0; j < span.n_tokens; ++j) {
        const int64_t pos = a.done + j;
        if (pos + 1 < static_cast<int64_t>(ids.size()))
          out[pos] = logprob_of(logits.f32() + (span.row_begin + j) * vocab, vocab, ids[pos + 1]);
      }
      a.done += span.n_tokens;
      a.cache.length = a.done;
    }
  }
  return results;
}

}  // namespace hylora
