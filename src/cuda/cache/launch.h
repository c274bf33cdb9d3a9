#pragma once

#include <cuda_runtime.h>

#include "openmla/decode.h"
#include "params.h"

namespace openmla::cache_write {

// One launch of the cache-write kernel of `format` (p.tokens > 0); `dtype` is kv_c's (bf16 or fp16 for
// an FP8 cache). `vectorized`: every pointer and row stride allows the kernel's 16-byte accesses (plain
// and fp8_656: 16-byte aligned rows everywhere; fp8_per_tensor: 16-byte aligned input rows and 8-byte
// aligned cache rows) and d_v and d_rope are multiples of 8; otherwise one element at a time.
void launch_write_cache(const WriteParams& p, CacheFormat format, DType dtype, bool vectorized, cudaStream_t stream);

}  // namespace openmla::cache_write
