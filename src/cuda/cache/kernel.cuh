#pragma once
// The cache-write kernel of a plain cache: one warp per token, tokens walked with a grid stride. Every
// lane reads the token's slot (one broadcast load); the lanes then split the destination row
// [kv_c | k_pe] into kVec-element chunks (16 bytes for kVec = 8 half-precision values) and copy them,
// the first d_v / kVec chunks from kv_c and the rest from k_pe. Pure data movement: the bits are
// copied, never converted.

#include <cstdint>

#include "params.h"
#include "slot.cuh"

namespace openmla::cache_write {

inline constexpr int kUnroll = 3;  // chunks a lane moves per pass: a 576-value row in one pass at kVec = 8

// kVec 2-byte elements moved by one load or store.
template <int kVec>
struct alignas(2 * kVec) Chunk {
  uint16_t v[kVec];
};

template <int kVec>
__global__ void __launch_bounds__(kThreads) write_cache_kernel(const __grid_constant__ WriteParams p) {
  using C = Chunk<kVec>;
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarps;
  const int64_t v_chunks = p.d_v / kVec;
  const int64_t chunks = (p.d_v + p.d_rope) / kVec;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32; t < p.tokens; t += warps) {
    const int64_t slot = slot_to_write(p, t, lane);
    if (slot < 0) {
      continue;
    }
    C* row = reinterpret_cast<C*>(row_of(p, slot, 2));  // [chunks]
    const C* latent =
        reinterpret_cast<const C*>(static_cast<const uint16_t*>(p.kv_c) + t * p.kv_c_stride);  // [v_chunks]
    const C* rope =
        reinterpret_cast<const C*>(static_cast<const uint16_t*>(p.k_pe) + t * p.k_pe_stride);  // [chunks - v_chunks]
    // Every load of a pass is issued before its stores, so that a lane keeps kUnroll loads in flight.
    for (int64_t base = lane; base < chunks; base += 32 * kUnroll) {
      C r[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = base + 32 * u;
        if (c < chunks) {
          r[u] = c < v_chunks ? latent[c] : rope[c - v_chunks];
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = base + 32 * u;
        if (c < chunks) {
          row[c] = r[u];
        }
      }
    }
  }
}

}  // namespace openmla::cache_write
