#pragma once
// What a model directory says about generation: the EOS ids that end a request (generation_config.json's
// eos_token_id, else config.json's; an int or a list), and the context length.
#include <cstdint>
#include <string>
#include <vector>

namespace hylora::scheduler {

std::vector<int32_t> read_eos_token_ids(const std::string& model_dir);

}  // namespace hylora::scheduler
