#include "dist/in_process_communicator.h"

#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include "core/error.h"
#include "ops/device.h"
#include "ops/elementwise.h"

namespace hylora::dist {

namespace {

// A tensor as rows of contiguous bytes (dim 0 may be strided), so collectives copy strided views correctly.
struct Rows {
  char* base;
  int64_t count, bytes, stride;  // rows, bytes per row, bytes between rows
};
Rows rows_of(const Tensor& t) {
  if (t.ndim() == 0 || t.contiguous())
    return {static_cast<char*>(t.raw()), 1, static_cast<int64_t>(t.nbytes()), static_cast<int64_t>(t.nbytes())};
  const int64_t es = static_cast<int64_t>(dtype_size(t.dtype()));
  return {static_cast<char*>(t.raw()), t.dim(0), t.row_size() * es, t.ld() * es};
}

void check_host(const Tensor& t, const char* op) {
  if (!t.defined() || t.device() != Device::CPU) fail(op, ": internal: a staged tensor is not on the host");
}

void check_defined(const Tensor& t, const char* op) {
  if (!t.defined()) fail(op, ": the in-process communicator needs a defined tensor");
}

// The host copy a collective works on: `t` itself on the host; for a device tensor a page-locked copy, read after
// everything queued on ctx.stream (ops::copy_tensor synchronises the stream). A strided device view goes through a
// contiguous scratch copy first (float32 2-D views, as the ops make them).
Tensor stage_in(ExecCtx& ctx, const Tensor& t, bool read) {
  if (t.device() == Device::CPU) return t;
  HYLORA_CHECK(ctx.device == t.device(), "internal: a collective on a device tensor with a host execution context");
  Tensor host = Tensor::empty(t.shape(), t.dtype(), ops::host_output_allocator(t.device()));
  if (!read) return host;
  if (t.contiguous()) {
    ops::copy_tensor(ctx, t, host);
  } else {
    Tensor packed = ctx.scratch.tensor(t.shape(), t.dtype());
    ops::copy(ctx, t, packed);
    ops::copy_tensor(ctx, packed, host);
  }
  return host;
}

// Writes the host result back into the device tensor `t` (no-op when `t` is the host tensor itself).
void stage_out(ExecCtx& ctx, const Tensor& host, Tensor& t) {
  if (t.device() == Device::CPU) return;
  if (t.contiguous()) {
    ops::copy_tensor(ctx, host, t);
  } else {
    Tensor packed = ctx.scratch.tensor(t.shape(), t.dtype());
    ops::copy_tensor(ctx, host, packed);
    ops::copy(ctx, packed, t);
  }
}

}  // namespace

InProcessGroup::InProcessGroup(int size) : size_(size), slots_(size, nullptr) {
  if (size < 1) fail("in-process communicator: size must be at least 1, found ", size);
}

void InProcessGroup::barrier() {
  std::unique_lock<std::mutex> lock(mu_);
  if (aborted_) fail("another rank failed");
  const long gen = generation_;
  if (++arrived_ == size_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return generation_ != gen || aborted_; });
  if (generation_ == gen) fail("another rank failed");
}

void InProcessGroup::abort() {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_ = true;
  cv_.notify_all();
}

void InProcessCommunicator::all_reduce_sum(ExecCtx& ctx, Tensor& t) {
  check_defined(t, "all_reduce_sum");
  Tensor h = stage_in(ctx, t, true);
  host_all_reduce_sum(h);
  stage_out(ctx, h, t);
}

void InProcessCommunicator::all_gather(ExecCtx& ctx, const Tensor& local, Tensor& out) {
  check_defined(local, "all_gather");
  check_defined(out, "all_gather");
  const Tensor l = stage_in(ctx, local, true);
  Tensor o = stage_in(ctx, out, false);
  host_all_gather(l, o);
  stage_out(ctx, o, out);
}

void InProcessCommunicator::broadcast(ExecCtx& ctx, Tensor& t, int root) {
  check_defined(t, "broadcast");
  Tensor h = stage_in(ctx, t, rank_ == root);
  host_broadcast(h, root);
  stage_out(ctx, h, t);
}

void InProcessCommunicator::all_gather_columns(ExecCtx& ctx, const Tensor& local, Tensor& out) {
  check_defined(local, "all_gather_columns");
  check_defined(out, "all_gather_columns");
  const Tensor l = stage_in(ctx, local, true);
  Tensor o = stage_in(ctx, out, false);
  ExecCtx host;  // the staged copies are host tensors
  all_gather_columns_on_host(*this, host, l, o);
  stage_out(ctx, o, out);
}

void InProcessCommunicator::host_all_reduce_sum(Tensor& t) {
  check_host(t, "all_reduce_sum");
  if (t.dtype() != DType::F32) fail("all_reduce_sum: float32 only, found ", dtype_name(t.dtype()));
  group_->slot(rank_) = &t;
  group_->barrier();  // every rank has published its tensor
  // Sum in rank order into a private copy, so every rank computes bit-identical values.
  Tensor sum = Tensor::empty(t.shape());  // contiguous, same shape
  for (int r = 0; r < size(); ++r) {
    const Tensor& other = *group_->slot(r);
    if (other.shape() != t.shape()) fail("all_reduce_sum: rank ", r, " has shape ", shape_str(other.shape()),
                                         ", rank ", rank_, " has ", shape_str(t.shape()));
    const Rows src = rows_of(other);
    const int64_t per_row = src.bytes / static_cast<int64_t>(sizeof(float));
    float* dst = sum.f32();
    for (int64_t i = 0; i < src.count; ++i) {
      const float* s = reinterpret_cast<const float*>(src.base + i * src.stride);
      float* d = dst + i * per_row;
      if (r == 0)
        std::memcpy(d, s, src.bytes);
      else
        for (int64_t j = 0; j < per_row; ++j) d[j] += s[j];
    }
  }
  group_->barrier();  // every rank has read every other rank's tensor: now each may overwrite its own
  copy_into(sum, t);
}

void InProcessCommunicator::host_all_gather(const Tensor& local, Tensor& out) {
  check_host(local, "all_gather");
  check_host(out, "all_gather");
  if (!out.contiguous()) fail("all_gather: the output must be contiguous");
  group_->slot(rank_) = &local;
  group_->barrier();
  const size_t each = local.nbytes();
  if (out.nbytes() != each * static_cast<size_t>(size()))
    fail("all_gather: output of ", out.nbytes(), " bytes for ", size(), " ranks of ", each, " bytes");
  for (int r = 0; r < size(); ++r) {
    const Tensor& other = *group_->slot(r);
    if (other.shape() != local.shape()) fail("all_gather: rank ", r, " has shape ", shape_str(other.shape()),
                                             ", rank ", rank_, " has ", shape_str(local.shape()));
    const Rows src = rows_of(other);
    char* dst = static_cast<char*>(out.raw()) + each * r;
    for (int64_t i = 0; i < src.count; ++i) std::memcpy(dst + i * src.bytes, src.base + i * src.stride, src.bytes);
  }
  group_->barrier();
}

void InProcessCommunicator::host_broadcast(Tensor& t, int root) {
  check_host(t, "broadcast");
  if (root < 0 || root >= size()) fail("broadcast: root ", root, " is not a rank of a group of ", size());
  group_->slot(rank_) = &t;
  group_->barrier();
  if (rank_ != root) {
    const Tensor& src = *group_->slot(root);
    if (src.shape() != t.shape() || src.dtype() != t.dtype())
      fail("broadcast: root has ", shape_str(src.shape()), " ", dtype_name(src.dtype()), ", rank ", rank_, " has ",
           shape_str(t.shape()), " ", dtype_name(t.dtype()));
    const Rows s = rows_of(src), d = rows_of(t);
    for (int64_t i = 0; i < s.count; ++i) std::memcpy(d.base + i * d.stride, s.base + i * s.stride, s.bytes);
  }
  group_->barrier();  // the root's tensor is not touched again until everyone has copied it
}

void run_ranks(int size, const std::function<void(Communicator&)>& body) {
  auto group = std::make_shared<InProcessGroup>(size);
  std::vector<std::exception_ptr> errors(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r)
    threads.emplace_back([&, r] {
      InProcessCommunicator comm(group, r);
      try {
        body(comm);
      } catch (...) {
        errors[r] = std::current_exception();
        group->abort();
      }
    });
  for (std::thread& t : threads) t.join();
  // The first rank that failed for its own reason (not because another rank aborted the group).
  std::string first;
  for (int r = 0; r < size; ++r) {
    if (!errors[r]) continue;
    try {
      std::rethrow_exception(errors[r]);
    } catch (const std::exception& e) {
      const std::string msg = std::string("rank ") + std::to_string(r) + ": " + e.what();
      if (std::string(e.what()) != "another rank failed") fail(msg);
      if (first.empty()) first = msg;
    }
  }
  if (!first.empty()) fail(first);
}

}  // namespace hylora::dist
