#include "cli/tensor_parallel_options.h"

#include "core/error.h"
#include "dist/in_process_communicator.h"
#include "dist/model_shard_specs.h"
#include "dist/shard_model.h"
#include "engine/rank_channel.h"
#include "models/model.h"

namespace hylora::cli {

void add_tensor_parallel_options(CLI::App& app, TensorParallelOptions& o) {
  app.add_option("--tp", o.tp, "tensor-parallel ranks (CPU: threads of this process)")->check(CLI::Range(1, 64));
  app.add_option("--ep", o.ep, "expert-parallel groups among the --tp ranks (must divide --tp)")
      ->check(CLI::Range(1, 64));
}

int with_executor(const std::string& model_dir, const ExecutorOptions& o, const TensorParallelOptions& tp,
                  const std::function<int(Executor&)>& body) {
  HYLORA_CHECK(tp.tp % tp.ep == 0, "--ep ", tp.ep, " does not divide --tp ", tp.tp);
  if (tp.tp == 1 && tp.ep == 1) {
    Executor executor(model_dir, o);
    return body(executor);
  }
  HYLORA_CHECK(o.device == Device::CPU, "--tp ", tp.tp, " with --device cuda: the tensor-parallel GPU forward is not "
               "wired yet (docs/multi_gpu.md §6.2); --tp runs on --device cpu");
  const dist::ShardPlan plan =
      dist::make_shard_plan(dist::model_shard_spec_from_file(model_dir + "/config.json"), tp.tp, tp.ep);
  int status = 0;
  dist::run_ranks(tp.tp, [&](dist::Communicator& comm) {
    std::unique_ptr<Model> model = dist::load_model_shard(model_dir, plan, comm.rank());
    ExecutorOptions ro = o;
    ro.communicator = &comm;
    ro.shard_plan = &plan;
    Executor executor(std::move(model), ro);
    if (comm.rank() != 0) return follow_leader(executor, comm);
    LeaderChannel channel(comm);
    executor.lead(&channel);
    status = body(executor);
    channel.stop();
  });
  return status;
}

}  // namespace hylora::cli
