// The CPU cache write: every slot is checked first, then each token's two row parts are copied bit for
// bit into its cache row (one thread: the work is a memcpy per token).

#include <cstdint>
#include <cstring>
#include <string>

#include "../api/cache_backends.h"
#include "../api/check.h"

namespace openmla::cpu {

namespace {

int64_t slot_of(const WriteCacheArgs& a, int64_t token) {
  return static_cast<const int64_t*>(a.slot_mapping.data)[token * a.slot_mapping.strides[0]];
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
  const int64_t page_size = a.k_cache.sizes[1];
  const int64_t element = dtype_size(a.k_cache.dtype);
  const int64_t d_v = a.kv_c.sizes[1];
  const int64_t d_rope = a.k_pe.sizes[1];
  const auto* kv_c = static_cast<const char*>(a.kv_c.data);  // [tokens, d_v]
  const auto* k_pe = static_cast<const char*>(a.k_pe.data);  // [tokens, d_rope]
  auto* k_cache = static_cast<char*>(a.k_cache.data);        // [num_blocks, page_size, 1, d_v + d_rope]
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t slot = slot_of(a, t);
    if (slot < 0) {
      continue;
    }
    char* row = k_cache + ((slot / page_size) * a.k_cache.strides[0] + (slot % page_size) * a.k_cache.strides[1]) *
                              element;  // [d_v + d_rope]
    std::memcpy(row, kv_c + t * a.kv_c.strides[0] * element, static_cast<size_t>(d_v * element));
    if (d_rope > 0) {
      std::memcpy(row + d_v * element, k_pe + t * a.k_pe.strides[0] * element, static_cast<size_t>(d_rope * element));
    }
  }
}

}  // namespace openmla::cpu
