#pragma once
// Types and the shared-memory plan of the Hopper kernel.
//
// Every wgmma operand is stored as [64 rows][64 elements] chunks with the 128-byte swizzle (layout.cuh):
// q as 9 chunks (rows x dims), each cache tile as 9 chunks (tokens x dims) exactly as one rank-5 TMA
// box writes them, P as one chunk (rows x keys). Chunk bases are 1024-byte aligned, as the swizzle
// pattern and the wgmma descriptors require.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "config.h"

namespace openmla::sm90 {

template <typename Element>
struct Traits {
  using T = Element;  // __nv_bfloat16 or __half

  struct Shared {
    alignas(1024) T q[kChunks][kBlockM * kChunkCols];             // [9][64 rows, 64 dims] of the m-tile's q
    alignas(1024) T kv[kStages][kChunks][kBlockN * kChunkCols];   // [stage][9][64 tokens, 64 dims]; v = chunks 0..7
    alignas(1024) T p[kBlockM * kBlockN];                         // [64 rows, 64 keys] probabilities of a tile
    float row_scale[kBlockM];  // factor rescaling each output row for the current tile (warpgroup 0 -> 1)
    float row_max[kBlockM];    // at the end of a piece: each row's max (log2 domain) and sum
    float row_sum[kBlockM];
    uint64_t full[kStages];    // mbarrier: the stage's TMA bytes landed (1 arrival + transaction bytes)
    uint64_t empty[kStages];   // mbarrier: every consumer warp is done reading the stage (kStageReaders)
    int bad_page;              // the piece used a block-table entry outside [0, num_blocks)
  };
  static_assert(sizeof(Shared) <= kMaxSharedBytes, "the shared-memory plan exceeds 227 KB");
};

}  // namespace openmla::sm90
