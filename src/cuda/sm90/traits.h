#pragma once
// Types and the shared-memory plans of the Hopper kernel, one per consumer schedule.
//
// Every wgmma operand is stored as [64 rows][64 elements] chunks with the 128-byte swizzle (layout.cuh):
// q as 9 chunks (rows x dims), each cache tile as 9 chunks (tokens x dims) exactly as the TMA boxes
// write them, P as one chunk (rows x keys). Chunk bases are 1024-byte aligned, as the swizzle pattern
// and the wgmma descriptors require.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "../common/walk.cuh"
#include "config.h"
#include "piece.cuh"

namespace openmla::sm90 {

template <typename Element>
struct Traits {
  using T = Element;  // __nv_bfloat16 or __half

  struct AsymmetricShared {
    alignas(1024) T q[kChunks][kBlockM * kChunkCols];            // [9][64 rows, 64 dims] of the m-tile's q
    alignas(1024) T kv[kStages][kChunks][kBlockN * kChunkCols];  // [stage][9][64 tokens, 64 dims]; v = chunks 0..7
    alignas(1024) T p[kBlockM * kBlockN];                        // [64 rows, 64 keys] probabilities of a tile
    float row_scale[kBlockM];  // factor rescaling each output row for the current tile (warpgroup 0 -> 1)
    float row_max[kBlockM];    // at the end of a piece: each row's max (log2 domain) and sum
    float row_sum[kBlockM];
    int q_exponent[kBlockM];    // FP8 in fp16: q row r stored times 2^-q_exponent[r] (fp8_fragments.cuh)
    float tile_up[kStages];     // fp8::kTileExponent: 2^G of the stage's tile, which holds its values times 2^-G
    float tile_shift[kStages];  // ... G of the tile before - G (0 on a piece's first tile, whose output is 0)
    float value_up;           // ... at the end of a piece: 2^G of its last tile, the output rows holding O times 2^-G
    uint64_t q_full;          // mbarrier: the piece's q rows landed (p.q_by_tma: 1 arrival + their bytes)
    uint64_t full[kStages];   // mbarrier: the stage's tile is ready: its TMA bytes landed (1 arrival +
                              // transaction bytes), or on an FP8 cache the converter wrote it (128 arrivals)
    uint64_t empty[kStages];  // mbarrier: every consumer warp is done reading the stage (kStageReaders)
    uint64_t raw[kStages][kConvertSteps];  // FP8 cache: box b's raw bytes landed (1 arrival + bytes)
    int bad_page;                          // the piece used a block-table entry outside [0, num_blocks)
    alignas(16) EarlyTiles early;          // 16-bit cache: the tiles loaded during the walk (read as one
                                           // 16-byte load, which must cover no other field)
    cuda::SharedWalk walk;                 // the CTA's walk over its plan part (common/walk.cuh)
  };
  static_assert(sizeof(AsymmetricShared) <= kMaxSharedBytes, "the shared-memory plan exceeds 227 KB");

  // Stage 0 holds tile a of every pair, stage 1 tile b. Once warpgroup 0's scores of tile a retired,
  // the RoPE chunk (8) of stage 0 is free until its next load: it carries P_a to warpgroup 1, and `p`
  // carries P_b to warpgroup 0, so two P buffers fit beside q and two stages.
  struct SeesawShared {
    alignas(1024) T q[kChunks][kBlockM * kChunkCols];            // [9][64 rows, 64 dims] of the m-tile's q
    alignas(1024) T kv[kStages][kChunks][kBlockN * kChunkCols];  // [stage][9][64 tokens, 64 dims]; v = chunks 0..7
    alignas(1024) T p[kBlockM * kBlockN];                        // [64 rows, 64 keys] P_b (warpgroup 1 -> 0)
    float base_a[kBlockM];               // rows' exponent base after tile a (log2 domain; warpgroup 0 -> 1)
    float base_b[kBlockM];               // rows' exponent base after tile b (warpgroup 1 -> 0)
    float sum[kWarpgroups][kBlockM];     // at the end of a piece: each warpgroup's share of the row sums
    uint64_t full[kStages][kChunks];     // mbarrier: the chunk's TMA bytes landed (1 arrival + transaction bytes)
    int32_t next_block[kWarpgroups][2];  // each loader's cache blocks of the next pair's tiles a and b
    int bad_page;                        // the piece used a block-table entry outside [0, num_blocks)
    cuda::SharedWalk walk;               // the CTA's walk over its plan part (common/walk.cuh)
  };
  static_assert(sizeof(SeesawShared) <= kMaxSharedBytes, "the shared-memory plan exceeds 227 KB");

  // The narrow schedule: warpgroup w computes the tiles of the stages n with n % 2 = w. A stage holds a
  // tile as 9 swizzled chunks (a 16-bit cache: kStages stages of kTileBytes) or as the 64 raw tokens TMA
  // copied (an FP8 cache, fp8_fragments.cuh: kFp8Stages stages of 64 tokens of up to 656 bytes, q and P
  // in that file's orders). At the end of a piece warpgroup w's stage w holds the values of the other
  // warpgroup's rows it hands over (narrow.cuh finish). The products' 16-bit operands (q, P) are of
  // type Op: T, or fp16 where an FP8 cache's products run in fp16 whatever q's dtype (fp8_fragments.cuh:
  // Operand), q row r then stored times 2^-q_exponent[r].
  template <typename Op, int kRows, int kTileStages, int kStageBytes>
  struct NarrowShared {
    alignas(1024) Op q[kChunks][kRows * kChunkCols];        // [9][kRows rows, 64 dims] of q
    alignas(1024) uint8_t kv[kTileStages][kStageBytes];     // [stage] a tile: 9 chunks, or 64 raw tokens
    alignas(1024) Op p[kWarpgroups][kRows * kBlockN];       // [warpgroup][kRows rows, 64 keys] P of its tile
    int q_exponent[kRows];                                  // [kRows] FP8 in fp16: q row r scaled by 2^-q_exponent[r]
    float red[kWarpgroups][kWarpgroupThreads / 32][kRows];  // per warp: a tile's row max, at the end the row sum
    alignas(16) int rescale[kWarpgroups][kWarpgroupThreads / 32];  // per warp: a row's max left its base (narrow.cuh)
    float wg_max[kWarpgroups][kRows];                              // at the end of a piece: each warpgroup's row base
    uint64_t full[kTileStages];  // mbarrier: the stage's TMA bytes landed (1 arrival + transaction bytes)
    int bad_page;                // the piece used a block-table entry outside [0, num_blocks)
    cuda::SharedWalk walk;       // the CTA's walk over its plan part (common/walk.cuh)
  };
  // The transposed schedule on an FP8 cache (sm90/transposed.cuh): warpgroup w computes the scores of the
  // piece's tiles t with t % 2 = w, and both compute their half of every tile's output. Per scorer w:
  // its P, the rows' bases after its latest tile and the factors that tile applied to what came before.
  template <int kStageBytes>
  struct TransposedShared {
    alignas(1024) __half q[kChunks][kBlockM * kChunkCols];     // [9][64 rows, 64 dims] score order
    alignas(1024) __half p[kWarpgroups][kBlockM * kBlockN];    // [scorer][64 rows, 64 key positions]
    alignas(1024) uint8_t kv[kTransposedStages][kStageBytes];  // [stage] 64 raw tokens
    float base[kWarpgroups][kBlockM];                          // [scorer][row] exponent base (log2 domain)
    float factor[kWarpgroups][kBlockM];                        // [scorer][row] 2^(base before - base after)
    float red[kWarpgroups][kWarpgroupThreads / 32][kBlockM];   // per warp: a tile's row max, at the end the row sum
    float row_scale[kBlockM];                                  // scores to the log2 domain, per row
    int limit[kBlockM];                                        // keys below it are visible to the row
    int q_exponent[kBlockM];                                   // q row r stored times 2^-q_exponent[r]
    alignas(16) int rescale[kWarpgroups][2][kWarpgroupThreads / 32];  // [scorer][tile parity][warp] flags
    int moved[kWarpgroups];                                           // [scorer] some base moved at its latest tile
    uint64_t full[kTransposedStages];   // mbarrier: the stage's TMA bytes landed (1 arrival + transaction bytes)
    uint64_t empty[kTransposedStages];  // mbarrier: every warp's products of the stage retired (kStageReaders)
    int bad_page[kWarpgroups];          // [issuer] the piece used a block-table entry outside [0, num_blocks)
    cuda::SharedWalk walk;              // the CTA's walk over its plan part (common/walk.cuh)
  };
  static_assert(sizeof(TransposedShared<kBlockN * kFp8MaxTokenBytes>) <= kMaxSharedBytes,
                "the shared-memory plan exceeds 227 KB");

  template <int kRows>
  using NarrowPlainShared = NarrowShared<T, kRows, kStages, kTileBytes>;
  template <typename Op>
  using NarrowFp8Shared = NarrowShared<Op, kFp8Rows, kFp8Stages, kBlockN * kFp8MaxTokenBytes>;
  static_assert(sizeof(NarrowPlainShared<kNarrowMaxRows>) <= kMaxSharedBytes, "the shared-memory plan exceeds 227 KB");
  static_assert(sizeof(NarrowFp8Shared<T>) <= kMaxSharedBytes, "the shared-memory plan exceeds 227 KB");
};

}  // namespace openmla::sm90
