#pragma once
// Compile-time constants of the portable (mma.sync) decode kernel.

namespace openmla::portable {

inline constexpr int kWarps = 8;
inline constexpr int kThreads = kWarps * 32;
inline constexpr int kStages = 2;            // cache tiles in flight (cp.async double buffering)
inline constexpr int kChunk = 8;             // elements per 16-byte cp.async / ldmatrix row
inline constexpr int kRowChunks = 576 / kChunk;  // 16-byte chunks in a q or cache row
inline constexpr int kThreadsPerRow = 8;     // a warp loads 4 rows of 128 contiguous bytes at a time

}  // namespace openmla::portable
