#include "scheduler/scheduler.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "lora/adapter_registry.h"
#include "lora/normalized_adapter.h"

namespace hylora::scheduler {

using Clock = std::chrono::steady_clock;

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
  }
  return "error";
}

struct Scheduler::Seq {
  uint64_t id = 0;
  GenerationRequest req;
  std::vector<int32_t> tokens;  // prompt + generated: what the sequence must hold before the next sample
  int64_t prompt_len = 0;
  int64_t generated = 0;
  SeqId seq = -1;       // executor sequence while running
  int64_t cached = 0;   // tokens of `tokens` the executor holds
  Clock::time_point arrival;
  bool finished = false;
  bool prompt_logprobs_sent = false;
  std::vector<double> prompt_logprobs;

  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - cached; }
  bool wants_prompt_logprobs() const { return req.prompt_logprob_start >= 0 && !prompt_logprobs_sent; }
};

Scheduler::Scheduler(Executor& executor, lora::AdapterRegistry* registry, SchedulerOptions options)
    : ex_(executor), registry_(registry), opt_(std::move(options)) {
  opt_.max_batch_tokens = std::min(opt_.max_batch_tokens, ex_.options().max_batch_tokens);
  HYLORA_CHECK(opt_.max_batch_tokens > 0 && opt_.prefill_chunk > 0, "max_batch_tokens and prefill_chunk must be > 0");
  update_gauges();
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  drain_inbox();
  for (auto& s : running_) finish(*s, FinishReason::kAbort, "server shutting down");
  for (auto& s : waiting_) finish(*s, FinishReason::kAbort, "server shutting down");
  running_.clear();
  waiting_.clear();
}

uint64_t Scheduler::submit(GenerationRequest request) {
  std::vector<GenerationRequest> one;
  one.push_back(std::move(request));
  return submit_group(std::move(one)).front();
}

std::vector<uint64_t> Scheduler::submit_group(std::vector<GenerationRequest> requests) {
  std::vector<std::unique_ptr<Seq>> seqs;
  std::vector<uint64_t> ids;
  for (GenerationRequest& request : requests) {
    HYLORA_CHECK(!request.prompt.empty(), "a request needs at least one prompt token");
    HYLORA_CHECK(request.sink != nullptr, "a request needs a sink");
    auto s = std::make_unique<Seq>();
    s->id = next_id_++;
    s->tokens = request.prompt;
    s->prompt_len = static_cast<int64_t>(request.prompt.size());
    s->req = std::move(request);
    s->arrival = Clock::now();
    ids.push_back(s->id);
    seqs.push_back(std::move(s));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : seqs) inbox_.push_back(std::move(s));
  }
  cv_.notify_all();
  return ids;
}

void Scheduler::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(id);
  }
  cv_.notify_all();
}

void Scheduler::drain_inbox() {
  std::vector<std::unique_ptr<Seq>> in;
  std::vector<uint64_t> cancels;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in.swap(inbox_);
    cancels.swap(cancels_);
  }
  for (auto& s : in) {
    stats_.prompt_tokens += s->prompt_len;
    waiting_.push_back(std::move(s));
  }
  for (uint64_t id : cancels) {
    for (auto& s : running_)
      if (s->id == id) finish(*s, FinishReason::kAbort, "cancelled");
    for (auto& s : waiting_)
      if (s->id == id) finish(*s, FinishReason::kAbort, "cancelled");
  }
  remove_finished();
}

void Scheduler::apply_slot_actions() {
  if (!registry_) return;
  for (auto& a : registry_->take_slot_actions()) {
    try {
      switch (a.kind) {
        case lora::SlotAction::Kind::kPin: ex_.pin_adapter(a.adapter); break;
        case lora::SlotAction::Kind::kUnpin: ex_.unpin_adapter(*a.adapter); break;
        case lora::SlotAction::Kind::kEvict: ex_.evict_adapter(*a.adapter); break;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "hylora serve: adapter '%s': %s\n", a.adapter->name.c_str(), e.what());
    }
  }
}

void Scheduler::finish(Seq& s, FinishReason reason, const std::string& message) {
  if (s.finished) return;
  s.finished = true;
  if (s.seq >= 0) {
    ex_.release_sequence(s.seq);
    s.seq = -1;
  }
  switch (reason) {
    case FinishReason::kStop: ++stats_.finished_stop; break;
    case FinishReason::kLength: ++stats_.finished_length; break;
    case FinishReason::kAbort: ++stats_.finished_abort; break;
    case FinishReason::kError: ++stats_.finished_error; break;
  }
  s.req.sink->on_finish(reason, message);
}

void Scheduler::remove_finished() {
  std::erase_if(running_, [](const auto& s) { return s->finished; });
  std::erase_if(waiting_, [](const auto& s) { return s->finished; });
}

void Scheduler::preempt(size_t i) {
  std::unique_ptr<Seq> s = std::move(running_[i]);
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
  ex_.release_sequence(s->seq);
  s->seq = -1;
  s->cached = 0;
  if (!s->prompt_logprobs_sent) s->prompt_logprobs.clear();
  ++stats_.preemptions;
  waiting_.push_front(std::move(s));
}

void Scheduler::preempt_newest() {
  if (!running_.empty()) preempt(running_.size() - 1);
}

int64_t Scheduler::free_pages_left(const std::vector<Work>& works) const {
  int64_t planned = 0;
  for (const Work& w : works) planned += ex_.kv_pages_needed(w.seq->seq, w.n);
  return ex_.free_kv_pages() - planned;
}

// Decodes first (one token each, preempting the newest when pages run out), then prefill chunks of running
// requests (a preempted request being recomputed, or a prompt longer than one chunk).
void Scheduler::plan_running(std::vector<Work>& works, int64_t& budget) {
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Seq* s = running_[i].get();
    if (s->pending() != 1) {
      ++i;
      continue;
    }
    int64_t free = free_pages_left(works);
    bool self_preempted = false;
    while (ex_.kv_pages_needed(s->seq, 1) > free) {
      // Victims are newer than every planned work (works are planned in admission order).
      const bool victim_is_self = running_.back().get() == s;
      preempt_newest();
      if (victim_is_self) {
        self_preempted = true;
        break;
      }
      free = free_pages_left(works);
    }
    if (self_preempted) break;
    works.push_back({s, 1});
    --budget;
    ++i;
  }
  for (auto& r : running_) {
    Seq* s = r.get();
    if (budget <= 0) break;
    if (s->pending() <= 1) continue;
    int64_t n = std::min({s->pending(), budget, opt_.prefill_chunk});
    const int64_t free = free_pages_left(works);
    if (ex_.kv_pages_needed(s->seq, n) > free) {
      int64_t lo = 0, hi = n;  // largest chunk that fits the free pages
      while (lo < hi) {
        const int64_t mid = (lo + hi + 1) / 2;
        if (ex_.kv_pages_needed(s->seq, mid) <= free) lo = mid; else hi = mid - 1;
      }
      n = lo;
    }
    if (n == 0) continue;
    works.push_back({s, n});
    budget -= n;
  }
}

void Scheduler::admit(std::vector<Work>& works, int64_t& budget) {
  std::set<const lora::NormalizedAdapter*> adapters;
  for (auto& r : running_)
    if (r->req.adapter) adapters.insert(r->req.adapter.get());
  const int64_t adapter_limit = ex_.max_adapters_per_step();
  const int64_t page_size = ex_.options().page_size;
  const auto now = Clock::now();
  bool blocked = false;  // an adapter request has waited too long: no other adapter request passes it
  for (size_t i = 0; i < waiting_.size() && budget > 0;) {
    Seq* s = waiting_[i].get();
    const int64_t pages = (static_cast<int64_t>(s->tokens.size()) + 1 + page_size - 1) / page_size;
    if (pages > ex_.kv_pages_total()) {
      finish(*s, FinishReason::kError,
             "the request needs " + std::to_string(pages) + " KV pages, the cache holds " +
                 std::to_string(ex_.kv_pages_total()));
      waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    const auto* a = s->req.adapter.get();
    if (a && (blocked || (!adapters.count(a) && static_cast<int64_t>(adapters.size()) >= adapter_limit))) {
      // Its adapter has no slot yet: later requests may pass it, until it has waited max_adapter_wait; after that
      // only base-model requests (which hold no slot) pass, so the running adapters drain and it gets one.
      if (now - s->arrival >= opt_.max_adapter_wait) blocked = true;
      ++i;
      continue;
    }
    if (pages > free_pages_left(works) || ex_.free_sequences() <= 0) break;  // FCFS on memory
    s->seq = ex_.open_sequence();
    s->cached = 0;
    const int64_t n = std::min({s->pending(), budget, opt_.prefill_chunk});
    if (a) adapters.insert(a);
    running_.push_back(std::move(waiting_[i]));
    waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
    works.push_back({s, n});
    budget -= n;
    ++admissions_;
  }
}

bool Scheduler::step() {
  drain_inbox();
  apply_slot_actions();
  if (waiting_.empty() && running_.empty()) {
    update_gauges();
    return false;
  }
  std::vector<Work> works;
  int64_t budget = opt_.max_batch_tokens;
  plan_running(works, budget);
  admit(works, budget);
  if (works.empty()) {
    // Nothing fits (every running request needs a page and none is free): free the newest and try again. With
    // nothing running there is nothing to free: wait for the world to change rather than spin.
    const bool preempted = !running_.empty();
    if (preempted) preempt_newest();
    update_gauges();
    return preempted;
  }

  std::vector<SeqWork> step;
  std::set<const void*> adapters;
  int64_t rows = 0;
  for (const Work& w : works) {
    Seq& s = *w.seq;
    SeqWork sw;
    sw.seq = s.seq;
    sw.tokens.assign(s.tokens.begin() + s.cached, s.tokens.begin() + s.cached + w.n);
    sw.adapter = s.req.adapter;
    const bool completes = s.cached + w.n == static_cast<int64_t>(s.tokens.size());
    const bool prompt_rows = s.wants_prompt_logprobs() && s.cached < s.prompt_len;
    sw.output = prompt_rows ? RowOutput::kAll : completes ? RowOutput::kLast : RowOutput::kNone;
    // The next token is drawn inside the step (on the GPU only the token comes back, not the logits row).
    if (completes && s.req.max_new_tokens > 0)
      sw.draw = TokenDraw{s.req.sampling, s.generated, s.req.top_logprobs, s.req.token_logprobs};
    step.push_back(std::move(sw));
    rows += w.n;
    if (s.req.adapter) adapters.insert(s.req.adapter.get());
  }
  StepOutput out;
  try {
    out = ex_.execute(step);
  } catch (const PoolExhausted&) {
    // The plan's arithmetic and the executor disagree (a future pool with other rules): shed load and retry.
    preempt_newest();
    update_gauges();
    return true;
  } catch (const std::exception& e) {
    for (const Work& w : works) finish(*w.seq, FinishReason::kError, std::string("engine error: ") + e.what());
    remove_finished();
    update_gauges();
    return true;
  }
  ++stats_.steps;
  stats_.last_step_tokens = rows;
  stats_.last_step_sequences = static_cast<int64_t>(works.size());
  stats_.last_step_adapters = static_cast<int64_t>(adapters.size());

  const int64_t V = ex_.info().vocab_size;
  const int64_t max_len = ex_.info().max_position_embeddings;
  for (size_t i = 0; i < works.size(); ++i) {
    Seq& s = *works[i].seq;
    const int64_t n = works[i].n, before = s.cached;
    s.cached += n;
    const float* rows_begin = out.logits.f32() + out.first_row[i] * V;
    if (step[i].output == RowOutput::kAll) {
      // Row j predicts token before + j + 1; keep those that are prompt tokens at or after the start.
      for (int64_t j = 0; j < n; ++j) {
        const int64_t target = before + j + 1;
        if (target >= s.prompt_len || target < std::max<int64_t>(1, s.req.prompt_logprob_start)) continue;
        s.prompt_logprobs.push_back(log_softmax(rows_begin + j * V, V)[s.tokens[target]]);
      }
      if (s.cached >= s.prompt_len) {
        s.req.sink->on_prompt_logprobs(std::max<int64_t>(1, s.req.prompt_logprob_start), s.prompt_logprobs);
        s.prompt_logprobs_sent = true;
      }
    }
    if (s.cached != static_cast<int64_t>(s.tokens.size())) continue;
    if (s.req.max_new_tokens <= 0) {  // prompt only (SGLang: max_new_tokens 0 for prompt logprobs)
      finish(s, FinishReason::kLength);
      continue;
    }
    TokenEvent ev;
    HYLORA_CHECK(out.drawn.size() == works.size() && out.drawn[i], "internal: the step drew no token for sequence ",
                 s.seq);
    ev.token = *out.drawn[i];
    ev.index = s.generated;
    s.tokens.push_back(ev.token.id);
    ++s.generated;
    ++stats_.generated_tokens;
    const int32_t t = ev.token.id;
    const bool eos = !s.req.ignore_eos && std::count(opt_.eos_token_ids.begin(), opt_.eos_token_ids.end(), t);
    const bool stop_id = std::count(s.req.stop_token_ids.begin(), s.req.stop_token_ids.end(), t) > 0;
    const bool stop_string = s.req.sink->on_token(ev);
    if (eos || stop_id || stop_string)
      finish(s, FinishReason::kStop);
    else if (s.generated >= s.req.max_new_tokens || (max_len > 0 && static_cast<int64_t>(s.tokens.size()) >= max_len))
      finish(s, FinishReason::kLength);
  }
  remove_finished();
  update_gauges();
  return true;
}

void Scheduler::update_gauges() {
  stats_.waiting = static_cast<int64_t>(waiting_.size());
  stats_.running = static_cast<int64_t>(running_.size());
  stats_.free_kv_pages = ex_.free_kv_pages();
  stats_.kv_pages_total = ex_.kv_pages_total();
  stats_.free_sequences = ex_.free_sequences();
  stats_.adapter_slot_loads = ex_.adapter_slot_loads();
  stats_.adapter_slots_per_step = ex_.max_adapters_per_step();
}

void Scheduler::run_until_idle() {
  while (step()) {
  }
}

void Scheduler::loop() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    if (step()) continue;
    std::unique_lock<std::mutex> lock(mu_);
    // Wake for new work; also every 100 ms, for adapter slot actions (unload/evict) queued without a request.
    cv_.wait_for(lock, std::chrono::milliseconds(100),
                 [this] { return stopping_ || !inbox_.empty() || !cancels_.empty(); });
  }
}

}  // namespace hylora::scheduler
