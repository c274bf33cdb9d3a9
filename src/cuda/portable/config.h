#pragma once
// Compile-time constants of the portable (mma.sync) decode kernel.

#include "../common/params.h"

namespace openmla::portable {

inline constexpr int kWarps = 8;
inline constexpr int kThreads = kWarps * 32;
inline constexpr int kStages = 2;                       // cache tiles in flight (cp.async double buffering)
inline constexpr int kChunk = 8;                        // elements per 16-byte cp.async / ldmatrix row
inline constexpr int kRowChunks = cuda::kDQK / kChunk;  // 16-byte chunks in a q or cache row
inline constexpr int kThreadsPerRow = 8;                // a warp loads 4 rows of 128 contiguous bytes at a time

// The named barriers (bar.sync ids) of the kernel; id 0 is the one __syncthreads uses.
enum Barrier : int {
  kBarrierRowGroup0 = 1,  // the warps of output row group 0, in the instances whose row groups sync apart
  kBarrierRowGroup1 = 2,  // the warps of output row group 1
};

}  // namespace openmla::portable
