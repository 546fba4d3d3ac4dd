// CPU emulation shim (testing only): just enough of the CUDA runtime for attention_decode.cu and sampling*.cu.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>
#include <algorithm>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n)
#define __shared__ static
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
typedef void* cudaStream_t;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
struct dim3 { unsigned x = 1, y = 1, z = 1; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
struct uint4 { unsigned x, y, z, w; };
struct uint2 { unsigned x, y; };
struct float4 { float x, y, z, w; };
struct float2 { float x, y; };
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
struct EmuBlock {
  std::barrier<>* block;
  std::barrier<>* warp[32];
  uint64_t xch[32][32];
};
inline thread_local EmuBlock* emu_blk = nullptr;
inline void __syncthreads() { emu_blk->block->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu_blk->warp[threadIdx.x / 32]->arrive_and_wait(); }
template <typename V>
inline V emu_shfl(V v, int src) {
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(V));
  emu_blk->xch[w][l] = b;
  __syncwarp();
  uint64_t r = emu_blk->xch[w][src & 31];
  __syncwarp();
  V out;
  std::memcpy(&out, &r, sizeof(V));
  return out;
}
template <typename V> inline V __shfl_sync(unsigned, V v, int src) { return emu_shfl(v, src); }
template <typename V> inline V __shfl_xor_sync(unsigned, V v, int o) { return emu_shfl(v, (threadIdx.x % 32) ^ o); }
template <typename V> inline V __shfl_up_sync(unsigned, V v, int o) {
  const int l = threadIdx.x % 32;
  V r = emu_shfl(v, l >= o ? l - o : l);
  return r;
}
inline float __expf(float x) { return std::exp(x); }
using std::min;
using std::max;
template <typename K> inline cudaError_t cudaFuncSetAttribute(K, cudaFuncAttribute, int) { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) { *v = 132; return cudaSuccess; }  // an H200
template <typename K, typename... A>
inline void emu_launch(K kernel, dim3 grid, dim3 block, size_t, cudaStream_t, A... args) {
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        EmuBlock eb;
        std::barrier<> bb(block.x);
        std::vector<std::barrier<>*> wb;
        for (unsigned w = 0; w < (block.x + 31) / 32; ++w) eb.warp[w] = new std::barrier<>(32);
        eb.block = &bb;
        std::vector<std::thread> th;
        for (unsigned t = 0; t < block.x; ++t)
          th.emplace_back([&, t] {
            threadIdx = dim3(t);
            blockIdx = dim3(bx, by, bz);
            blockDim = block;
            gridDim = grid;
            emu_blk = &eb;
            kernel(args...);
          });
        for (auto& x : th) x.join();
        for (unsigned w = 0; w < (block.x + 31) / 32; ++w) delete eb.warp[w];
      }
}
// cp.async emulation: copies land at the wait that retires their group (tests the pipeline's ordering)
struct EmuCp { void* dst; const void* src; bool valid; };
inline thread_local std::vector<EmuCp> emu_cur;
inline thread_local std::vector<std::vector<EmuCp>> emu_groups;
inline void emu_cp_async(void* d, const void* s, bool v) { emu_cur.push_back({d, s, v}); }
inline void emu_commit() { emu_groups.push_back(emu_cur); emu_cur.clear(); }
inline void emu_wait(int n) {
  while (static_cast<int>(emu_groups.size()) > n) {
    for (auto& c : emu_groups.front()) {
      if (c.valid) std::memcpy(c.dst, c.src, 16); else std::memset(c.dst, 0, 16);
    }
    emu_groups.erase(emu_groups.begin());
  }
}
alignas(16) inline unsigned char emu_dsm_buf[1 << 20];
// ---- for sampling.cu: warp votes / match / reductions, __syncthreads_count, shared-memory atomics, bit casts
#include <atomic>
#include <climits>
#define __constant__ static
inline uint32_t __float_as_uint(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(unsigned x) { return __builtin_ffs(static_cast<int>(x)); }
inline uint64_t* emu_xall() {  // every lane's exchanged value
  return reinterpret_cast<uint64_t*>(emu_blk->xch[threadIdx.x / 32]);
}
template <typename V> inline void emu_put(V v) { uint64_t b = 0; std::memcpy(&b, &v, sizeof(V)); emu_xall()[threadIdx.x % 32] = b; __syncwarp(); }
inline unsigned __ballot_sync(unsigned, bool p) { emu_put<uint64_t>(p); unsigned m = 0; for (int i = 0; i < 32; ++i) if (emu_xall()[i]) m |= 1u << i; __syncwarp(); return m; }
inline bool __any_sync(unsigned, bool p) { return __ballot_sync(~0u, p) != 0; }
inline unsigned __match_any_sync(unsigned, unsigned long long v) { emu_put<uint64_t>(v); unsigned m = 0; for (int i = 0; i < 32; ++i) if (emu_xall()[i] == v) m |= 1u << i; __syncwarp(); return m; }
inline unsigned __reduce_add_sync(unsigned, unsigned v) { emu_put<uint64_t>(v); unsigned s = 0; for (int i = 0; i < 32; ++i) s += (unsigned)emu_xall()[i]; __syncwarp(); return s; }
inline unsigned __reduce_max_sync(unsigned, unsigned v) { emu_put<uint64_t>(v); unsigned s = 0; for (int i = 0; i < 32; ++i) s = std::max(s, (unsigned)emu_xall()[i]); __syncwarp(); return s; }
inline std::atomic<int> emu_cnt{0};
inline int __syncthreads_count(bool p) { __syncthreads(); if (p) emu_cnt++; __syncthreads(); int r = emu_cnt; __syncthreads(); if (threadIdx.x == 0) emu_cnt = 0; __syncthreads(); return r; }
template <typename V, typename W> inline V atomicAdd(V* p, W v) { return __atomic_fetch_add(p, (V)v, __ATOMIC_SEQ_CST); }
template <typename V, typename W> inline V atomicMax(V* p, W v) { V o = __atomic_load_n(p, __ATOMIC_SEQ_CST); while (o < (V)v && !__atomic_compare_exchange_n(p, &o, (V)v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} return o; }
template <typename V, typename W> inline V atomicMin(V* p, W v) { V o = __atomic_load_n(p, __ATOMIC_SEQ_CST); while (o > (V)v && !__atomic_compare_exchange_n(p, &o, (V)v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} return o; }
