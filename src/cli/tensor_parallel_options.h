#pragma once
// --tp / --ep for score and serve (docs/multi_gpu.md §5-6), and running a command's body against rank 0's executor
// of the group they ask for. One rank: one Executor over the whole model, as always. tp > 1: tp ranks as threads of
// this process (dist/in_process_communicator.h), each with its shard model (dist/shard_model.h) and its executor;
// rank 0 runs the body with a LeaderChannel, the others follow its calls (engine/rank_channel.h). On the GPU the rank
// threads share the device, each with its own stream, CUDA graphs off (the in-process collectives synchronise) and
// its share of --mem-fraction: the one-GPU test path of the tensor-parallel forward; one process per GPU over NCCL
// is the fast path (docs/multi_gpu.md §5, §6.2).
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "engine/executor.h"

namespace hylora::cli {

struct TensorParallelOptions {
  int tp = 1;  // ranks the model is sharded over
  int ep = 1;  // expert-parallel groups among them (1: experts split by intermediate size; tp: whole experts)
};

void add_tensor_parallel_options(CLI::App& app, TensorParallelOptions& o);

// Builds the executor(s) for <model_dir> and returns body(rank 0's executor). Errors of any rank end the group (the
// others' collectives fail, never hang) and are rethrown here.
int with_executor(const std::string& model_dir, const ExecutorOptions& o, const TensorParallelOptions& tp,
                  const std::function<int(Executor&)>& body);

}  // namespace hylora::cli
