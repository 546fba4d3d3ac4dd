#include "dist/shard_spec.h"

#include <utility>

namespace hylora::dist {

int64_t SliceSpec::rows() const {
  int64_t n = 0;
  for (const PartSpec& p : parts) n += p.rows();
  return n;
}

int64_t ProjectionSpec::out_features() const {
  int64_t n = 0;
  for (const SliceSpec& s : slices) n += s.rows();
  return n;
}

int64_t ProjectionSpec::in_features() const {
  int64_t n = 0;
  for (const PartSpec& p : in_parts) n += p.rows();
  return n;
}

PartSpec whole(std::string name, int64_t rows) {
  PartSpec p;
  p.name = std::move(name);
  p.units = 1;
  p.unit_size = rows;
  p.policy = UnitPolicy::kWhole;
  return p;
}

PartSpec split(std::string name, std::string family, std::string dimension, int64_t units, int64_t unit_size) {
  PartSpec p;
  p.name = std::move(name);
  p.family = std::move(family);
  p.dimension = std::move(dimension);
  p.units = units;
  p.unit_size = unit_size;
  p.policy = UnitPolicy::kSplit;
  return p;
}

PartSpec split_or_replicate(std::string name, std::string family, std::string dimension, int64_t units,
                            int64_t unit_size) {
  PartSpec p = split(std::move(name), std::move(family), std::move(dimension), units, unit_size);
  p.policy = UnitPolicy::kSplitOrReplicate;
  return p;
}

PartSpec split_uneven(std::string name, std::string family, std::string dimension, int64_t units, int64_t unit_size) {
  PartSpec p = split(std::move(name), std::move(family), std::move(dimension), units, unit_size);
  p.policy = UnitPolicy::kSplitUneven;
  return p;
}

}  // namespace hylora::dist
