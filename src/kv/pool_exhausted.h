#pragma once
// PoolExhausted: a step needs more than a pool has left (KV pages, recurrent state slots, adapter slots, rows of one
// step). Thrown before anything changes, so a scheduler can shrink the step, preempt, or wait and retry.
#include <string>

#include "core/error.h"

namespace hylora {

class PoolExhausted : public Error {
 public:
  enum class Kind { kKvPages, kStateSlots, kAdapterSlots, kBatchTokens };
  PoolExhausted(Kind kind, const std::string& msg) : Error(msg), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

}  // namespace hylora
