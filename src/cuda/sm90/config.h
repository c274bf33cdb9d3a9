#pragma once
// Compile-time constants of the Hopper (sm_90a) decode kernel.

#include "../common/params.h"

namespace openmla::sm90 {

inline constexpr int kWarpgroupThreads = 128;
inline constexpr int kWarpgroups = 2;                 // two consumer warpgroups, no producer warpgroup
inline constexpr int kThreads = kWarpgroups * kWarpgroupThreads;
inline constexpr int kWarps = kThreads / 32;

inline constexpr int kBlockM = 64;                    // query rows per CTA: wgmma's M
inline constexpr int kBlockN = 64;                    // keys per tile = tokens per TMA box
inline constexpr int kStages = 2;                     // cache tiles in flight

// Operands live in shared memory as chunks of [64 rows][64 elements]: one 128-byte row per row,
// 128-byte swizzle, 8 KB per chunk. A q or cache row of kDQK = 576 elements is 9 chunks; the output
// (kDV = 512, the first 8 chunks of a cache row) is split by columns, 4 chunks per warpgroup.
inline constexpr int kChunkCols = 64;
inline constexpr int kRowBytes = kChunkCols * 2;      // 128: one swizzled row
inline constexpr int kChunkBytes = kBlockN * kRowBytes;  // 8192
inline constexpr int kChunks = cuda::kDQK / kChunkCols;  // 9
inline constexpr int kVChunks = cuda::kDV / kChunkCols;  // 8
inline constexpr int kColsPerWarpgroup = cuda::kDV / kWarpgroups;        // 256 output columns
inline constexpr int kVChunksPerWarpgroup = kColsPerWarpgroup / kChunkCols;  // 4
inline constexpr int kTileBytes = kChunks * kChunkBytes;  // 73,728 bytes of one cache tile (one TMA box)

// Arrivals that release a stage: one lane of each consumer warp, after its wgmma reading the stage retired.
inline constexpr int kStageReaders = kWarps;

// Shared memory per block that a Hopper SM offers (opt-in): 227 KB.
inline constexpr int kMaxSharedBytes = 232448;

// Named barriers (bar.sync / bar.arrive); 0 is __syncthreads.
enum NamedBarrier : int {
  kPFull = 1,        // warpgroup 0 wrote P and the row factors of a tile (arrive) -> warpgroup 1 (sync)
  kPFree = 2,        // warpgroup 1's wgmma reading P retired (arrive) -> warpgroup 0 may write P (sync)
  kScoreGroup = 3,   // warpgroup 0 alone, around zeroing a tail tile's rows (sm90/kernel.cuh zero_tail)
};

}  // namespace openmla::sm90
