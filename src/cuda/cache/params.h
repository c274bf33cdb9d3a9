#pragma once
// What the cache-write kernels see: pointers, int64 strides in elements (bytes for an FP8 cache), sizes.

#include <cstdint>

namespace openmla::cache_write {

struct WriteParams {
  const void* kv_c;  // [tokens, d_v]
  int64_t kv_c_stride;
  const void* k_pe;  // [tokens, d_rope]
  int64_t k_pe_stride;
  const int64_t* slot_mapping;  // [tokens]
  int64_t slot_stride;
  void* k_cache;  // [num_blocks, page_size, 1, d_v + d_rope] elements, or [..., 656] bytes (fp8_656)
  int64_t k_stride_block;
  int64_t k_stride_token;
  const float* k_scale;  // [1] with fp8_per_tensor, read by the kernel; nullptr otherwise
  int32_t* status;       // one word (core/status.h); nullptr: out-of-range slots go unrecorded
  int64_t tokens;
  int64_t page_size;
  int64_t slots;  // num_blocks * page_size
  int64_t d_v;
  int64_t d_rope;
};

}  // namespace openmla::cache_write
