#pragma once
// Adapter names -> adapters, for a server that loads and unloads them at runtime (lora.md §5).
//
// * Host cache bounded by `max_loaded` (--max-loaded-loras): past it, the least recently used adapter that no
//   request holds and that is not pinned is dropped from host memory; its name stays registered and the next
//   request for it re-reads it from disk.
// * Refcounts: a request acquire()s its adapter when it is accepted and release()s it when it finishes.
// * Unload: the name refuses new requests at once; the entry goes (and its executor slot is freed) when the last
//   request holding it finishes.
// * Thread-safe: HTTP threads load/acquire/unload; the engine thread applies the slot actions (pin, unpin,
//   evict) that changes leave in take_slot_actions(), since only it may touch the executor's slots.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"

namespace hylora::lora {

struct NormalizedAdapter;
using AdapterPtr = std::shared_ptr<const NormalizedAdapter>;

// Why an adapter request was refused: the server maps these to HTTP statuses.
class AdapterError : public Error {
 public:
  enum class Kind { kNotFound, kUnloading, kExists, kInvalid, kTooManyPinned };
  AdapterError(Kind kind, const std::string& msg) : Error(msg), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct AdapterInfo {
  std::string name, dir;
  bool pinned = false, in_host_memory = false;
  int64_t refs = 0;
};

struct SlotAction {
  enum class Kind { kPin, kUnpin, kEvict };
  Kind kind;
  AdapterPtr adapter;  // kept alive until the engine thread has applied the action
};

class AdapterRegistry {
 public:
  // `loader(name, dir)` parses and validates an adapter (Executor::load_adapter); throws Error when it is bad.
  using Loader = std::function<AdapterPtr(const std::string& name, const std::string& dir)>;
  AdapterRegistry(Loader loader, int64_t max_loaded, int64_t max_pinned);

  // Loads and registers `name`; throws AdapterError (kExists, kInvalid, kTooManyPinned).
  void load(const std::string& name, const std::string& dir, bool pinned);
  // Marks `name` unloading (throws kNotFound); it disappears once no request holds it.
  void unload(const std::string& name);
  // A handle for one request; re-reads the adapter from disk when the cache had dropped it. Throws AdapterError.
  AdapterPtr acquire(const std::string& name);
  void release(const std::string& name);

  bool contains(const std::string& name) const;  // registered and not unloading
  std::vector<AdapterInfo> list() const;         // registered, not unloading, by name
  std::vector<SlotAction> take_slot_actions();

  int64_t host_loads() const;      // reads from disk (first loads and re-reads)
  int64_t host_evictions() const;  // drops from the host cache
  int64_t in_host_memory() const;

 private:
  struct Entry {
    std::string dir;
    AdapterPtr adapter;  // null while dropped from the host cache
    bool pinned = false, unloading = false;
    int64_t refs = 0;
    uint64_t last_used = 0;
  };
  void enforce_cache_limit_locked();
  void erase_if_done_locked(const std::string& name);

  Loader loader_;
  const int64_t max_loaded_, max_pinned_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::vector<SlotAction> actions_;
  uint64_t clock_ = 0;
  int64_t host_loads_ = 0, host_evictions_ = 0;
};

}  // namespace hylora::lora
