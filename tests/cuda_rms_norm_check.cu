// GPU check of the CUDA RMSNorm against the CPU reference op over a sweep of shapes. Built when nvcc is present;
// run on a GPU machine (`build/tests/hylora_cuda_checks`); CI (no GPU) only compiles it.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "ops/cuda/rms_norm.cuh"
#include "ops/elementwise.h"

int main() {
  using namespace hylora;
  int failures = 0;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t d : {1, 31, 64, 257, 4096}) {
    for (bool one_plus : {false, true}) {
      const int64_t rows = 37;
      Tensor x = Tensor::empty({rows, d}), w = Tensor::empty({d});
      for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = nd(rng);
      for (int64_t i = 0; i < d; ++i) w.f32()[i] = nd(rng);
      Tensor ref = ops::rms_norm(x, w, 1e-6f, one_plus ? ops::NormKind::kOnePlus : ops::NormKind::kPlain);
      float *dx, *dw, *dy;
      cudaMalloc(&dx, x.nbytes());
      cudaMalloc(&dw, w.nbytes());
      cudaMalloc(&dy, x.nbytes());
      cudaMemcpy(dx, x.f32(), x.nbytes(), cudaMemcpyHostToDevice);
      cudaMemcpy(dw, w.f32(), w.nbytes(), cudaMemcpyHostToDevice);
      cudaError_t err = cuda::rms_norm_f32(dx, dw, dy, rows, d, 1e-6f, one_plus, nullptr);
      std::vector<float> got(x.numel());
      cudaMemcpy(got.data(), dy, x.nbytes(), cudaMemcpyDeviceToHost);
      cudaFree(dx);
      cudaFree(dw);
      cudaFree(dy);
      double worst = 0;
      for (int64_t i = 0; i < x.numel(); ++i) worst = std::max(worst, (double)std::fabs(got[i] - ref.f32()[i]));
      bool ok = err == cudaSuccess && worst < 1e-4;
      failures += !ok;
      std::printf("%s rms_norm d=%lld one_plus=%d max|diff|=%.3g %s\n", ok ? "PASS" : "FAIL", (long long)d, one_plus,
                  worst, cudaGetErrorString(err));
    }
  }
  std::printf("%d passed, %d failed\n", 10 - failures, failures);
  return failures ? 1 : 0;
}
