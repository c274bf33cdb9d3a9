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

// Calls body(t, slot, lane) for each token t of this warp (grid stride) that has a slot to write.
template <typename Body>
__device__ __forceinline__ void for_each_token(const WriteParams& p, Body&& body) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32; t < p.tokens; t += warps) {
    const int64_t slot = slot_to_write(p, t, lane);
    if (slot >= 0) {
      body(t, slot, lane);
    }
  }
}

// The warp's lanes turn token t's [kv_c | k_pe] into cache row `row`: chunk c of kVec elements (the
// first d_v / kVec from kv_c, the rest from k_pe) is stored as row[c] = convert(chunk). Every load of
// a pass is issued before its conversions and stores, so that a lane keeps kUnroll loads in flight.
template <int kVec, typename Out, typename Convert>
__device__ __forceinline__ void move_row(const WriteParams& p, int64_t t, int lane, Out* row, Convert&& convert) {
  using C = Chunk<kVec>;
  const int64_t v_chunks = p.d_v / kVec;
  const int64_t chunks = (p.d_v + p.d_rope) / kVec;
  const C* latent = reinterpret_cast<const C*>(static_cast<const uint16_t*>(p.kv_c) + t * p.kv_c_stride);  // [v_chunks]
  const C* rope =
      reinterpret_cast<const C*>(static_cast<const uint16_t*>(p.k_pe) + t * p.k_pe_stride);  // [chunks - v_chunks]
  for (int64_t base = lane; base < chunks; base += 32 * kUnroll) {
    C in[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = base + 32 * u;
      if (c < chunks) {
        in[u] = c < v_chunks ? latent[c] : rope[c - v_chunks];
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t c = base + 32 * u;
      if (c < chunks) {
        row[c] = convert(in[u]);
      }
    }
  }
}

template <int kVec>
__global__ void __launch_bounds__(kThreads) write_cache_kernel(const __grid_constant__ WriteParams p) {
  for_each_token(p, [&](int64_t t, int64_t slot, int lane) {
    auto* row = reinterpret_cast<Chunk<kVec>*>(row_of(p, slot, 2));  // [(d_v + d_rope) / kVec]
    move_row<kVec>(p, t, lane, row, [](const Chunk<kVec>& chunk) { return chunk; });
  });
}

}  // namespace openmla::cache_write
