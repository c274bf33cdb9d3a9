#pragma once
// The slot a cache-write warp writes its token to, shared by the kernels of every cache format.

#include <cstdint>

#include "../../core/status.h"
#include "params.h"

namespace openmla::cache_write {

inline constexpr int kWarps = 4;
inline constexpr int kThreads = kWarps * 32;

// slot_mapping[t] when its row is to be written, else -1: padding (a negative slot), or a slot past the
// cache, which lane 0 records in the status word (the lowest token index wins). Every lane of the warp
// reads the same slot (one broadcast load), so the warp skips a token together.
__device__ __forceinline__ int64_t slot_to_write(const WriteParams& p, int64_t t, int lane) {
  const int64_t slot = p.slot_mapping[t * p.slot_stride];
  if (slot >= p.slots) {
    if (lane == 0 && p.status != nullptr) {
      atomicMin(p.status, status::encode(t, status::kSlotOutOfRange));
    }
    return -1;
  }
  return slot < 0 ? -1 : slot;
}

// The first byte of slot `slot`'s row (the cache's strides are in its elements of `element` bytes).
__device__ __forceinline__ char* row_of(const WriteParams& p, int64_t slot, int element) {
  return static_cast<char*>(p.k_cache) +
         ((slot / p.page_size) * p.k_stride_block + (slot % p.page_size) * p.k_stride_token) * element;
}

}  // namespace openmla::cache_write
