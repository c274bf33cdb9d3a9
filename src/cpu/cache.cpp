// The CPU cache write: every slot is checked first, then each token's two row parts go into its cache
// row: copied bit for bit (plain) or quantized (the FP8 formats, with the device's rule of core/e4m3.h).
// One thread: the work is a memcpy, or a few operations per value, per token.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "../api/cache_backends.h"
#include "../api/check.h"
#include "../core/e4m3.h"
#include "half.h"

namespace openmla::cpu {

namespace {

int64_t slot_of(const WriteCacheArgs& a, int64_t token) {
  return static_cast<const int64_t*>(a.slot_mapping.data)[token * a.slot_mapping.strides[0]];
}

// The cache row of `slot`: [d_qk] elements of a plain cache, [d_qk] e4m3 bytes, or 656 bytes.
char* row_of(const WriteCacheArgs& a, int64_t slot) {
  const int64_t page_size = a.k_cache.sizes[1];
  return static_cast<char*>(a.k_cache.data) +
         ((slot / page_size) * a.k_cache.strides[0] + (slot % page_size) * a.k_cache.strides[1]) *
             dtype_size(a.k_cache.dtype);
}

void write_plain(const WriteCacheArgs& a, int64_t t, char* row) {
  const int64_t element = dtype_size(a.k_cache.dtype);
  const int64_t d_v = a.kv_c.sizes[1];
  const int64_t d_rope = a.k_pe.sizes[1];
  const auto* kv_c = static_cast<const char*>(a.kv_c.data);  // [tokens, d_v]
  const auto* k_pe = static_cast<const char*>(a.k_pe.data);  // [tokens, d_rope]
  std::memcpy(row, kv_c + t * a.kv_c.strides[0] * element, static_cast<size_t>(d_v * element));
  if (d_rope > 0) {
    std::memcpy(row + d_v * element, k_pe + t * a.k_pe.strides[0] * element, static_cast<size_t>(d_rope * element));
  }
}

// Each value v of [kv_c[t], k_pe[t]] as the e4m3 byte of v / scale.
void write_per_tensor(const WriteCacheArgs& a, int64_t t, float scale, uint8_t* row) {
  const int64_t d_v = a.kv_c.sizes[1];
  const int64_t d_rope = a.k_pe.sizes[1];
  const void* latent = static_cast<const char*>(a.kv_c.data) + t * a.kv_c.strides[0] * 2;  // [d_v]
  const void* rope = static_cast<const char*>(a.k_pe.data) + t * a.k_pe.strides[0] * 2;    // [d_rope]
  for (int64_t d = 0; d < d_v; ++d) {
    row[d] = e4m3::from_float(load_half(latent, d, a.kv_c.dtype) / scale);
  }
  for (int64_t d = 0; d < d_rope; ++d) {
    row[d_v + d] = e4m3::from_float(load_half(rope, d, a.k_pe.dtype) / scale);
  }
}

// [512 e4m3][4 fp32 group scales][64 RoPE values, k_pe's bits]; the scales are memcpy'd (a row is
// only byte-aligned in general).
void write_656(const WriteCacheArgs& a, int64_t t, uint8_t* row) {
  const void* latent = static_cast<const char*>(a.kv_c.data) + t * a.kv_c.strides[0] * 2;  // [512]
  const void* rope = static_cast<const char*>(a.k_pe.data) + t * a.k_pe.strides[0] * 2;    // [64]
  for (int64_t g = 0; g < kFp8TokenValues / kFp8TokenTile; ++g) {
    float amax = 0.0f;
    for (int64_t d = g * kFp8TokenTile; d < (g + 1) * kFp8TokenTile; ++d) {
      amax = e4m3::nan_max(amax, std::fabs(load_half(latent, d, a.kv_c.dtype)));
    }
    const float scale = e4m3::group_scale(amax);
    for (int64_t d = g * kFp8TokenTile; d < (g + 1) * kFp8TokenTile; ++d) {
      row[d] = e4m3::from_float(load_half(latent, d, a.kv_c.dtype) / scale);
    }
    std::memcpy(row + kFp8TokenValues + g * 4, &scale, 4);
  }
  std::memcpy(row + kFp8TokenValues + 4 * (kFp8TokenValues / kFp8TokenTile), rope, 2 * kFp8TokenRope);
}

}  // namespace

void check_slots(const WriteCacheArgs& a) {
  const int64_t tokens = a.slot_mapping.sizes[0];
  const int64_t slots = a.k_cache.sizes[0] * a.k_cache.sizes[1];  // fits: k_cache spans the address space
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t slot = slot_of(a, t);
    if (slot >= slots) {
      detail::fail("slot_mapping[" + std::to_string(t) + "]",
                   "a slot below num_blocks * page_size = " + std::to_string(slots) + ", or a negative one (skip)",
                   std::to_string(slot));
    }
  }
}

void write_cache(const WriteCacheArgs& a) {
  const int64_t tokens = a.slot_mapping.sizes[0];
  // k_scale[0] (fp8_per_tensor), read once per call.
  const float scale = a.cache_format == CacheFormat::fp8_per_tensor ? *static_cast<const float*>(a.k_scale.data) : 1.0f;
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t slot = slot_of(a, t);
    if (slot < 0) {
      continue;
    }
    char* row = row_of(a, slot);  // [d_v + d_rope] elements, or 656 bytes
    switch (a.cache_format) {
      case CacheFormat::plain:
        write_plain(a, t, row);
        break;
      case CacheFormat::fp8_per_tensor:
        write_per_tensor(a, t, scale, reinterpret_cast<uint8_t*>(row));
        break;
      case CacheFormat::fp8_656:
        write_656(a, t, reinterpret_cast<uint8_t*>(row));
        break;
    }
  }
}

}  // namespace openmla::cpu
