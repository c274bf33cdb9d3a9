#pragma once
// Where the Hopper kernel's operands live in shared memory, and the wgmma descriptors and register
// fragments that address them.
//
// Chunk layout. Every operand is a set of [rows][64 elements] chunks of 16-bit values: row r is 128
// bytes at r * 128 with the 128-byte swizzle, i.e. its 16-byte unit u is stored at unit u ^ (r % 8).
// The swizzle is a function of the address bits (bits 4-6 ^= bits 7-9), so with every chunk on a
// 1024-byte boundary the same layout is what TMA writes under CU_TENSOR_MAP_SWIZZLE_128B and what
// wgmma reads under descriptor swizzle mode 1.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../common/ptx/wgmma.cuh"
#include "config.h"

namespace openmla::sm90 {

// Byte offset of element (row, col) of a chunk (col < 64).
__host__ __device__ constexpr uint32_t swizzled_offset(int row, int col) {
  return static_cast<uint32_t>(row * kRowBytes + (((col / 8) ^ (row % 8)) * 16) + (col % 8) * 2);
}

// Descriptor of a K-major operand (PTX ISA 9.7.15.5.1.2): its M or N rows are the chunk's rows, its
// 16 K values of one wgmma are 32 contiguous bytes of each row, so `addr` = chunk + 32 * (k step
// within the chunk). Stride-dimension byte offset: 8 rows of 128 bytes = 1024 between the 8-row
// groups. Leading-dimension byte offset: unused by swizzled K-major layouts, which assume 1 (16 bytes).
// Used for Q and K (S = Q K^T: A = q rows x dims, B = keys x dims) and for P (A of P V).
__device__ __forceinline__ uint64_t k_major_desc(uint32_t addr) {
  return ptx::smem_desc_sw128(addr, 16, 8 * kRowBytes);
}

// k_major_desc of an address that is the same in every lane, broadcast from lane 0: the same value,
// but one ptxas knows to be warp-uniform, so that the descriptor and each one-add advance of it
// (ptx::smem_desc_advance) stay on the uniform datapath, where the wgmma reads them, instead of being
// built in vector registers and moved over (R2UR) for every product.
__device__ __forceinline__ uint64_t uniform_k_major_desc(uint32_t addr) {
  return k_major_desc(__shfl_sync(0xffffffffu, addr, 0));
}

// Descriptor of an MN-major operand: B = V [16 keys x 256 dims] of P V, whose N (dims) runs along the
// chunk rows and K (keys) down them, so `addr` = chunk + 16 keys * 128 bytes * (k step). Leading-
// dimension byte offset: between consecutive 64-element N blocks = the next chunk, 8192 bytes.
// Stride-dimension byte offset: between consecutive 8-key K groups, 8 rows of 128 bytes = 1024.
// Needs imm-trans-b = 1 (PTX ISA 9.7.15.5.1.2: a transposed B is MN-major).
__device__ __forceinline__ uint64_t mn_major_desc(uint32_t addr) {
  return ptx::smem_desc_sw128(addr, kChunkBytes, 8 * kRowBytes);
}

// The m64nN fp32 accumulator (PTX ISA 9.7.15.5.1.1.1, figure "WGMMA .m64nNk16 register fragment layout
// for accumulator matrix D"): thread t of the warpgroup holds d[4 j + e] at row
// 16 (t / 32) + (t % 32) / 4 + 8 (e / 2) and column 8 j + 2 (t % 4) + e % 2.
__device__ __forceinline__ int fragment_row(int warpgroup_thread) {
  return 16 * (warpgroup_thread / 32) + (warpgroup_thread % 32) / 4;
}
__device__ __forceinline__ int fragment_col(int warpgroup_thread) { return 2 * (warpgroup_thread % 4); }

// The same accumulator by column slot, as the transposed products (narrow, transposed schedules) walk it:
// slot c of a thread is column 8 (c / 2) + fragment_col + c % 2, whose value in row half h (row + 8 h)
// is register slot_reg(c, h).
__device__ __forceinline__ int slot_col(int warpgroup_thread, int c) {
  return 8 * (c / 2) + fragment_col(warpgroup_thread) + c % 2;
}
__host__ __device__ constexpr int slot_reg(int c, int h) { return 4 * (c / 2) + 2 * h + c % 2; }

// The A fragment of an m64nNk16 wgmma (PTX ISA 9.7.15.5.1.1.1, figure "WGMMA .m64nNk16 register
// fragment layout for matrix A") for k step kk is, value for value, the accumulator's columns
// [16 kk, 16 kk + 16): register i holds d[8 kk + 2 i] and d[8 kk + 2 i + 1]. So P = softmax(S) goes from
// the S accumulator to the A operand of P V without any shuffle.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t bits;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
    memcpy(&bits, &pair, sizeof(bits));
  } else {
    const __half2 pair = __floats2half2_rn(lo, hi);
    memcpy(&bits, &pair, sizeof(bits));
  }
  return bits;
}

// The two values of a pack2 word.
template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t bits) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __nv_bfloat162 pair;
    memcpy(&pair, &bits, sizeof(bits));
    return __bfloat1622float2(pair);
  } else {
    __half2 pair;
    memcpy(&pair, &bits, sizeof(bits));
    return __half22float2(pair);
  }
}

}  // namespace openmla::sm90
