#include "engine/scorer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "lora/normalized_adapter.h"

namespace hylora {

namespace {
struct Active {
  size_t request;
  SeqId seq;
  int64_t done = 0;           // tokens already run through the model
  int64_t reserved_pages = 0; // KV pages its whole length needs
};

// log_softmax(row)[target] in double precision.
double logprob_of(const float* row, int64_t vocab, int32_t target) {
  double mx = row[0];
  for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
  return row[target] - mx - std::log(sum);
}

// Why a request cannot be scored, or "".
std::string check_request(const Executor& ex, const ScoreRequest& r, const AdapterSet& adapters) {
  const int64_t vocab = ex.info().vocab_size, max_len = ex.info().max_position_embeddings;
  if (r.input_ids.empty()) return "input_ids is empty (need at least one token)";
  for (auto t : r.input_ids)
    if (t < 0 || t >= vocab)
      return "token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")";
  if (max_len > 0 && static_cast<int64_t>(r.input_ids.size()) > max_len)
    return std::to_string(r.input_ids.size()) + " tokens is longer than the model's max_position_embeddings (" +
           std::to_string(max_len) + ")";
  if (r.lora && !adapters.count(*r.lora)) {
    std::string known;
    for (auto& [n, _] : adapters) known += (known.empty() ? "" : ", ") + n;
    if (known.empty()) return "adapter \"" + *r.lora + "\": no adapters are loaded (pass --lora NAME=DIR)";
    return "adapter \"" + *r.lora + "\": unknown adapter (loaded: " + known + ")";
  }
  return "";
}
}  // namespace

std::vector<ScoreResult> score_requests(Executor& ex, const std::vector<ScoreRequest>& requests,
                                        const ScoreOptions& options, const AdapterSet& adapters) {
  HYLORA_CHECK(options.max_batch_tokens > 0 && options.prefill_chunk > 0, "score: batch sizes must be positive");
  const int64_t vocab = ex.info().vocab_size;
  const int64_t max_rows = std::min(options.max_batch_tokens, ex.options().max_batch_tokens);
  std::vector<ScoreResult> results(requests.size());
  std::vector<size_t> waiting;  // admitted in request order
  for (size_t i = 0; i < requests.size(); ++i) {
    results[i].id = requests[i].id;
    const std::string err = check_request(ex, requests[i], adapters);
    if (!err.empty()) {
      results[i].error = "request " + requests[i].id + ": " + err;
      continue;
    }
    results[i].logprobs.assign(requests[i].input_ids.size() - 1, 0.0);
    waiting.push_back(i);
  }

  std::vector<Active> active;
  size_t next = 0;
  int64_t reserved = 0;  // KV pages promised to active sequences
  while (next < waiting.size() || !active.empty()) {
    // Admit while a sequence slot and the pages for a whole sequence are free, so no step can run out of pages.
    while (next < waiting.size() && ex.free_sequences() > 0) {
      const size_t i = waiting[next];
      const int64_t len = static_cast<int64_t>(requests[i].input_ids.size());
      const SeqId s = ex.open_sequence();
      const int64_t need = ex.kv_pages_needed(s, len);
      if (need > ex.kv_pages_total()) {
        ex.release_sequence(s);
        results[i].logprobs.clear();
        results[i].error = "request " + requests[i].id + ": " + std::to_string(len) + " tokens need " +
                           std::to_string(need) + " KV pages, the cache holds " + std::to_string(ex.kv_pages_total()) +
                           " (raise --kv-cache-tokens)";
        ++next;
        continue;
      }
      if (reserved + need > ex.kv_pages_total()) {
        ex.release_sequence(s);
        break;  // waits for running sequences to finish
      }
      reserved += need;
      active.push_back({i, s, 0, need});
      ++next;
    }
    // One step: chunks of the active sequences within the row budget and the adapter slots.
    std::vector<SeqWork> works;
    std::vector<Active*> in_step;
    std::set<const lora::NormalizedAdapter*> step_adapters;
    int64_t budget = max_rows;
    for (auto& a : active) {
      const auto& req = requests[a.request];
      const int64_t remaining = static_cast<int64_t>(req.input_ids.size()) - a.done;
      if (remaining == 0 || budget == 0) continue;
      std::shared_ptr<const lora::NormalizedAdapter> adapter;
      if (req.lora) {
        adapter = adapters.at(*req.lora);
        if (!step_adapters.count(adapter.get())) {
          if (static_cast<int64_t>(step_adapters.size()) >= ex.max_adapters_per_step()) continue;  // a later step
          step_adapters.insert(adapter.get());
        }
      }
      const int64_t take = std::min({remaining, options.prefill_chunk, budget});
      works.push_back({a.seq, std::vector<int32_t>(req.input_ids.begin() + a.done, req.input_ids.begin() + a.done + take),
                       adapter, RowOutput::kAll});
      in_step.push_back(&a);
      budget -= take;
    }
    if (works.empty()) break;
    const StepOutput out = ex.execute(works);
    for (size_t w = 0; w < works.size(); ++w) {
      Active& a = *in_step[w];
      const auto& ids = requests[a.request].input_ids;
      auto& lp = results[a.request].logprobs;
      const int64_t n = static_cast<int64_t>(works[w].tokens.size());
      for (int64_t j = 0; j < n; ++j) {
        const int64_t pos = a.done + j;
        if (pos + 1 < static_cast<int64_t>(ids.size()))
          lp[pos] = logprob_of(out.logits.f32() + (out.first_row[w] + j) * vocab, vocab, ids[pos + 1]);
      }
      a.done += n;
    }
    // Finished sequences give their slot and pages back.
    for (auto it = active.begin(); it != active.end();) {
      if (it->done == static_cast<int64_t>(requests[it->request].input_ids.size())) {
        ex.release_sequence(it->seq);
        reserved -= it->reserved_pages;
        it = active.erase(it);
      } else {
        ++it;
      }
    }
  }
  return results;
}

}  // namespace hylora
