#pragma once
// The converter warpgroup of the asymmetric schedule on a per-tensor FP8 cache (asymmetric.cuh): a
// tile's e4m3 bytes, which TMA wrote into the top of its stage, become in place the 9 swizzled chunks
// of 16-bit values (layout.cuh) that the consumer warpgroups read exactly as they read a bf16 or fp16
// tile. The values are the raw e4m3 values (exact in fp16 and bf16); the per-tensor scale is applied
// to the scores and to the output, in fp32.
//
// A stage of kTileBytes (73,728) holds, during the conversion:
//   bytes [0, 73,728)        the 16-bit tile: chunk c (dims [64 c, +64) of the 64 tokens) at 8,192 c
//   bytes [36,864, 73,728)   the raw tile, as TMA wrote it (make_fp8_chunk_map): chunk c at
//                            36,864 + 4,096 c, [64 tokens][64 bytes], unswizzled
// Chunks are converted in order. 16-bit chunk c overlaps raw chunks up to 2 c - 8 (from c = 4 on):
// all of them at or before chunk c, so once every converter thread has read raw chunk c (barrier
// kConvert), writing chunk c overwrites only bytes nobody reads again.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "../common/ptx.cuh"
#include "../common/ptx/barrier.cuh"
#include "../common/ptx/fence.cuh"
#include "../common/ptx/mbarrier.cuh"
#include "config.h"
#include "fp8_fragments.cuh"
#include "layout.cuh"
#include "openmla/decode.h"

namespace openmla::sm90::fp8 {

inline constexpr int kRawChunkBytes = kBlockN * kChunkCols;     // 4,096: a chunk's 64 tokens of 64 e4m3 bytes
inline constexpr int kRawTileBytes = kChunks * kRawChunkBytes;  // 36,864
inline constexpr int kRawOffset = kTileBytes - kRawTileBytes;   // where TMA writes the raw tile in its stage

// The last raw chunk that 16-bit chunk c overlaps (-1: none).
__host__ __device__ constexpr int last_raw_chunk_overlapped(int c) {
  const int end = (c + 1) * kChunkBytes - kRawOffset;  // end of chunk c, in raw bytes
  return end <= 0 ? -1 : (end - 1) / kRawChunkBytes;
}

// The first 16-bit chunk that overlaps raw bytes: its writes, and those of every later chunk, wait
// for every converter thread's read of its raw chunk.
inline constexpr int kFirstOverlappingChunk = 4;

// Whether converting in chunk order is safe: no chunk before kFirstOverlappingChunk overlaps raw
// bytes, and every later one overlaps only raw chunks at or before its own.
__host__ __device__ constexpr bool in_place_order_holds() {
  for (int c = 0; c < kChunks; ++c) {
    const int last = last_raw_chunk_overlapped(c);
    if ((c < kFirstOverlappingChunk) != (last < 0) || last > c) {
      return false;
    }
  }
  return true;
}
static_assert(in_place_order_holds(), "the in-place conversion order overwrites raw bytes before they are read");

// Chunks converted per step: the step's raw bytes awaited (their own TMA box and barrier), all of
// them read, one barrier (from the step that holds chunk kFirstOverlappingChunk on), all their 16-bit
// units written; the later steps' bytes are still landing meanwhile.
inline constexpr int kChunksPerStep = kChunks / kConvertSteps;
inline constexpr int kRawStepBytes = kChunksPerStep * kRawChunkBytes;  // 12,288
static_assert(kChunks % kConvertSteps == 0, "whole steps of chunks");

// Converts the stage's raw tile in place (above), by the converter's 128 threads (`thread` 0..127),
// step s once raw_landed[s] completes its phase of parity `parity`: per chunk each thread reads 4
// pieces of 8 raw bytes (a warp: 256 contiguous bytes) and writes 4 swizzled 16-byte units (a warp: 4
// whole 128-byte rows). A step's writes overlap only raw chunks at or before its last
// (in_place_order_holds), which every thread has read before the step's barrier. The proxy fence makes
// the writes visible to the consumers' wgmma once the caller signals them.
template <typename T>
__device__ __forceinline__ void convert_tile(char* stage, const uint64_t (&raw_landed)[kConvertSteps], uint32_t parity,
                                             int thread) {
  constexpr int kUnits = kBlockN * kChunkCols / 8;        // 512 units of 8 values per chunk
  constexpr int kPerThread = kUnits / kConverterThreads;  // 4
  const char* raw = stage + kRawOffset;
#pragma unroll
  for (int step = 0; step < kConvertSteps; ++step) {
    const int c0 = step * kChunksPerStep;
    ptx::mbarrier_wait(ptx::smem_addr(&raw_landed[step]), parity);
    uint2 in[kChunksPerStep][kPerThread];  // [chunk][k] e4m3 values [8 u, 8 u + 8) of token `row`
#pragma unroll
    for (int j = 0; j < kChunksPerStep; ++j) {
#pragma unroll
      for (int k = 0; k < kPerThread; ++k) {
        const int x = thread + kConverterThreads * k;
        in[j][k] = *reinterpret_cast<const uint2*>(raw + (c0 + j) * kRawChunkBytes + x * 8);
      }
    }
    if (c0 + kChunksPerStep > kFirstOverlappingChunk) {
      ptx::bar_sync(kConvert, kConverterThreads);
    }
#pragma unroll
    for (int j = 0; j < kChunksPerStep; ++j) {
#pragma unroll
      for (int k = 0; k < kPerThread; ++k) {
        const int x = thread + kConverterThreads * k;
        const uint2 v = in[j][k];
        const uint4 out = make_uint4(e4m3_pair<T, false>(v.x, 1.f, 1.f), e4m3_pair<T, false, true>(v.x, 1.f, 1.f),
                                     e4m3_pair<T, false>(v.y, 1.f, 1.f), e4m3_pair<T, false, true>(v.y, 1.f, 1.f));
        *reinterpret_cast<uint4*>(stage + (c0 + j) * kChunkBytes + swizzled_offset(x / 8, x % 8 * 8)) = out;
      }
    }
  }
  ptx::fence_proxy_async_shared();
}

}  // namespace openmla::sm90::fp8
