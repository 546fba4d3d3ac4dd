// GPU check of the CUDA RMSNorm against a double-precision reference (the CPU op's definition) over a sweep of
// shapes. Built when nvcc is present; run on a GPU machine (`build/tests/hylora_cuda_checks`, or standalone:
// `nvcc -std=c++17 -arch=sm_90a -Isrc tests/cuda_rms_norm_check.cu src/ops/cuda/rms_norm.cu`); CI (no GPU) only
// compiles it. Standalone on purpose: the GPU machine has no OpenBLAS/nlohmann headers.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "ops/cuda/rms_norm.cuh"

int main() {
  using namespace hylora;
  static_assert(sizeof(float) == 4);
  int failures = 0;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t d : {1, 31, 64, 257, 4096}) {
    for (bool one_plus : {false, true}) {
      const int64_t rows = 37;
      std::vector<float> x(rows * d), w(d), ref(rows * d);
      for (auto& v : x) v = nd(rng);
      for (auto& v : w) v = nd(rng);
      for (int64_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int64_t i = 0; i < d; ++i) ss += (double)x[r * d + i] * x[r * d + i];
        const double inv = 1.0 / std::sqrt(ss / d + 1e-6);
        for (int64_t i = 0; i < d; ++i) ref[r * d + i] = (float)(x[r * d + i] * inv * (one_plus ? 1.0 + w[i] : w[i]));
      }
      const size_t xb = x.size() * sizeof(float), wb = w.size() * sizeof(float);
      float *dx, *dw, *dy;
      cudaMalloc(&dx, xb);
      cudaMalloc(&dw, wb);
      cudaMalloc(&dy, xb);
      cudaMemcpy(dx, x.data(), xb, cudaMemcpyHostToDevice);
      cudaMemcpy(dw, w.data(), wb, cudaMemcpyHostToDevice);
      cudaError_t err = cuda::rms_norm_f32(dx, dw, dy, rows, d, 1e-6f, one_plus, nullptr);
      if (err == cudaSuccess) err = cudaDeviceSynchronize();
      std::vector<float> got(x.size());
      cudaMemcpy(got.data(), dy, xb, cudaMemcpyDeviceToHost);
      cudaFree(dx);
      cudaFree(dw);
      cudaFree(dy);
      double worst = 0;
      for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, (double)std::fabs(got[i] - ref[i]));
      bool ok = err == cudaSuccess && worst < 1e-4;
      failures += !ok;
      std::printf("%s rms_norm d=%lld one_plus=%d max|diff|=%.3g %s\n", ok ? "PASS" : "FAIL", (long long)d, one_plus,
                  worst, cudaGetErrorString(err));
    }
  }
  std::printf("%d passed, %d failed\n", 10 - failures, failures);
  return failures ? 1 : 0;
}
