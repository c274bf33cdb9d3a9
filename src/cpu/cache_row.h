#pragma once
// One key of the cache (one token of one KV head) as fp32, whatever the cache format: the CPU
// backend's dequantization (docs/fp8.md).

#include <cstdint>

#include "openmla/decode.h"

namespace openmla::cpu {

// What every key of a decode shares: the cache, its format and, for fp8_per_tensor, the scale.
struct CacheReader {
  const char* data;    // k_cache's first byte
  int64_t stride[3];   // k_cache's strides in bytes: block, token, head
  CacheFormat format;
  DType rope_dtype;    // q's dtype: the plain cache's elements and the 656-byte token's RoPE values
                       // (16-bit: bf16 for an fp32 q)
  float scale;         // k_scale[0] with fp8_per_tensor, else 1
  int64_t d_qk;

  // Writes the d_qk values of key (block, slot, head) to dst.
  void read(int64_t block, int64_t slot, int64_t head, float* dst) const;
};

CacheReader cache_reader(const DecodeArgs& args);

}  // namespace openmla::cpu
