#pragma once
// The transposed schedule's output product on an FP8 cache (sm90/transposed.cuh): warpgroup v computes
// its half of the output, dims [256 v, +256), for all 64 query rows of its m-tile,
//   O^T [256 dims, 64 rows] += V^T [256 dims, 64 keys] . P^T [64 keys, 64 rows]
// as 4 m64 blocks x 4 k16 steps of wgmma m64n64k16, A (V^T) converted from the raw e4m3 bytes into
// registers, B (P^T) from shared memory; no 16-bit copy of a tile exists.
//
// Two fixed orders make a thread's fragment values contiguous bytes of the tile:
// - Rows (dims): row m = 16 w + g + 8 h of m64 block mb is dim 256 v + 64 w + 8 g + 2 mb + h (warp w,
//   quad g), so a thread's values of a key are 8 contiguous bytes, and a warp's dims [256 v + 64 w, +64)
//   lie in one 128-value scale block of a 656-byte token (half_dim).
// - Keys: k-index 2 c + e + 8 hi of k16 step kk is key 16 kk + c + 4 hi + 8 e (quad column c): the four
//   threads of a quad read four consecutive keys. P is stored in that order (half_key_position), in
//   which the score accumulator's two keys of a thread and row, key_row and key_row + 8, are adjacent:
//   one 4-byte store for both.

#include <cuda_fp16.h>

#include <cstdint>

#include "../common/ptx.cuh"
#include "../common/ptx/wgmma.cuh"
#include "fp8_fragments.cuh"
#include "layout.cuh"
#include "openmla/decode.h"

namespace openmla::sm90::fp8 {

inline constexpr int kHalfBlocks = kColsPerWarpgroup / 64;  // 4 m64 blocks of a warpgroup's O^T

// The position (k-index) of key `key` of a tile in P^T.
__host__ __device__ constexpr int half_key_position(int key) { return 16 * (key / 16) + 2 * (key % 8) + key % 16 / 8; }

// The dim of row `row` (0..63: the accumulator fragment row, + 8 for its second half) of m64 block mb of
// warpgroup `warpgroup`'s output product.
__host__ __device__ constexpr int half_dim(int warpgroup, int mb, int row) {
  return kColsPerWarpgroup * warpgroup + 64 * (row / 16) + 8 * (row % 8) + 2 * mb + row % 16 / 8;
}

// O^T += V^T P^T over the tile at `tile` for the warpgroup's dims, P^T in `sp` (keys in
// half_key_position's order), in fp16 products: k16 step by step, the thread (warp w, quad g, column c
// of the quad) converts dims [256 v + 64 w + 8 g, +8) of keys 16 kk + c + {0, 4, 8, 12} into the step's
// four A fragments (one per m64 block); a step's bytes are read as soon as the step before is converted.
// On 656-byte tokens each key's values are taken times its scale over 2^g, g the warp's value exponent
// (raise_value_exponent; o is not in flight here). The tokens of a tile past its piece's end were zeroed
// in shared memory before (scales included). Ends with the products retired.
template <CacheFormat kFormat>
__device__ __forceinline__ void accumulate_half(const uint8_t* tile, uint32_t sp, int warpgroup, int warp, int quad_row,
                                                int quad_col, float (&o)[kHalfBlocks][32], int& value_exponent) {
  constexpr int kBytes = kTokenBytes<kFormat>;
  constexpr bool kScaled = kFormat == CacheFormat::fp8_656;
  const int dim0 = half_dim(warpgroup, 0, 16 * warp + quad_row);  // the thread's 8 dims: [dim0, +8)
  const uint8_t* dims = tile + dim0;
  const int block = dim0 / 128;  // the warp's scale block (656-byte tokens)
  const uint64_t p_desc = k_major_desc(sp);
  float down = 1.f;
  if constexpr (kScaled) {
    down = raise_value_exponent(tile, block, quad_col, o, value_exponent);
  }
  uint32_t w[4][2];  // [x][word] of key 16 kk + c + {0, 8, 4, 12}[x] of the step being converted
  float s[4];        // [x] the key's scale of the warp's block (656-byte tokens)
  // Step kk's bytes, read into w and s once step kk - 1's are converted: their latency passes while that
  // step's products are issued and the next wait runs.
  const auto read = [&](int kk) {
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      const int key = 16 * kk + quad_col + 4 * (x / 2) + 8 * (x % 2);
      const uint2 v = *reinterpret_cast<const uint2*>(dims + key * kBytes);
      w[x][0] = v.x;
      w[x][1] = v.y;
      s[x] = kScaled ? *reinterpret_cast<const float*>(tile + key * kBytes + kScaleOffset + 4 * block) : 1.f;
    }
  };
  read(0);
  uint32_t a[2][kHalfBlocks][4];
#pragma unroll
  for (int kk = 0; kk < kBlockN / 16; ++kk) {
    uint32_t(&frag)[kHalfBlocks][4] = a[kk % 2];
    if (kk >= 2) {
      ptx::wgmma_wait<1>();  // step kk - 2's products, which read frag, retired
    }
    const uint32_t lo_factors = pack2<__half>(s[0] * down, s[1] * down);  // keys + 0, + 8 (656-byte tokens)
    const uint32_t hi_factors = pack2<__half>(s[2] * down, s[3] * down);  // keys + 4, + 12
#pragma unroll
    for (int mb = 0; mb < kHalfBlocks; ++mb) {
      value_fragment<kScaled>(w, mb, lo_factors, hi_factors, frag[mb]);
    }
    if (kk + 1 < kBlockN / 16) {
      read(kk + 1);
    }
    ptx::wgmma_fence();
#pragma unroll
    for (int mb = 0; mb < kHalfBlocks; ++mb) {
      ptx::wgmma_m64n64k16_rs<__half>(o[mb], frag[mb], ptx::smem_desc_advance(p_desc, kk * 32), true);
    }
    ptx::wgmma_commit();
  }
  ptx::wgmma_wait<0>();
#pragma unroll
  for (int mb = 0; mb < kHalfBlocks; ++mb) {
    ptx::pin_registers(o[mb]);
  }
}

}  // namespace openmla::sm90::fp8
