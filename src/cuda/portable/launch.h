#pragma once
// Host side of the portable kernel: which instance fits the device, and its launch.

#include <cuda_runtime.h>

#include <cstdint>

#include "../common/params.h"
#include "openmla/decode.h"
#include "openmla/tensor.h"

namespace openmla::portable {

struct KernelConfig {
  int m_slices;  // 16-row slices per CTA: 1, 2 or 4
  int keys;      // keys per pipeline stage: 64 or 32
};

// The widest instance for `rows` query rows per KV head and the cache format that fits the device's
// shared memory, or the environment's OPENMLA_PORTABLE_SHARED_BYTES where that is less (read once per
// process: the instances a GPU with that much runs, for tests; any other value than a positive number
// of bytes throws).
KernelConfig select_config(int64_t rows, int device, CacheFormat format = CacheFormat::plain);

// Resident CTAs per SM of the bf16/fp16-cache instance (for sizing the plan; not needed to launch).
int ctas_per_sm(const KernelConfig& config);

int64_t m_tiles(int64_t rows, const KernelConfig& config);

void launch_decode(const cuda::DecodeParams& params, DType dtype, CacheFormat format, const KernelConfig& config,
                   int64_t num_parts, int64_t h_kv, cudaStream_t stream);

}  // namespace openmla::portable
