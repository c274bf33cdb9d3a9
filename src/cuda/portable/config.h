#pragma once
// Compile-time constants of the portable (mma.sync) decode kernel.

#include "../common/params.h"
#include "openmla/decode.h"

namespace openmla::portable {

inline constexpr int kWarps = 8;
inline constexpr int kThreads = kWarps * 32;
inline constexpr int kStages = 2;                       // cache tiles in flight (cp.async double buffering)
inline constexpr int kFp8Stages = 3;                    // ... of a per-tensor FP8 cache (raw tiles, half the bytes)
inline constexpr int kChunk = 8;                        // elements per 16-byte cp.async / ldmatrix row
inline constexpr int kRowChunks = cuda::kDQK / kChunk;  // 16-byte chunks in a q or cache row
inline constexpr int kThreadsPerRow = 8;                // a warp loads 4 rows of 128 contiguous bytes at a time
// Split scores on a per-tensor FP8 cache at 16 rows (fp8_fragments.cuh): groups of k16 steps the score
// product is split into, one per warp of a key group.
inline constexpr int kScoreDimGroups = 4;

// An FP8 cache row as it lands in shared memory (docs/fp8.md): the row's bytes and 16-byte chunks.
template <CacheFormat kFormat>
inline constexpr int kRawRowBytes = kFormat == CacheFormat::fp8_656 ? static_cast<int>(kFp8TokenBytes) : cuda::kDQK;
inline constexpr int kTokenValueChunks = kFp8TokenValues / kChunk;  // chunks of a T row that come from e4m3 values
inline constexpr int kTokenScalesAt = kFp8TokenValues;              // byte offsets in a 656-byte token
inline constexpr int kTokenRopeAt = kFp8TokenValues + 4 * (kFp8TokenValues / kFp8TokenTile);

// The named barriers (bar.sync ids) of the kernel; id 0 is the one __syncthreads uses.
enum Barrier : int {
  kBarrierRowGroup0 = 1,  // the warps of output row group 0, in the instances whose row groups sync apart
  kBarrierRowGroup1 = 2,  // the warps of output row group 1
  kBarrierKeyGroup0 = 3,  // split scores: the warps of key group 0 (fp8_fragments.cuh)
  kBarrierKeyGroup1 = 4,  // ... of key group 1
};

}  // namespace openmla::portable
