#pragma once

#include <cuda_runtime.h>

#include "params.h"

namespace openmla::cache_write {

// One launch of the cache-write kernel (p.tokens > 0). `vectorized`: d_v, d_rope and every pointer and
// row stride are multiples of 8 elements (16 bytes), so that each lane moves 16 bytes at a time;
// otherwise one element at a time.
void launch_write_cache(const WriteParams& p, bool vectorized, cudaStream_t stream);

}  // namespace openmla::cache_write
