// The CUDA side of ops/device.h's collectives: NCCL, loaded with dlopen on first use (like cuBLASLt in
// cublaslt_lazy.cpp: a single-GPU run never maps it). The functions are resolved into a table by name, with the
// header's types, so nothing here links against libnccl and a missing library is one clear error naming where it was
// looked for (HYLORA_NCCL_LIBRARY overrides).
#include <cuda_runtime.h>
#include <dlfcn.h>

#if __has_include(<nccl.h>)
#include <nccl.h>
#define HYLORA_HAVE_NCCL_HEADER 1
#endif

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "ops/device.h"

#define HYLORA_STR2(x) #x
#define HYLORA_STR(x) HYLORA_STR2(x)

namespace hylora::ops::cuda_backend {

int device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

void set_device(int index) {
  const cudaError_t e = cudaSetDevice(index);
  if (e != cudaSuccess) fail("cannot use GPU ", index, " (", device_count(), " visible): ", cudaGetErrorString(e));
}

#ifdef HYLORA_HAVE_NCCL_HEADER
namespace {

struct NcclApi {
  decltype(&::ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&::ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&::ncclCommDestroy) comm_destroy = nullptr;
  decltype(&::ncclCommAbort) comm_abort = nullptr;
  decltype(&::ncclAllReduce) all_reduce = nullptr;
  decltype(&::ncclAllGather) all_gather = nullptr;
  decltype(&::ncclBroadcast) broadcast = nullptr;
  decltype(&::ncclGetErrorString) error_string = nullptr;
};

// Where libnccl is looked for, in order: $HYLORA_NCCL_LIBRARY, the soname (LD_LIBRARY_PATH, ld.so.cache), the CUDA
// toolkit this binary was built with.
const NcclApi& nccl() {
  static const NcclApi api = [] {
    std::string tried;
    void* h = nullptr;
    auto attempt = [&](const std::string& path) {
      if (h || path.empty()) return;
      h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) tried += "\n  " + path + ": " + dlerror();
    };
    if (const char* env = std::getenv("HYLORA_NCCL_LIBRARY")) attempt(env);
    attempt("libnccl.so." HYLORA_STR(NCCL_MAJOR));
#ifdef HYLORA_CUDA_LIBRARY_DIR
    attempt(std::string(HYLORA_CUDA_LIBRARY_DIR) + "/libnccl.so." HYLORA_STR(NCCL_MAJOR));
#endif
    if (!h)
      fail("multi-GPU needs NCCL (libnccl.so." HYLORA_STR(NCCL_MAJOR) "), which could not be loaded; set "
           "HYLORA_NCCL_LIBRARY to its path. Tried:", tried);
    NcclApi a;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      if (!fn) fail("NCCL library has no ", name, " (too old? built against NCCL ", NCCL_MAJOR, ".", NCCL_MINOR, ")");
    };
    sym(a.get_unique_id, "ncclGetUniqueId");
    sym(a.comm_init_rank, "ncclCommInitRank");
    sym(a.comm_destroy, "ncclCommDestroy");
    sym(a.comm_abort, "ncclCommAbort");
    sym(a.all_reduce, "ncclAllReduce");
    sym(a.all_gather, "ncclAllGather");
    sym(a.broadcast, "ncclBroadcast");
    sym(a.error_string, "ncclGetErrorString");
    return a;
  }();
  return api;
}

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) fail("NCCL ", what, " failed: ", nccl().error_string(r));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::I32: return ncclInt32;
    case DType::F64: return ncclFloat64;
  }
  fail("internal: no NCCL type for ", dtype_name(t));
}

ncclComm_t comm_of(const std::shared_ptr<void>& c) {
  HYLORA_CHECK(c != nullptr, "internal: collective on a group that was not joined");
  return static_cast<ncclComm_t>(c.get());
}
cudaStream_t stream_of(ExecCtx& ctx) { return static_cast<cudaStream_t>(ctx.stream); }
void on_gpu(const Tensor& t, const char* op) {
  HYLORA_CHECK(t.device() == Device::CUDA && t.contiguous(), "internal: ", op, " needs a contiguous GPU tensor");
}
}  // namespace

CollectiveId collective_unique_id() {
  ncclUniqueId id;
  check(nccl().get_unique_id(&id), "ncclGetUniqueId");
  CollectiveId out{};
  static_assert(sizeof(id) == std::tuple_size_v<CollectiveId>, "ncclUniqueId size");
  std::memcpy(out.data(), &id, sizeof(id));
  return out;
}

std::shared_ptr<void> collective_join(const CollectiveId& id, int rank, int size) {
  ncclUniqueId nid;
  std::memcpy(&nid, id.data(), sizeof(nid));
  ncclComm_t comm = nullptr;
  check(nccl().comm_init_rank(&comm, size, nid, rank), "ncclCommInitRank");
  // Destroying waits for this rank's queued collectives; a group torn down by an error is aborted instead (a peer
  // may be gone, and destroy would wait for it).
  return std::shared_ptr<void>(comm, [](void* c) {
    if (std::uncaught_exceptions() > 0)
      nccl().comm_abort(static_cast<ncclComm_t>(c));
    else
      nccl().comm_destroy(static_cast<ncclComm_t>(c));
  });
}

void collective_all_reduce_sum(ExecCtx& ctx, const std::shared_ptr<void>& comm, Tensor& t) {
  on_gpu(t, "all_reduce");
  check(nccl().all_reduce(t.raw(), t.raw(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), ncclSum,
                          comm_of(comm), stream_of(ctx)),
        "ncclAllReduce");
}

void collective_all_gather(ExecCtx& ctx, const std::shared_ptr<void>& comm, const Tensor& local, Tensor& out) {
  on_gpu(local, "all_gather");
  on_gpu(out, "all_gather");
  check(nccl().all_gather(local.raw(), out.raw(), static_cast<size_t>(local.numel()), nccl_type(local.dtype()),
                          comm_of(comm), stream_of(ctx)),
        "ncclAllGather");
}

void collective_broadcast(ExecCtx& ctx, const std::shared_ptr<void>& comm, Tensor& t, int root) {
  on_gpu(t, "broadcast");
  check(nccl().broadcast(t.raw(), t.raw(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root, comm_of(comm),
                         stream_of(ctx)),
        "ncclBroadcast");
}

#else  // a CUDA toolkit without nccl.h: the single-GPU build works, multi-GPU says why it cannot
namespace {
[[noreturn]] void no_nccl() {
  fail("multi-GPU: this binary was built without NCCL's header (nccl.h was not found next to the CUDA toolkit); "
       "rebuild with NCCL installed");
}
}  // namespace
CollectiveId collective_unique_id() { no_nccl(); }
std::shared_ptr<void> collective_join(const CollectiveId&, int, int) { no_nccl(); }
void collective_all_reduce_sum(ExecCtx&, const std::shared_ptr<void>&, Tensor&) { no_nccl(); }
void collective_all_gather(ExecCtx&, const std::shared_ptr<void>&, const Tensor&, Tensor&) { no_nccl(); }
void collective_broadcast(ExecCtx&, const std::shared_ptr<void>&, Tensor&, int) { no_nccl(); }
#endif

}  // namespace hylora::ops::cuda_backend
