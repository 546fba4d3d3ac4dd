#pragma once
// Safetensors checkpoints: one file or a sharded set with model.safetensors.index.json, memory-mapped.
// Format: [u64 little-endian header length N][N bytes JSON header][raw tensor bytes]; the header maps each tensor
// name to {dtype, shape, data_offsets [begin, end)} relative to the end of the header.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace hylora {

struct TensorInfo {
  std::string name;
  std::string file;  // path of the file holding it (for error messages)
  DType dtype;
  Shape shape;
  const void* data;  // inside the mmap
  std::shared_ptr<void> mapping;
};

// Validates a whole safetensors image in memory and lists its tensors (pointing into it; `mapping` keeps it alive):
// header length and JSON bounded, entries well-typed, every shape's byte count equal to its range, ranges tiling the
// data section exactly (no overlap, gap or trailing bytes), no duplicated name. Nothing is allocated from the
// header's numbers before they are checked against the file's size.
std::map<std::string, TensorInfo> parse_safetensors(const uint8_t* data, size_t size, const std::string& path,
                                                    const std::shared_ptr<void>& mapping);

// One mmap'd .safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<void> mapping_;
  std::map<std::string, TensorInfo> tensors_;
};

// All the tensors of a checkpoint directory, by name. `open` accepts model.safetensors, or
// model.safetensors.index.json + the shards it names.
class Checkpoint {
 public:
  static Checkpoint open_dir(const std::string& dir);
  // Opens one file (adapters).
  static Checkpoint open_file(const std::string& path);

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::string& where() const { return where_; }

  // A float32 host copy of a tensor (bf16/f16 converted; f32 copied).
  Tensor to_f32(const std::string& name) const;

 private:
  std::string where_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, TensorInfo> tensors_;
};

// float32 copy of any stored tensor.
Tensor tensor_to_f32(const TensorInfo& t);
// Elements [first, first + n) of a stored tensor (flat, row-major) converted to float32 into dst: a block of it read
// without converting the rest (a tensor-parallel rank's rows or columns).
void elements_to_f32(const TensorInfo& t, int64_t first, int64_t n, float* dst);
// Bytes one stored element of `d` takes in the file.
int64_t stored_element_bytes(DType d);

}  // namespace hylora
