#pragma once
// The Communicator interface lives in core/communicator.h (below models/, whose forward calls the collectives of a
// rank's shard model); this header keeps dist/'s includes unchanged.
#include "core/communicator.h"
