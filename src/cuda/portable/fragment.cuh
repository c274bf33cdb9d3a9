#pragma once
// The register fragments of mma.sync m16n8k16 (16-bit inputs, fp32 accumulators) and the ldmatrix lane
// addressing that loads them: which rows and columns of a tile each of a warp's 32 lanes holds or
// addresses. PTX ISA, warp-level matrix instructions: the fragment layouts of mma.m16n8k16, and ldmatrix.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../common/ptx.cuh"

namespace openmla::portable::fragment {

inline constexpr int kM = 16;                       // rows of an A fragment and of an accumulator tile
inline constexpr int kN = 8;                        // columns of a B fragment and of an accumulator tile
inline constexpr int kK = 16;                       // the reduction depth of one mma
inline constexpr unsigned kFullMask = 0xffffffffu;  // every lane of the warp

// Accumulator of one m16n8 tile, float c[4] per lane: c[0], c[1] lie in row acc_row(lane, 0) and c[2], c[3]
// in row acc_row(lane, 1) (the lane's two "halves"); c[e] lies in column acc_col(lane) + elem_col(e). The 8
// columns of a row are spread over the 4 lanes of a quad (lanes 4r .. 4r + 3).
__device__ __forceinline__ int acc_row(int lane, int half) { return lane / 4 + 8 * half; }
__device__ __forceinline__ int acc_col(int lane) { return 2 * (lane % 4); }
__device__ __forceinline__ constexpr int elem_half(int e) { return e / 2; }
__device__ __forceinline__ constexpr int elem_col(int e) { return e % 2; }

// The lane of each quad that stands for the quad's row when a per-row value goes to shared memory.
__device__ __forceinline__ bool quad_leader(int lane) { return lane % 4 == 0; }

// The max and the sum of a row's values over its quad; every lane of the quad gets the result.
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(kFullMask, v, 1));
  return fmaxf(v, __shfl_xor_sync(kFullMask, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(kFullMask, v, 1);
  return v + __shfl_xor_sync(kFullMask, v, 2);
}

// ldmatrix reads 8x8 matrices of 16-bit values, one 16-byte row per lane address: lane l addresses
// row l % 8 of matrix l / 8. "Chunk" below is a 16-byte (8-element) column block of a shared tile.

// An A fragment (m16 x k16, stored as rows of m) by ldmatrix.x4: matrices (rows 0-7, chunk 0),
// (rows 8-15, chunk 0), (rows 0-7, chunk 1), (rows 8-15, chunk 1).
__device__ __forceinline__ int a_row(int lane) { return lane % 16; }
__device__ __forceinline__ int a_chunk(int lane) { return lane / 16; }

// B fragments (k16 x n8) stored as rows of n, e.g. keys of K [n, k]: ldmatrix.x2 reads chunks 0 and 1 of
// rows 0-7 (one n8 tile); ldmatrix.x4 reads those of rows 0-7, then of rows 8-15 (two n8 tiles).
template <int kTiles>
__device__ __forceinline__ int b_row(int lane) {
  static_assert(kTiles == 1 || kTiles == 2);
  return lane % 8 + (kTiles == 1 ? 0 : 8 * (lane / 16));
}
__device__ __forceinline__ int b_chunk(int lane) { return (lane / 8) % 2; }

// B fragments stored as rows of k, e.g. V [k, n], by ldmatrix.x4.trans, two n8 tiles: matrices (k rows
// 0-7, chunk 0), (k rows 8-15, chunk 0), (k rows 0-7, chunk 1), (k rows 8-15, chunk 1).
__device__ __forceinline__ int bt_row(int lane) { return lane % 8 + 8 * ((lane / 8) % 2); }
__device__ __forceinline__ int bt_chunk(int lane) { return lane / 16; }

// Two floats rounded to T and packed in one register, `lo` in the low half: two adjacent columns of a
// fragment.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

// d += a b for one m16n8k16 tile with inputs of type T.
template <typename T>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    ptx::mma_bf16(d, a, b0, b1);
  } else {
    ptx::mma_fp16(d, a, b0, b1);
  }
}

}  // namespace openmla::portable::fragment
