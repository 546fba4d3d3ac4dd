// cuBLASLt, loaded on first use. Linking libcublasLt makes every start of the binary map and initialise it (~0.12 s
// and ~210 MB resident on the 2-core CI machine), also for `hylora --help`, `tokenize` and every CPU test that runs
// the binary. This file defines the cuBLASLt entry points the GEMM code calls (gemm.cu), with the header's exact
// signatures; each resolves the real function with dlopen/dlsym the first time it is called. A GPU run pays the
// load once, when the first GEMM handle is made. A new cuBLASLt call in the code is a link error until it gets a
// line here.
#include <cublasLt.h>
#include <dlfcn.h>

#include <cstdio>
#include <mutex>
#include <string>

#define HYLORA_STR2(x) #x
#define HYLORA_STR(x) HYLORA_STR2(x)

namespace {

// The library: by soname first (LD_LIBRARY_PATH, ld.so.cache), then where the toolkit we built against keeps it.
void* library() {
  static void* handle = [] {
    const std::string soname = "libcublasLt.so." HYLORA_STR(CUBLAS_VER_MAJOR);
    void* h = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
#ifdef HYLORA_CUDA_LIBRARY_DIR
    if (!h) h = dlopen((std::string(HYLORA_CUDA_LIBRARY_DIR) + "/" + soname).c_str(), RTLD_NOW | RTLD_LOCAL);
#endif
    if (!h) std::fprintf(stderr, "hylora: cannot load %s (cuBLASLt, for GEMMs on the GPU): %s\n", soname.c_str(), dlerror());
    return h;
  }();
  return handle;
}

void* symbol(const char* name) {
  void* lib = library();
  void* s = lib ? dlsym(lib, name) : nullptr;
  if (lib && !s) std::fprintf(stderr, "hylora: cuBLASLt has no %s\n", name);
  return s;
}

}  // namespace

// Defines `name params` forwarding `args` to the real function; a missing library reads as "not initialised", which
// gemm() turns into an error naming the GEMM.
#define HYLORA_LAZY_CUBLASLT(name, params, args)                                    \
  extern "C" cublasStatus_t CUBLASWINAPI name params {                             \
    using Fn = cublasStatus_t(*) params;                                           \
    static const Fn real = reinterpret_cast<Fn>(symbol(#name));                    \
    return real ? real args : CUBLAS_STATUS_NOT_INITIALIZED;                       \
  }

HYLORA_LAZY_CUBLASLT(cublasLtCreate, (cublasLtHandle_t * h), (h))
HYLORA_LAZY_CUBLASLT(cublasLtDestroy, (cublasLtHandle_t h), (h))
HYLORA_LAZY_CUBLASLT(cublasLtMatmul,
                     (cublasLtHandle_t h, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                      cublasLtMatrixLayout_t Ad, const void* B, cublasLtMatrixLayout_t Bd, const void* beta,
                      const void* C, cublasLtMatrixLayout_t Cd, void* D, cublasLtMatrixLayout_t Dd,
                      const cublasLtMatmulAlgo_t* algo, void* ws, size_t ws_bytes, cudaStream_t stream),
                     (h, desc, alpha, A, Ad, B, Bd, beta, C, Cd, D, Dd, algo, ws, ws_bytes, stream))
HYLORA_LAZY_CUBLASLT(cublasLtMatmulAlgoGetHeuristic,
                     (cublasLtHandle_t h, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t Ad,
                      cublasLtMatrixLayout_t Bd, cublasLtMatrixLayout_t Cd, cublasLtMatrixLayout_t Dd,
                      cublasLtMatmulPreference_t pref, int requested, cublasLtMatmulHeuristicResult_t results[],
                      int* returned),
                     (h, desc, Ad, Bd, Cd, Dd, pref, requested, results, returned))
HYLORA_LAZY_CUBLASLT(cublasLtMatmulDescCreate,
                     (cublasLtMatmulDesc_t * desc, cublasComputeType_t compute, cudaDataType_t scale),
                     (desc, compute, scale))
HYLORA_LAZY_CUBLASLT(cublasLtMatmulDescDestroy, (cublasLtMatmulDesc_t desc), (desc))
HYLORA_LAZY_CUBLASLT(cublasLtMatmulDescSetAttribute,
                     (cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const void* buf, size_t n),
                     (desc, attr, buf, n))
HYLORA_LAZY_CUBLASLT(cublasLtMatmulPreferenceCreate, (cublasLtMatmulPreference_t * pref), (pref))
HYLORA_LAZY_CUBLASLT(cublasLtMatmulPreferenceDestroy, (cublasLtMatmulPreference_t pref), (pref))
HYLORA_LAZY_CUBLASLT(cublasLtMatmulPreferenceSetAttribute,
                     (cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                      size_t n),
                     (pref, attr, buf, n))
HYLORA_LAZY_CUBLASLT(cublasLtMatrixLayoutCreate,
                     (cublasLtMatrixLayout_t * layout, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld),
                     (layout, type, rows, cols, ld))
HYLORA_LAZY_CUBLASLT(cublasLtMatrixLayoutDestroy, (cublasLtMatrixLayout_t layout), (layout))
