#pragma once
// The converter warpgroup of the asymmetric schedule on an FP8 cache (asymmetric.cuh): a tile's raw
// bytes, which TMA wrote into the top of its stage, become in place the 9 swizzled chunks of 16-bit
// values (layout.cuh) that the consumer warpgroups read exactly as they read a bf16 or fp16 tile.
//   per tensor: the raw e4m3 values, exact in fp16 (the operand type, fp8_fragments.cuh: Operand);
//     k_scale is applied to the scores and to the output, in fp32;
//   656-byte tokens, bf16 q (kTileExponent): the scales over 2^G as fp16 factors, G the piece's exponent
//     at this tile (TileExponent), each e4m3 value times its factor in fp16, the RoPE part (64 bf16
//     values) times 2^-G, exactly;
//   656-byte tokens, fp16 q: each e4m3 value times its 128-value group's scale in fp32, rounded once to
//     fp16; the RoPE part (64 values, stored in q's dtype) copied.
//
// A stage of kTileBytes (73,728) holds, during the conversion, the 16-bit tile over bytes
// [0, 73,728) (chunk c, dims [64 c, +64) of the 64 tokens, at 8,192 c) and the raw tile over its top
// kRawBytes, in pieces of 64 tokens (RawTile):
//   per tensor: 9 pieces of [64 tokens][64 bytes], piece c = chunk c's e4m3 bytes (make_fp8_chunk_map),
//     from byte 36,864;
//   656-byte tokens: 41 pieces of [64 tokens][16 bytes], piece k = bytes [16 k, +16) of each token
//     (make_fp8_chunk_map too): pieces 4 c .. 4 c + 3 chunk c's e4m3 bytes, 32 the scales, 33-40 the
//     RoPE values, from byte 31,744.
// Chunks are converted in steps of three, in order: every piece a step's writes overlap is read, by
// every converter thread, in that step or an earlier one (in_place_order_holds), and from the first
// step whose writes overlap raw bytes on, a barrier (kConvert) separates a step's reads from its writes.
// The 656-byte token's RoPE chunk follows as a phase of its own (convert_tile).

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../common/ptx/barrier.cuh"
#include "../common/ptx/fence.cuh"
#include "../common/ptx/mbarrier.cuh"
#include "config.h"
#include "fp8_fragments.cuh"
#include "layout.cuh"
#include "openmla/decode.h"

namespace openmla::sm90::fp8 {

// Chunks converted per step (and, per tensor, per TMA box and barrier).
inline constexpr int kChunksPerStep = kChunks / kConvertSteps;
static_assert(kChunks % kConvertSteps == 0, "whole steps of chunks");

// 8-value units of a chunk (64 tokens x 8) and a converter thread's share of them.
inline constexpr int kUnits = kBlockN * kChunkCols / 8;
inline constexpr int kUnitsPerThread = kUnits / kConverterThreads;  // 4

// Where a tile's raw bytes lie in their stage, piece by piece, and which 8-value units of a chunk
// converter thread `thread` takes (k = 0..3): values(c, thread, k) is where their e4m3 bytes lie in the
// raw tile, dest(thread, k) where their 16-byte unit goes in the chunk.
template <CacheFormat kFormat>
struct RawTile;

template <>
struct RawTile<CacheFormat::fp8_per_tensor> {
  static constexpr int kPieceBytes = kBlockN * kPerTensorPieceBytes;                               // 4,096
  static constexpr int kPieces = kTokenBytes<CacheFormat::fp8_per_tensor> / kPerTensorPieceBytes;  // 9: chunk c
  static constexpr int kBoxes = kConvertSteps;  // one TMA box of kChunksPerStep pieces per step
  // The chunk whose conversion reads piece k last.
  __host__ __device__ static constexpr int last_reader(int k) { return k; }
  // Unit x = thread + 128 k is token x / 8's values [8 (x % 8), +8): a warp's units are 4 tokens' 8
  // each (reads: 256 contiguous bytes; writes: 4 whole rows).
  __device__ static int values(int c, int thread, int k) {
    return c * kPieceBytes + (thread + kConverterThreads * k) * 8;
  }
  __device__ static uint32_t dest(int thread, int k) {
    return swizzled_offset(thread / 8 + kConverterThreads / 8 * k, thread % 8 * 8);
  }
};

template <>
struct RawTile<CacheFormat::fp8_656> {
  static constexpr int kPieceBytes = kBlockN * kToken656PieceBytes;                        // 1,024
  static constexpr int kPieces = kTokenBytes<CacheFormat::fp8_656> / kToken656PieceBytes;  // 41
  static constexpr int kBoxes = 1;                                                         // one TMA box of every piece
  static constexpr int kScalePiece = kScaleOffset / kToken656PieceBytes;                   // 32
  static constexpr int kRopePiece = kRopeOffset / kToken656PieceBytes;                     // 33
  __host__ __device__ static constexpr int last_reader(int k) {
    return k < kScalePiece ? k / 4 : (k == kScalePiece ? kVChunks - 1 : kChunks - 1);
  }
  // Thread t's units are token t % 64's values [8 u, +8) for u = t / 64 + 2 k: a warp's units are one
  // unit of 32 tokens (reads: 16-byte strides; writes: one 16-byte unit of 32 rows), and a thread's
  // units share one token and its scales.
  __device__ static int values(int c, int thread, int k) {
    return (4 * c + k) * kPieceBytes + thread % kBlockN * kToken656PieceBytes + thread / kBlockN * 8;
  }
  __device__ static uint32_t dest(int thread, int k) {
    return swizzled_offset(thread % kBlockN, (thread / kBlockN + 2 * k) * 8);
  }
  // The scale of chunk c's values of the thread's token, and the thread's k-th unit of RoPE values.
  __device__ static int scale(int c, int thread) {
    return kScalePiece * kPieceBytes + thread % kBlockN * kToken656PieceBytes + c / 2 * 4;
  }
  __device__ static int rope(int thread, int k) {
    return (kRopePiece + thread / kBlockN + 2 * k) * kPieceBytes + thread % kBlockN * kToken656PieceBytes;
  }
};

template <CacheFormat kFormat>
inline constexpr int kRawBytes = RawTile<kFormat>::kPieces* RawTile<kFormat>::kPieceBytes;
template <CacheFormat kFormat>
inline constexpr int kRawOffset = kTileBytes - kRawBytes<kFormat>;  // where TMA writes the raw tile in its stage

__host__ __device__ constexpr int step_of(int chunk) { return chunk / kChunksPerStep; }

// The first chunk whose 16-bit bytes overlap raw piece k (pieces never straddle chunks).
template <CacheFormat kFormat>
__host__ __device__ constexpr int first_writer(int k) {
  return (kRawOffset<kFormat> + k * RawTile<kFormat>::kPieceBytes) / kChunkBytes;
}

// The first step whose writes overlap raw bytes: it and every later step separate reads from writes.
template <CacheFormat kFormat>
__host__ __device__ constexpr int first_overlapping_step() {
  return step_of(first_writer<kFormat>(0));
}

// Whether converting in steps, in order, is safe: every piece is read for the last time in the step
// that first overwrites it or an earlier one, and no step before first_overlapping_step overwrites any.
template <CacheFormat kFormat>
__host__ __device__ constexpr bool in_place_order_holds() {
  using L = RawTile<kFormat>;
  if (kRawOffset<kFormat> % L::kPieceBytes != 0 || kChunkBytes % L::kPieceBytes != 0) {
    return false;
  }
  for (int k = 0; k < L::kPieces; ++k) {
    const int written = step_of(first_writer<kFormat>(k));
    if (written < step_of(L::last_reader(k)) || written < first_overlapping_step<kFormat>()) {
      return false;
    }
  }
  return true;
}
static_assert(in_place_order_holds<CacheFormat::fp8_per_tensor>() && in_place_order_holds<CacheFormat::fp8_656>(),
              "the in-place conversion order overwrites raw bytes before they are read");

// The exponent G of a piece's 656-byte tiles (kTileExponent): the first tile's takes floor(log2) of its
// largest scale, and a later tile raises it to its own where that is more than 6 above, so G only rises
// and each factor (a scale over 2^G) stays below 2^7, each value times it below 448 x 2^7 = 57,344 in
// fp16. Only the tokens before `valid` count (the others may hold any bytes).
struct TileExponent {
  int* warp_max;  // [4] shared: each converter warp's largest exponent of the tile
  float& up;      // shared: 2^G of the tile, for the consumers
  float& shift;   // shared: G before - G of the tile (at most 0; 0 on the piece's first)
  int& running;   // the converter's G of the piece so far (fp8::kNoExponent before its first tile)
};

// Converts the stage's raw tile in place (above), by the converter's 128 threads (`thread` 0..127):
// step s waits for raw_landed[s] (per tensor; the 656-byte token's one box: raw_landed[0] before step
// 0) to complete its phase of parity `parity`, reads the step's raw units, and writes their swizzled
// 16-byte units. The 656-byte token's RoPE chunk (8) follows the last step as a phase of its own (read,
// barrier, write), which keeps fewer registers live; its pieces are overwritten only by its own
// writes. The proxy fence makes the writes visible to the consumers' wgmma once the caller signals them.
// kTileExponent: `valid` tokens of the tile are the piece's; G is set as TileExponent says, with one more
// barrier before the first step's writes.
template <typename T, CacheFormat kFormat>
__device__ __forceinline__ void convert_tile(char* stage, const uint64_t (&raw_landed)[kConvertSteps], uint32_t parity,
                                             int thread, int valid, TileExponent exponent) {
  using L = RawTile<kFormat>;
  using Op = Operand<T, kFormat>;
  constexpr bool kScaled = kFormat == CacheFormat::fp8_656;
  constexpr bool kFactors = kTileExponent<T, kFormat>;
  constexpr int kE4m3Chunks = kScaled ? kVChunks : kChunks;  // chunks of e4m3 values
  const char* raw = stage + kRawOffset<kFormat>;
  uint32_t factors[4];  // kFactors: each 128-value block's factor of the thread's token, twice
  float down = 1.f;     // kFactors: 2^-G
#pragma unroll
  for (int step = 0; step < kConvertSteps; ++step) {
    const int c0 = step * kChunksPerStep;
    if (step < L::kBoxes) {
      ptx::mbarrier_wait(ptx::smem_addr(&raw_landed[step]), parity);
    }
    if constexpr (kFactors) {
      if (step == 0) {  // the scales lie in chunk 7's bytes, overwritten only in the last step
        const float4 sc = *reinterpret_cast<const float4*>(raw + L::scale(0, thread));
        const int mine = thread % kBlockN < valid
                             ? exponent_of(fmaxf(fmaxf(fabsf(sc.x), fabsf(sc.y)), fmaxf(fabsf(sc.z), fabsf(sc.w))))
                             : -126;
        const int warp_max = __reduce_max_sync(0xffffffffu, mine);
        if (thread % 32 == 0) {
          exponent.warp_max[thread / 32] = warp_max;
        }
        ptx::bar_sync(kConvert, kConverterThreads);
        int largest = exponent.warp_max[0];
#pragma unroll
        for (int w = 1; w < kConverterThreads / 32; ++w) {
          largest = max(largest, exponent.warp_max[w]);
        }
        const int before = exponent.running;
        if (largest > before + 6) {
          exponent.running = largest;
        }
        if (thread == 0) {
          exponent.up = exp2i(exponent.running);
          exponent.shift = before == kNoExponent ? 0.f : static_cast<float>(before - exponent.running);
        }
        down = exp2i(-exponent.running);
        factors[0] = pack2<__half>(sc.x * down, sc.x * down);
        factors[1] = pack2<__half>(sc.y * down, sc.y * down);
        factors[2] = pack2<__half>(sc.z * down, sc.z * down);
        factors[3] = pack2<__half>(sc.w * down, sc.w * down);
      }
    }
    uint2 in[kChunksPerStep][kUnitsPerThread];  // [chunk][k] the 8 e4m3 bytes of unit k
    float scale[kChunksPerStep];                // [chunk] 656-byte tokens: the scale of the thread's token
#pragma unroll
    for (int j = 0; j < kChunksPerStep; ++j) {
      const int c = c0 + j;
      if (c < kE4m3Chunks) {
#pragma unroll
        for (int k = 0; k < kUnitsPerThread; ++k) {
          in[j][k] = *reinterpret_cast<const uint2*>(raw + L::values(c, thread, k));
        }
        if constexpr (kScaled && !kFactors) {
          scale[j] = *reinterpret_cast<const float*>(raw + L::scale(c, thread));
        } else {
          scale[j] = 1.f;
        }
      }
    }
    if (step >= first_overlapping_step<kFormat>()) {
      ptx::bar_sync(kConvert, kConverterThreads);
    }
#pragma unroll
    for (int j = 0; j < kChunksPerStep; ++j) {
      const int c = c0 + j;
      if (c < kE4m3Chunks) {
#pragma unroll
        for (int k = 0; k < kUnitsPerThread; ++k) {
          const uint2 v = in[j][k];
          uint4 out;
          if constexpr (kFactors) {
            const uint32_t f = factors[c / 2];
            out = make_uint4(e4m3_pair_times(v.x, f), e4m3_pair_times<true>(v.x, f), e4m3_pair_times(v.y, f),
                             e4m3_pair_times<true>(v.y, f));
          } else {
            const float f = scale[j];
            out = make_uint4(e4m3_pair<Op, kScaled>(v.x, f, f), e4m3_pair<Op, kScaled, true>(v.x, f, f),
                             e4m3_pair<Op, kScaled>(v.y, f, f), e4m3_pair<Op, kScaled, true>(v.y, f, f));
          }
          *reinterpret_cast<uint4*>(stage + c * kChunkBytes + L::dest(thread, k)) = out;
        }
      }
    }
  }
  if constexpr (kScaled) {
    uint4 rope[kUnitsPerThread];  // [k] 8 RoPE values, already q's dtype
#pragma unroll
    for (int k = 0; k < kUnitsPerThread; ++k) {
      rope[k] = *reinterpret_cast<const uint4*>(raw + L::rope(thread, k));
      if constexpr (kFactors) {  // times 2^-G, exact in bf16
        uint32_t w[4] = {rope[k].x, rope[k].y, rope[k].z, rope[k].w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float2 f = unpack2<T>(w[i]);
          w[i] = pack2<T>(f.x * down, f.y * down);
        }
        rope[k] = make_uint4(w[0], w[1], w[2], w[3]);
      }
    }
    ptx::bar_sync(kConvert, kConverterThreads);
#pragma unroll
    for (int k = 0; k < kUnitsPerThread; ++k) {
      *reinterpret_cast<uint4*>(stage + (kChunks - 1) * kChunkBytes + L::dest(thread, k)) = rope[k];
    }
  }
  ptx::fence_proxy_async_shared();
}

}  // namespace openmla::sm90::fp8
