// `hylora dist-check --tp N [--nnodes M --node-rank R --dist-init-addr HOST:PORT]` (hidden; GPU machines): the
// multi-GPU plumbing on its own — the launcher starts one process per GPU (dist/launcher.h), every rank joins the NCCL
// group (dist/nccl_communicator.h) and runs all_reduce_sum, all_gather and broadcast on values whose results it knows,
// then times an all-reduce of 16 MiB. Each rank prints one line; the exit code is 1 when any rank saw a wrong value
// (and the launcher ends the group when a rank fails). --fail-rank R makes rank R exit with status 3 right after
// starting (to see that the group ends with one message instead of hanging).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "dist/launcher.h"
#include "dist/nccl_communicator.h"
#include "ops/device.h"

namespace hylora::cli {

namespace {
Tensor device_tensor(ExecCtx& ctx, const std::vector<float>& v) {
  Tensor h = Tensor::empty({static_cast<int64_t>(v.size())}, DType::F32);
  std::copy(v.begin(), v.end(), h.f32());
  return ops::to_device(ctx, h, Device::CUDA);
}
std::vector<float> host_values(ExecCtx& ctx, const Tensor& d) {
  Tensor h = Tensor::empty(d.shape(), DType::F32);
  ops::copy_tensor(ctx, d, h);
  return std::vector<float>(h.f32(), h.f32() + h.numel());
}
}  // namespace

int run_dist_check_command(int argc, char** argv) {
  CLI::App app{"Check the multi-GPU launcher and NCCL collectives (one line per rank)", "hylora dist-check"};
  dist::LaunchOptions o;
  int fail_rank = -1;
  int64_t n = 4099;  // not a multiple of anything NCCL chunks by
  app.add_option("--tp", o.tp, "ranks in all, one GPU each")->required();
  app.add_option("--nnodes", o.nnodes, "hosts (tp / nnodes ranks on each)");
  app.add_option("--node-rank", o.node_rank, "this host's index");
  app.add_option("--dist-init-addr", o.dist_init_addr, "HOST:PORT of node 0 (NCCL's bootstrap), for --nnodes > 1");
  app.add_option("--fail-rank", fail_rank, "this rank exits with status 3 at start (failure-path check)");
  app.add_option("--elements", n, "elements per collective")->check(CLI::Range(int64_t{1}, int64_t{1} << 28));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  dist::RankGroup group(o, process_argv());
  const int rank = group.rank(), world = group.world();
  if (rank == fail_rank) {
    std::fprintf(stderr, "hylora dist-check: rank %d exits on purpose (--fail-rank)\n", rank);
    std::_Exit(3);
  }
  ops::set_device(group.local_rank());
  ExecCtx ctx{Device::CUDA, ops::create_stream(), ScratchArena(ops::allocator_for(Device::CUDA))};
  dist::NcclCommunicator comm(group.id(), rank, world);
  bool ok = true;
  std::string report;
  auto expect = [&](const char* what, const std::vector<float>& got, auto want) {
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) bad += got[i] != static_cast<float>(want(static_cast<int64_t>(i)));
    ok = ok && bad == 0;
    report += std::string(" ") + what + (bad ? " WRONG (" + std::to_string(bad) + " values)" : " ok");
  };
  // all_reduce: rank r holds (r + 1)·(i mod 7 + 1); the sum is W(W+1)/2·(i mod 7 + 1), exact in float32.
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>((rank + 1) * (i % 7 + 1));
  Tensor t = device_tensor(ctx, v);
  comm.all_reduce_sum(ctx, t);
  expect("all_reduce", host_values(ctx, t), [&](int64_t i) { return world * (world + 1) / 2 * (i % 7 + 1); });
  // all_gather: rank r contributes r·1000 + (i mod 997).
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(rank * 1000 + i % 997);
  Tensor local = device_tensor(ctx, v);
  Tensor all = Tensor::empty({n * world}, DType::F32, ops::allocator_for(Device::CUDA));
  comm.all_gather(ctx, local, all);
  expect("all_gather", host_values(ctx, all), [&](int64_t i) { return (i / n) * 1000 + (i % n) % 997; });
  // broadcast from the last rank: every rank ends with its values.
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(rank * 3 + i % 5);
  Tensor b = device_tensor(ctx, v);
  comm.broadcast(ctx, b, world - 1);
  expect("broadcast", host_values(ctx, b), [&](int64_t i) { return (world - 1) * 3 + i % 5; });
  // 16 MiB all-reduce: time and bus bandwidth (2·(W−1)/W · bytes / time, NCCL's convention).
  Tensor big = Tensor::empty({int64_t{4} << 20}, DType::F32, ops::allocator_for(Device::CUDA));
  ops::allocator_for(Device::CUDA).zero(big.raw(), big.nbytes());
  comm.all_reduce_sum(ctx, big);
  ops::synchronize(ctx);
  const int iters = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) comm.all_reduce_sum(ctx, big);
  ops::synchronize(ctx);
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
  const double busbw = world > 1 ? 2.0 * (world - 1) / world * static_cast<double>(big.nbytes()) / (us * 1e3) : 0.0;
  std::printf("rank %d/%d on GPU %d:%s; all_reduce 16 MiB %.1f us (bus %.1f GB/s)\n", rank, world,
              group.local_rank(), report.c_str(), us, busbw);
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace hylora::cli
