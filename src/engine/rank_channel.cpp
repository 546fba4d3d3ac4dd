#include "engine/rank_channel.h"

#include <cstdio>
#include <optional>

#include "core/communicator.h"
#include "core/error.h"
#include "lora/normalized_adapter.h"

namespace hylora {

namespace {

enum Kind : int32_t { kStop = 1, kOpen, kRelease, kExecute, kLoad, kPin, kUnpin, kEvict, kForget };

void put_id(std::vector<int32_t>& w, SeqId s) {
  w.push_back(static_cast<int32_t>(static_cast<uint64_t>(s) & 0xffffffffu));
  w.push_back(static_cast<int32_t>(static_cast<uint64_t>(s) >> 32));
}
SeqId get_id(const int32_t* w) {
  return static_cast<SeqId>(static_cast<uint64_t>(static_cast<uint32_t>(w[0])) |
                            (static_cast<uint64_t>(static_cast<uint32_t>(w[1])) << 32));
}
void put_string(std::vector<int32_t>& w, const std::string& s) {
  w.push_back(static_cast<int32_t>(s.size()));
  for (unsigned char c : s) w.push_back(c);
}
std::string get_string(const int32_t* w, size_t& at) {
  const size_t n = static_cast<size_t>(w[at++]);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(w[at++]);
  return s;
}

// Sums a failure flag over the ranks: how many failed.
int failures(dist::Communicator& comm, bool failed) {
  Tensor f = Tensor::zeros({1}, DType::F32);
  f.f32()[0] = failed ? 1.0f : 0.0f;
  ExecCtx host;  // a host message (the in-process communicator; NCCL will stage it through the device, §6.2)
  comm.all_reduce_sum(host, f);
  return static_cast<int>(f.f32()[0]);
}

}  // namespace

LeaderChannel::LeaderChannel(dist::Communicator& comm) : comm_(comm) {
  HYLORA_CHECK(comm.rank() == 0, "internal: the leader channel runs on rank 0, not rank ", comm.rank());
}

LeaderChannel::~LeaderChannel() {
  try {
    stop();
  } catch (...) {  // the group already failed; its error is the one reported
  }
}

void LeaderChannel::stop() {
  auto lock = hold();
  if (stopped_) return;
  stopped_ = true;
  send(kStop, {});
}

void LeaderChannel::send(int32_t kind, const std::vector<int32_t>& words) {
  Tensor head = Tensor::zeros({2}, DType::I32);  // [kind, words]
  head.i32()[0] = kind;
  head.i32()[1] = static_cast<int32_t>(words.size());
  comm_.broadcast(host_, head, 0);
  if (words.empty()) return;
  Tensor body = Tensor::empty({static_cast<int64_t>(words.size())}, DType::I32);
  std::copy(words.begin(), words.end(), body.i32());
  comm_.broadcast(host_, body, 0);
}

void LeaderChannel::forget_released() {
  for (auto it = ids_.begin(); it != ids_.end();) {
    if (it->second.adapter.expired()) {
      send(kForget, {it->second.id});
      it = ids_.erase(it);
    } else {
      ++it;
    }
  }
}

int32_t LeaderChannel::id_of(const lora::NormalizedAdapter& a) const {
  auto it = ids_.find(&a);
  HYLORA_CHECK(it != ids_.end() && !it->second.adapter.expired(), "adapter \"", a.name,
               "\" was not loaded by this tensor-parallel executor (load adapters with Executor::load_adapter)");
  return it->second.id;
}

void LeaderChannel::open_sequence(SeqId expected) {
  std::vector<int32_t> w;
  put_id(w, expected);
  send(kOpen, w);
}

void LeaderChannel::release_sequence(SeqId seq) {
  std::vector<int32_t> w;
  put_id(w, seq);
  send(kRelease, w);
}

void LeaderChannel::execute(const std::vector<SeqWork>& works) {
  std::vector<int32_t> w{static_cast<int32_t>(works.size())};
  for (const SeqWork& s : works) {
    put_id(w, s.seq);
    w.push_back(s.adapter ? id_of(*s.adapter) : 0);
    w.push_back(static_cast<int32_t>(s.output));
    w.push_back(static_cast<int32_t>(s.tokens.size()));
    w.insert(w.end(), s.tokens.begin(), s.tokens.end());
  }
  forget_released();
  send(kExecute, w);
}

std::shared_ptr<const lora::NormalizedAdapter> LeaderChannel::load_adapter(
    const std::string& name, const std::string& dir,
    const std::function<std::shared_ptr<const lora::NormalizedAdapter>()>& load) {
  forget_released();
  const int32_t id = next_id_++;
  std::vector<int32_t> w{id};
  put_string(w, name);
  put_string(w, dir);
  send(kLoad, w);
  std::shared_ptr<const lora::NormalizedAdapter> a;
  std::string error;
  try {
    a = load();
  } catch (const std::exception& e) {
    error = e.what();
  }
  const int failed = failures(comm_, !error.empty());
  if (!error.empty()) fail(error);
  HYLORA_CHECK(failed == 0, "adapter \"", name, "\": ", failed, " other tensor-parallel rank(s) could not load ", dir,
               " (their messages are on standard error)");
  ids_[a.get()] = {a, id};
  return a;
}

void LeaderChannel::pin_adapter(const lora::NormalizedAdapter& a) { send(kPin, {id_of(a)}); }
void LeaderChannel::unpin_adapter(const lora::NormalizedAdapter& a) { send(kUnpin, {id_of(a)}); }
void LeaderChannel::evict_adapter(const lora::NormalizedAdapter& a) { send(kEvict, {id_of(a)}); }

void follow_leader(Executor& ex, dist::Communicator& comm) {
  std::map<int32_t, std::shared_ptr<const lora::NormalizedAdapter>> adapters;
  auto adapter = [&](int32_t id) -> std::shared_ptr<const lora::NormalizedAdapter> {
    if (id == 0) return nullptr;
    auto it = adapters.find(id);
    HYLORA_CHECK(it != adapters.end(), "rank ", comm.rank(), ": rank 0 named adapter id ", id,
                 ", which this rank does not hold (the ranks' calls diverged)");
    return it->second;
  };
  ExecCtx host;  // the messages are host tensors
  for (;;) {
    Tensor head = Tensor::zeros({2}, DType::I32);
    comm.broadcast(host, head, 0);
    const int32_t kind = head.i32()[0], n = head.i32()[1];
    Tensor body = Tensor::zeros({std::max<int32_t>(n, 1)}, DType::I32);  // [words]
    if (n > 0) comm.broadcast(host, body, 0);
    const int32_t* w = body.i32();
    // Errors of the call itself (a bad request, PoolExhausted) happen on rank 0 too, before anything changed; rank 0
    // reports them. A failed collective inside a step ends the group at the next broadcast.
    auto run = [&](const std::function<void()>& call) {
      try {
        call();
      } catch (const Error&) {
      }
    };
    switch (kind) {
      case kStop:
        return;
      case kOpen: {
        // The id check stays outside run(): a divergence must end the group, not be swallowed as a call's error.
        const SeqId expected = get_id(w);
        std::optional<SeqId> got;
        run([&] { got = ex.open_sequence(); });
        HYLORA_CHECK(!got || *got == expected, "rank ", comm.rank(), ": opened sequence ", got.value_or(0),
                     " where rank 0 opened ", expected, " (the ranks' calls diverged)");
        break;
      }
      case kRelease:
        run([&] { ex.release_sequence(get_id(w)); });
        break;
      case kExecute: {
        std::vector<SeqWork> works(static_cast<size_t>(w[0]));
        size_t at = 1;
        for (SeqWork& s : works) {
          s.seq = get_id(w + at);
          s.adapter = adapter(w[at + 2]);
          s.output = static_cast<RowOutput>(w[at + 3]);
          const int32_t tokens = w[at + 4];
          at += 5;
          s.tokens.assign(w + at, w + at + tokens);
          at += static_cast<size_t>(tokens);
        }
        run([&] { ex.execute(works); });
        break;
      }
      case kLoad: {
        const int32_t id = w[0];
        size_t at = 1;
        const std::string name = get_string(w, at);
        const std::string dir = get_string(w, at);
        std::shared_ptr<const lora::NormalizedAdapter> a;
        std::string error;
        try {
          a = ex.load_adapter(name, dir);
        } catch (const std::exception& e) {
          error = e.what();
          std::fprintf(stderr, "hylora: tensor-parallel rank %d: %s\n", comm.rank(), error.c_str());
        }
        if (failures(comm, !error.empty()) == 0) adapters[id] = a;
        break;
      }
      case kPin: {
        const auto a = adapter(w[0]);
        run([&] { ex.pin_adapter(a); });
        break;
      }
      case kUnpin: {
        const auto a = adapter(w[0]);
        run([&] { ex.unpin_adapter(*a); });
        break;
      }
      case kEvict: {
        const auto a = adapter(w[0]);
        run([&] { ex.evict_adapter(*a); });
        break;
      }
      case kForget:
        adapters.erase(w[0]);
        break;
      default:
        fail("rank ", comm.rank(), ": unknown message ", kind, " from rank 0");
    }
  }
}

}  // namespace hylora
