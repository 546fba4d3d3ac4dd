// y[M,N] = x[M,K] · W[N,K]ᵀ (+ bias[N]) (+ y), row-major, through cuBLASLt.
// Row-major y is column-major yᵀ [N, M]; cuBLASLt computes C[N,M] = op(A)·B with A = W viewed column-major [K, N]
// (ld ldw) transposed, B = x viewed column-major [K, M] (ld ldx), C = y (ld ldy). The bias epilogue adds a vector
// over C's rows, i.e. over N. fp32 uses CUBLAS_COMPUTE_32F (no TF32); bf16 uses CUBLAS_COMPUTE_32F with bf16 data.
#include "ops/cuda/gemm.h"

#include <cublasLt.h>

#include <map>
#include <mutex>
#include <tuple>

namespace hylora::cuda {

struct GemmHandle::Impl {
  cublasLtHandle_t lt = nullptr;
  void* ws = nullptr;
  size_t ws_bytes = 0;
  using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;
  std::map<Key, cublasLtMatmulAlgo_t> algos;
  std::mutex mu;
};

GemmHandle::GemmHandle(size_t workspace_bytes) : impl_(std::make_unique<Impl>()) {
  cublasLtCreate(&impl_->lt);
  impl_->ws_bytes = workspace_bytes;
  if (workspace_bytes && cudaMalloc(&impl_->ws, workspace_bytes) != cudaSuccess) {
    impl_->ws = nullptr;
    impl_->ws_bytes = 0;
  }
}

GemmHandle::~GemmHandle() {
  if (impl_->ws) cudaFree(impl_->ws);
  if (impl_->lt) cublasLtDestroy(impl_->lt);
}

cudaError_t gemm(GemmHandle& h, DType dt, const void* x, int64_t ldx, const void* W, int64_t ldw, void* y,
                 int64_t ldy, int64_t M, int64_t N, int64_t K, const void* bias, bool accumulate,
                 cudaStream_t stream) {
  return gemm(h, dt, dt, x, ldx, W, ldw, y, ldy, M, N, K, bias, accumulate, stream);
}

cudaError_t gemm(GemmHandle& h, DType in, DType out, const void* x, int64_t ldx, const void* W, int64_t ldw, void* y,
                 int64_t ldy, int64_t M, int64_t N, int64_t K, const void* bias, bool accumulate,
                 cudaStream_t stream) {
  if (M == 0 || N == 0) return cudaSuccess;
  if (in == DType::f32 && out == DType::bf16) return cudaErrorInvalidValue;  // not a mode the engine uses
  auto* im = h.impl();
  const cudaDataType_t ty = in == DType::f32 ? CUDA_R_32F : CUDA_R_16BF;       // x, W
  const cudaDataType_t ty_out = out == DType::f32 ? CUDA_R_32F : CUDA_R_16BF;  // y, bias
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasStatus_t st = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  const cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
  if (st == CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof(tA));
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof(tB));
    if (bias) {
      const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi));
      cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
      cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &ty_out, sizeof(ty_out));
    }
    st = cublasLtMatrixLayoutCreate(&la, ty, K, N, ldw);
  }
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&lb, ty, K, M, ldx);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&lc, ty_out, N, M, ldy);
  cublasLtMatmulAlgo_t algo{};
  bool have = false;
  if (st == CUBLAS_STATUS_SUCCESS) {
    const int align = static_cast<int>(((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(W) |
                                            reinterpret_cast<uintptr_t>(y) | reinterpret_cast<uintptr_t>(bias)) & 15) << 4);
    const GemmHandle::Impl::Key key{(static_cast<int>(in) | static_cast<int>(out) << 1) | align, M, N, K, ldx, ldw, ldy, bias != nullptr, accumulate};
    std::lock_guard<std::mutex> lock(im->mu);
    auto it = im->algos.find(key);
    if (it != im->algos.end()) {
      algo = it->second;
      have = true;
    } else {
      cublasLtMatmulPreference_t pref = nullptr;
      cublasLtMatmulPreferenceCreate(&pref);
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &im->ws_bytes,
                                           sizeof(im->ws_bytes));
      cublasLtMatmulHeuristicResult_t res{};
      int found = 0;
      st = cublasLtMatmulAlgoGetHeuristic(im->lt, op, la, lb, lc, lc, pref, 1, &res, &found);
      cublasLtMatmulPreferenceDestroy(pref);
      if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
        algo = res.algo;
        have = true;
        im->algos.emplace(key, algo);
      }
    }
  }
  if (st == CUBLAS_STATUS_SUCCESS && have)
    st = cublasLtMatmul(im->lt, op, &alpha, W, la, x, lb, &beta, y, lc, y, lc, &algo, im->ws, im->ws_bytes, stream);
  if (lc) cublasLtMatrixLayoutDestroy(lc);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (op) cublasLtMatmulDescDestroy(op);
  if (st != CUBLAS_STATUS_SUCCESS || !have) return cudaErrorUnknown;
  return cudaGetLastError();
}

}  // namespace hylora::cuda
