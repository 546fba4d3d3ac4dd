#include "server/generation.h"

#include "lora/adapter_registry.h"
#include "server/metrics.h"
#include "text/tokenizer.h"

namespace hylora::server {

void Channel::push(ChoiceEvent ev) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ev.kind == ChoiceEvent::Kind::kFinish) --open_;
    q_.push_back(std::move(ev));
  }
  cv_.notify_all();
}

std::optional<ChoiceEvent> Channel::pop(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return !q_.empty() || open_ <= 0; });
  if (q_.empty()) return std::nullopt;
  ChoiceEvent ev = std::move(q_.front());
  q_.pop_front();
  return ev;
}

bool Channel::done() {
  std::lock_guard<std::mutex> lock(mu_);
  return open_ <= 0 && q_.empty();
}

ChoiceSink::ChoiceSink(std::shared_ptr<Channel> channel, int choice, ChoiceSinkOptions options)
    : channel_(std::move(channel)), choice_(choice), opt_(std::move(options)) {
  if (opt_.tokenizer) decoder_ = std::make_unique<text::StreamDecoder>(*opt_.tokenizer, /*skip_special_tokens=*/true);
  for (auto& s : opt_.stop) max_stop_ = std::max(max_stop_, s.size());
  start_ = last_ = std::chrono::steady_clock::now();
}

ChoiceSink::~ChoiceSink() = default;

// Text that can no longer change: all of it at the end; otherwise hold back what could still become the start of
// a stop string, and never split a UTF-8 character.
std::string ChoiceSink::take_final_text(bool all) {
  size_t end = text_.size();
  if (!all && max_stop_ > 1) {
    end = text_.size() >= max_stop_ - 1 ? text_.size() - (max_stop_ - 1) : 0;
    while (end > emitted_ && end < text_.size() && (static_cast<unsigned char>(text_[end]) & 0xC0) == 0x80) --end;
  }
  if (end <= emitted_) return {};
  std::string out = text_.substr(emitted_, end - emitted_);
  emitted_ = end;
  return out;
}

bool ChoiceSink::on_token(const scheduler::TokenEvent& ev) {
  const auto now = std::chrono::steady_clock::now();
  if (opt_.metrics) {
    if (first_) opt_.metrics->ttft.observe(std::chrono::duration<double>(now - start_).count());
    else opt_.metrics->itl.observe(std::chrono::duration<double>(now - last_).count());
  }
  first_ = false;
  last_ = now;
  ChoiceEvent out;
  out.choice = choice_;
  out.token = ev.token;
  if (decoder_ && !stopped_) {
    const size_t before = text_.size();
    text_ += decoder_->push(ev.token.id);
    // A stop string may end inside the new text; search from where it could have started.
    const size_t from = before >= max_stop_ ? before - max_stop_ + 1 : 0;
    size_t cut = std::string::npos;
    for (auto& s : opt_.stop) {
      const size_t p = text_.find(s, from);
      if (p != std::string::npos && p < cut) cut = p, matched_ = s;
    }
    if (cut != std::string::npos) {
      text_.resize(cut);
      stopped_ = true;
    }
    out.text = take_final_text(stopped_);
  }
  channel_->push(std::move(out));
  return stopped_;
}

void ChoiceSink::on_prompt_logprobs(int64_t start, const std::vector<double>& logprobs) {
  ChoiceEvent out;
  out.kind = ChoiceEvent::Kind::kPromptLogprobs;
  out.choice = choice_;
  out.prompt_logprob_start = start;
  out.prompt_logprobs = logprobs;
  channel_->push(std::move(out));
}

void ChoiceSink::on_finish(scheduler::FinishReason reason, const std::string& message) {
  if (opt_.registry && !opt_.adapter.empty()) opt_.registry->release(opt_.adapter);
  ChoiceEvent out;
  out.kind = ChoiceEvent::Kind::kFinish;
  out.choice = choice_;
  out.reason = reason;
  out.message = message;
  out.matched_stop = matched_;
  if (decoder_ && !stopped_) text_ += decoder_->finish();
  out.text = take_final_text(true);
  channel_->push(std::move(out));
}

}  // namespace hylora::server
