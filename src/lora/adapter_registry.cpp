#include "lora/adapter_registry.h"

#include <utility>

#include "lora/normalized_adapter.h"

namespace hylora::lora {

AdapterRegistry::AdapterRegistry(Loader loader, int64_t max_loaded, int64_t max_pinned)
    : loader_(std::move(loader)), max_loaded_(max_loaded), max_pinned_(max_pinned) {
  HYLORA_CHECK(max_loaded > 0, "--max-loaded-loras must be positive, got ", max_loaded);
}

void AdapterRegistry::load(const std::string& name, const std::string& dir, bool pinned) {
  if (name.empty() || name.find(':') != std::string::npos)
    throw AdapterError(AdapterError::Kind::kInvalid, "adapter name '" + name + "' must be non-empty without ':'");
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(name);
    if (it != entries_.end())
      throw AdapterError(AdapterError::Kind::kExists,
                         "adapter '" + name + (it->second.unloading ? "' is still being unloaded" : "' is already loaded"));
    if (pinned) {
      int64_t n = 0;
      for (auto& [_, e] : entries_) n += e.pinned;
      if (n + 1 > max_pinned_)
        throw AdapterError(AdapterError::Kind::kTooManyPinned,
                           "cannot pin '" + name + "': at most " + std::to_string(max_pinned_) +
                               " adapters may be pinned (one slot less than --max-loras-per-batch)");
    }
  }
  AdapterPtr a;
  try {
    a = loader_(name, dir);  // slow (reads files): outside the lock
  } catch (const Error& e) {
    throw AdapterError(AdapterError::Kind::kInvalid, e.what());
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.count(name)) throw AdapterError(AdapterError::Kind::kExists, "adapter '" + name + "' is already loaded");
  Entry& e = entries_[name];
  e.dir = dir;
  e.adapter = a;
  e.pinned = pinned;
  e.last_used = ++clock_;
  ++host_loads_;
  if (pinned) actions_.push_back({SlotAction::Kind::kPin, a});
  enforce_cache_limit_locked();
}

void AdapterRegistry::unload(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second.unloading)
    throw AdapterError(AdapterError::Kind::kNotFound, "adapter '" + name + "' is not loaded");
  it->second.unloading = true;
  if (it->second.pinned && it->second.adapter) actions_.push_back({SlotAction::Kind::kUnpin, it->second.adapter});
  erase_if_done_locked(name);
}

AdapterPtr AdapterRegistry::acquire(const std::string& name) {
  std::string dir;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) throw AdapterError(AdapterError::Kind::kNotFound, "adapter '" + name + "' is not loaded");
    Entry& e = it->second;
    if (e.unloading) throw AdapterError(AdapterError::Kind::kUnloading, "adapter '" + name + "' is being unloaded");
    ++e.refs;  // holds the entry while the adapter is re-read
    e.last_used = ++clock_;
    if (e.adapter) return e.adapter;
    dir = e.dir;
  }
  AdapterPtr a;
  try {
    a = loader_(name, dir);
  } catch (const Error& err) {
    release(name);
    throw AdapterError(AdapterError::Kind::kInvalid, std::string("re-reading adapter: ") + err.what());
  }
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_.at(name);
  if (!e.adapter) {
    e.adapter = a;
    ++host_loads_;
    enforce_cache_limit_locked();
  }
  return e.adapter;
}

void AdapterRegistry::release(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  if (it->second.refs > 0) --it->second.refs;
  erase_if_done_locked(name);
  enforce_cache_limit_locked();
}

void AdapterRegistry::erase_if_done_locked(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end() || !it->second.unloading || it->second.refs > 0) return;
  if (it->second.adapter) actions_.push_back({SlotAction::Kind::kEvict, it->second.adapter});
  entries_.erase(it);
}

void AdapterRegistry::enforce_cache_limit_locked() {
  // Over the limit, drop the least recently used idle, unpinned adapters. Held or pinned ones are never dropped,
  // so the cache may stay above the limit until their requests finish.
  for (;;) {
    int64_t loaded = 0;
    Entry* victim = nullptr;
    for (auto& [_, e] : entries_) {
      if (!e.adapter) continue;
      ++loaded;
      if (e.refs == 0 && !e.pinned && (!victim || e.last_used < victim->last_used)) victim = &e;
    }
    if (loaded <= max_loaded_ || !victim) return;
    actions_.push_back({SlotAction::Kind::kEvict, victim->adapter});
    victim->adapter.reset();
    ++host_evictions_;
  }
}

bool AdapterRegistry::contains(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  return it != entries_.end() && !it->second.unloading;
}

std::vector<AdapterInfo> AdapterRegistry::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AdapterInfo> out;
  for (auto& [name, e] : entries_)
    if (!e.unloading) out.push_back({name, e.dir, e.pinned, e.adapter != nullptr, e.refs});
  return out;
}

std::vector<SlotAction> AdapterRegistry::take_slot_actions() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(actions_, {});
}

int64_t AdapterRegistry::host_loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return host_loads_;
}
int64_t AdapterRegistry::host_evictions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return host_evictions_;
}
int64_t AdapterRegistry::in_host_memory() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (auto& [_, e] : entries_) n += e.adapter != nullptr;
  return n;
}

}  // namespace hylora::lora
