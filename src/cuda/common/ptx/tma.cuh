#pragma once
// Tensor memory access (TMA) wrappers (sm_90): one inline-asm function per instruction, each naming
// its PTX ISA section. The tensor map is a CUtensorMap built on the host and passed as a
// __grid_constant__ kernel parameter; `map` is its generic address.

#include <cstdint>

namespace openmla::ptx {

// PTX ISA 9.7.9.15, prefetch.tensormap: brings the tensor map into the cache TMA reads it from.
__device__ __forceinline__ void prefetch_tensormap(const void* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// PTX ISA 9.7.9.18, createpolicy.fractional: an L2 policy that evicts the lines it touches first, for
// data read once (the cache stream).
__device__ __forceinline__ uint64_t create_policy_evict_first() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
}

// PTX ISA 9.7.9.25.5.2, cp.async.bulk.tensor.4d (global -> shared, tile mode): as tma_load_5d with
// four coordinates.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const void* map, int32_t c0, int32_t c1, int32_t c2,
                                            int32_t c3, uint32_t bar, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3, %4, %5}], [%6], %7;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar), "l"(policy)
      : "memory");
}

// PTX ISA 9.7.9.25.5.2, cp.async.bulk.tensor.5d (global -> shared, tile mode): copies the box at
// coordinates {c0..c4} (innermost first) of `map` to shared address `dst` (aligned as the map's
// swizzle needs) and signals its bytes on mbarrier `bar` (complete_tx). `policy` from createpolicy.
__device__ __forceinline__ void tma_load_5d(uint32_t dst, const void* map, int32_t c0, int32_t c1, int32_t c2,
                                            int32_t c3, int32_t c4, uint32_t bar, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3, %4, %5, %6}], [%7], %8;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4), "r"(bar), "l"(policy)
      : "memory");
}

// tma_load_5d with the default L2 policy.
__device__ __forceinline__ void tma_load_5d(uint32_t dst, const void* map, int32_t c0, int32_t c1, int32_t c2,
                                            int32_t c3, int32_t c4, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4, %5, %6}], [%7];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4), "r"(bar)
      : "memory");
}

// PTX ISA, data movement, cp.async.bulk.prefetch.tensor.5d (tile mode): asks L2 for the box at
// coordinates {c0..c4} of `map`, as tma_load_5d would read it, and writes nothing to shared memory.
__device__ __forceinline__ void tma_prefetch_l2_5d(const void* map, int32_t c0, int32_t c1, int32_t c2, int32_t c3,
                                                   int32_t c4) {
  asm volatile("cp.async.bulk.prefetch.tensor.5d.L2.global.tile [%0, {%1, %2, %3, %4, %5}];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4)
               : "memory");
}

// PTX ISA, data movement, cp.async.bulk.prefetch.tensor.4d (tile mode): as tma_prefetch_l2_5d, for a
// rank-4 map.
__device__ __forceinline__ void tma_prefetch_l2_4d(const void* map, int32_t c0, int32_t c1, int32_t c2, int32_t c3) {
  asm volatile("cp.async.bulk.prefetch.tensor.4d.L2.global.tile [%0, {%1, %2, %3, %4}];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(c0), "r"(c1), "r"(c2), "r"(c3)
               : "memory");
}

}  // namespace openmla::ptx
