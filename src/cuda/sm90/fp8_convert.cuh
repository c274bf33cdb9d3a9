#pragma once
// The converter warpgroup of the asymmetric schedule on an FP8 cache (asymmetric.cuh): a tile's raw
// bytes, which TMA wrote into the top of its stage, become in place the 9 swizzled chunks of 16-bit
// values (layout.cuh) that the consumer warpgroups read exactly as they read a bf16 or fp16 tile.
//   per tensor: the raw e4m3 values, exact in fp16 (the operand type, fp8_fragments.cuh: Operand);
//     k_scale is applied to the scores and to the output, in fp32;
//   656-byte tokens, bf16 q (kTileExponent): the scales over 2^G as fp16 factors, G the piece's exponent
//     at this tile (tile_exponent), each e4m3 value times its factor in fp16, the RoPE part (64 bf16
//     values) times 2^-G, exactly;
//   656-byte tokens, fp16 q: each e4m3 value times its 128-value group's scale in fp32, rounded once to
//     fp16; the RoPE part (64 values, stored in q's dtype) copied.
//
// A stage of kTileBytes (73,728) holds, during the conversion, the 16-bit tile over bytes
// [0, 73,728) (chunk c, dims [64 c, +64) of the 64 tokens, at 8,192 c) and the raw tile over its top
// kRawBytes, in pieces of 64 tokens (RawTile):
//   per tensor: 9 pieces of [64 tokens][64 bytes], piece c = chunk c's e4m3 bytes (make_fp8_chunk_map),
//     from byte 36,864;
//   656-byte tokens: 41 pieces of 1,024 bytes from byte 31,744, in five TMA loads with rows of 64,
//     16 and 128 bytes: pieces 4 c .. 4 c + 3 chunk c's e4m3 bytes as [64 tokens][64 bytes]
//     (make_fp8_chunk_map: chunks 0-2 and 3-5; make_fp8_part_maps: chunks 6-7), piece 32 the scales as
//     [64 tokens][16 bytes], pieces 33-40 the RoPE values as [64 tokens][128 bytes] (make_fp8_part_maps);
//     the values of step s's chunks complete barrier s, with the scales the first and the RoPE values
//     the last.
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

static_assert(kChunks % kConvertSteps == 0, "whole steps of chunks");

// 8-value units of a chunk (64 tokens x 8) and a converter thread's share of them.
inline constexpr int kUnits = kBlockN * kChunkCols / 8;
inline constexpr int kUnitsPerThread = kUnits / kConverterThreads;  // 4

// Where a tile's raw bytes lie in their stage, piece by piece, and which 8-value units of a chunk
// converter thread `thread` takes (k = 0..3): values(c, thread, k) is where their e4m3 bytes lie in the
// raw tile (a read of kReadBytes takes units k, k + 1, ... from there), dest(thread, k) where their
// 16-byte unit goes in the chunk.
template <CacheFormat kFormat>
struct RawTile;

template <>
struct RawTile<CacheFormat::fp8_per_tensor> {
  static constexpr int kPieceBytes = kBlockN * kPerTensorPieceBytes;                               // 4,096
  static constexpr int kPieces = kTokenBytes<CacheFormat::fp8_per_tensor> / kPerTensorPieceBytes;  // 9: chunk c
  static constexpr int kBoxes = kConvertSteps;  // one TMA box of kChunksPerStep pieces per step
  static constexpr int kReadBytes = 8;           // a thread's read: one unit's e4m3 values
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
  static constexpr int kBoxes = kConvertSteps;  // barriers: step s's values (+ the scales, s = 0; + RoPE, s = 2)
  static constexpr int kReadBytes = 16;                                   // a thread's read: units k and k + 1
  static constexpr int kScalePiece = kScaleOffset / kToken656PieceBytes;  // 32
  static constexpr int kRopePiece = kRopeOffset / kToken656PieceBytes;    // 33
  static constexpr int kValueBytes = kVChunks * 4 * kPieceBytes;          // 32,768: the 8 chunks' e4m3 values
  static constexpr int kRopeBytes = (kPieces - kRopePiece) * kPieceBytes;  // 8,192
  __host__ __device__ static constexpr int last_reader(int k) {
    return k < kScalePiece ? k / 4 : (k == kScalePiece ? kVChunks - 1 : kChunks - 1);
  }
  // Thread t's unit k is token(t, k) = 32 (k / 2) + t / 4, its values [8 u, +8) for u = unit(t, k) =
  // 2 (t % 4) + k % 2: four threads share a token, each reading 16 contiguous bytes (units k and k + 1,
  // k even), so a warp's reads of one k / 2 are 8 tokens' 512 contiguous bytes, free of bank conflicts;
  // its writes of one k are 4 16-byte units in each of 8 rows, 8 distinct swizzled columns.
  __device__ static int token(int thread, int k) { return 32 * (k / 2) + thread / 4; }
  __device__ static int unit(int thread, int k) { return 2 * (thread % 4) + k % 2; }
  __device__ static int values(int c, int thread, int k) {
    return c * 4 * kPieceBytes + token(thread, k) * kChunkCols + unit(thread, k) * 8;
  }
  __device__ static uint32_t dest(int thread, int k) {
    return swizzled_offset(token(thread, k), unit(thread, k) * 8);
  }
  // The scales of token `tok` (16 bytes: one fp32 per 128 values), and chunk c's among them.
  __device__ static int scales(int tok) { return kScalePiece * kPieceBytes + tok * 16; }
  __device__ static int scale(int c, int tok) { return scales(tok) + c / 2 * 4; }
  // RoPE unit k of thread t (8 values of 16 bytes): x = 128 k + t is token x / 8's unit x % 8, so a
  // warp reads 4 tokens' 512 contiguous bytes and writes their 4 whole rows of the RoPE chunk.
  __device__ static int rope(int thread, int k) {
    return kRopePiece * kPieceBytes + (kConverterThreads * k + thread) * 16;
  }
  __device__ static uint32_t rope_dest(int thread, int k) {
    const int x = kConverterThreads * k + thread;
    return swizzled_offset(x / 8, x % 8 * 8);
  }
};

static_assert(RawTile<CacheFormat::fp8_per_tensor>::kBoxes == kConvertSteps &&
                  RawTile<CacheFormat::fp8_656>::kBoxes == kConvertSteps && kLastValueChunks656 > 0 &&
                  kLastValueChunks656 <= kChunksPerStep,
              "each conversion step waits for the load of its own chunks (convert_tile)");

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
//
// kTileExponent: once the raw bytes of the tile in stage `stage` of s landed (s.raw[stage][0], parity
// `parity`), sets its G from `before`, the G of the piece's tile before it (kNoExponent for its first),
// as above from the scales of its first `valid` tokens, writes 2^G and the shift of G for the consumers
// (s.tile_up, s.tile_shift; the converter's `thread` 0) and returns 2^-G. Each converter warp reads
// all 64 tokens' scales (lane l tokens l and l + 32, 512 contiguous bytes a read) and finds the same G
// by itself, so no barrier joins the warps.
template <CacheFormat kFormat, typename Shared>
__device__ __forceinline__ float tile_exponent(Shared& s, int stage, uint32_t parity, int thread, int valid,
                                               int before) {
  using L = RawTile<kFormat>;
  const char* raw = reinterpret_cast<const char*>(&s.kv[stage][0][0]) + kRawOffset<kFormat>;
  ptx::mbarrier_wait(ptx::smem_addr(&s.raw[stage][0]), parity);
  int mine = -126;  // the least exponent_of
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int tok = thread % 32 + 32 * h;
    const float4 sc = *reinterpret_cast<const float4*>(raw + L::scales(tok));
    if (tok < valid) {
      mine = max(mine, exponent_of(fmaxf(fmaxf(fabsf(sc.x), fabsf(sc.y)), fmaxf(fabsf(sc.z), fabsf(sc.w)))));
    }
  }
  const int largest = __reduce_max_sync(0xffffffffu, mine);
  const int g = largest > before + 6 ? largest : before;
  if (thread == 0) {
    s.tile_up[stage] = exp2i(g);
    s.tile_shift[stage] = before == kNoExponent ? 0.f : static_cast<float>(before - g);
  }
  return exp2i(-g);
}

// Converts the stage's raw tile in place (above), by the converter's 128 threads (`thread` 0..127):
// step s waits for raw_landed[s] (its chunks' values: per tensor one box, 656-byte tokens one load, with
// the scales before step 0 and the RoPE values before step 2) to complete its phase of parity `parity`,
// reads the step's raw units (656-byte tokens: and their scales), and writes their swizzled 16-byte units.
// The 656-byte token's RoPE chunk (8) follows the last step as a phase of its own (read, barrier, write),
// which keeps fewer registers live; its pieces are overwritten only by its own writes. The proxy fence
// makes the writes visible to the consumers' wgmma once the caller signals them. kTileExponent: `down` is
// 2^-G of the tile (tile_exponent).
template <typename T, CacheFormat kFormat>
__device__ __forceinline__ void convert_tile(char* stage, const uint64_t (&raw_landed)[kConvertSteps], uint32_t parity,
                                             int thread, float down = 1.f) {
  using L = RawTile<kFormat>;
  using Op = Operand<T, kFormat>;
  constexpr bool kScaled = kFormat == CacheFormat::fp8_656;
  constexpr bool kFactors = kTileExponent<T, kFormat>;
  constexpr int kE4m3Chunks = kScaled ? kVChunks : kChunks;  // chunks of e4m3 values
  constexpr int kUnitsPerRead = L::kReadBytes / 8;
  const char* raw = stage + kRawOffset<kFormat>;
#pragma unroll
  for (int step = 0; step < kConvertSteps; ++step) {
    const int c0 = step * kChunksPerStep;
    ptx::mbarrier_wait(ptx::smem_addr(&raw_landed[step]), parity);
    uint2 in[kChunksPerStep][kUnitsPerThread];  // [chunk][k] the 8 e4m3 bytes of unit k
    float scale[kChunksPerStep][kUnitsPerThread / kUnitsPerRead];  // 656-byte tokens: [chunk][read] its token's scale
#pragma unroll
    for (int j = 0; j < kChunksPerStep; ++j) {
      const int c = c0 + j;
      if (c < kE4m3Chunks) {
#pragma unroll
        for (int k = 0; k < kUnitsPerThread; k += kUnitsPerRead) {
          if constexpr (kUnitsPerRead == 2) {
            const uint4 v = *reinterpret_cast<const uint4*>(raw + L::values(c, thread, k));
            in[j][k] = make_uint2(v.x, v.y);
            in[j][k + 1] = make_uint2(v.z, v.w);
          } else {
            in[j][k] = *reinterpret_cast<const uint2*>(raw + L::values(c, thread, k));
          }
          if constexpr (kScaled) {
            scale[j][k / kUnitsPerRead] = *reinterpret_cast<const float*>(raw + L::scale(c, L::token(thread, k)));
          } else {
            scale[j][k / kUnitsPerRead] = 1.f;
          }
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
          const float f = scale[j][k / kUnitsPerRead];
          const uint32_t factor = pack2<__half>(f * down, f * down);  // kFactors
          const uint2 v = in[j][k];
          uint4 out;
          if constexpr (kFactors) {
            out = make_uint4(e4m3_pair_times(v.x, factor), e4m3_pair_times<true>(v.x, factor),
                             e4m3_pair_times(v.y, factor), e4m3_pair_times<true>(v.y, factor));
          } else {
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
      *reinterpret_cast<uint4*>(stage + (kChunks - 1) * kChunkBytes + L::rope_dest(thread, k)) = rope[k];
    }
  }
  ptx::fence_proxy_async_shared();
}

}  // namespace openmla::sm90::fp8
