#pragma once
// The cache-write measurement: openmla::write_cache of `tokens` DeepSeek rows (512 latent + 64 RoPE
// values, bf16) into random distinct slots of a large paged cache, CUDA-graph timed, reported as GB/s
// (bytes read + written) and as a share of the measured copy bandwidth.

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "timing.h"

namespace openmla::bench {

struct WriteCacheCase {
  int64_t tokens = 0;
  int64_t d_v = 512;
  int64_t d_rope = 64;
  int64_t page_size = 64;
  int64_t num_blocks = 16384;  // 1M slots, 1.2 GB of bf16 cache
};

// The default measurements: a decoding step's few tokens, a large batch, a prefill chunk.
std::vector<WriteCacheCase> default_write_cache_cases();

struct WriteCacheResult {
  WriteCacheCase shape;
  int input_sets = 1;  // sets of (kv_c, k_pe, slot_mapping) rotated through, each to its own slots
  Timing timing;
  double bytes = 0.0;  // tokens * ((d_v + d_rope) * 2 read + 8 slot read + (d_v + d_rope) * 2 written)
};

// Writes every input set once, checks the status word and a few written rows, then times the calls.
WriteCacheResult measure_write_cache(const WriteCacheCase& c, int64_t l2_bytes, bool quick, cudaStream_t stream);

}  // namespace openmla::bench
