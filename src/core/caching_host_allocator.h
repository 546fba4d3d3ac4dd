#pragma once
// The process-wide caching allocator over 64-byte aligned host memory (core/caching_allocator.h says why blocks are
// cached). Never destroyed: tensors may outlive statics.
#include "core/caching_allocator.h"

namespace hylora {

Allocator& caching_host_allocator();

}  // namespace hylora
