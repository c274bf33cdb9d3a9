#pragma once
// What both consumer schedules of the Hopper kernel share about one sequence piece: the keys it
// covers, loading its query rows, and writing its output rows.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "../../core/pieces.h"
#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../common/ptx/fence.cuh"
#include "../common/ptx/mbarrier.cuh"
#include "../common/ptx/tma.cuh"
#include "../common/row_result.cuh"
#include "../common/walk.cuh"
#include "layout.cuh"

namespace openmla::sm90 {

inline constexpr int kAccumulators = kColsPerWarpgroup / 2;  // 128 fp32 of O per thread: m64n256
inline constexpr int kScoreRegisters = kBlockN / 2;          // 32 fp32 of S per thread: m64n64
inline constexpr int kKSteps = kBlockN / 16;                 // k16 steps of P V per tile

// One sequence piece (core/pieces.h): its keys, its status found before any load, its partial slot.
using schedule::Piece;

// The page of a sequence that holds its key `key`: its column in the block-table row.
__device__ __forceinline__ int page_of(const cuda::DecodeParams& p, int key) {
  return p.page_shift >= 0 ? key >> p.page_shift : key / p.page_size;
}

// The block-table entry of the page holding key `key` of the piece's sequence ([b, max_blocks]).
// Only pages the piece covers are read (key < key_end <= s_k, and s_k fits the block-table row: the
// piece walk, core/pieces.h, checked it).
__device__ __forceinline__ const int32_t* block_entry(const cuda::DecodeParams& p, const Piece& piece, int key) {
  return p.block_table + piece.seq * p.bt_stride_b + static_cast<int64_t>(page_of(p, key)) * p.bt_stride_page;
}

// The cache block holding key `key` of the piece's sequence.
__device__ __forceinline__ int32_t cache_block(const cuda::DecodeParams& p, const Piece& piece, int key) {
  return *block_entry(p, piece, key);
}

// The slot of key `key` within its page: the token coordinate of the TMA box that starts at it.
__device__ __forceinline__ int page_token(const cuda::DecodeParams& p, int key) {
  return p.page_shift >= 0 ? key & (p.page_size - 1) : key % p.page_size;
}

// The key below which packed query row `packed` of a piece (keys up to key_end) sees the cache: the
// piece's end, or for a causal decode the row's own position, s_k - s_q + i + 1 for its query i =
// packed / group (a padding row past p.rows counts as query 0). Only a causal decode divides.
__device__ __forceinline__ int key_limit(const cuda::DecodeParams& p, int s_k, int packed, int key_end) {
  const int i = p.causal && packed < p.rows ? packed / p.group : 0;
  const int visible = p.causal ? s_k - p.s_q + i + 1 : s_k;
  return visible < key_end ? visible : key_end;
}

// Loads the tile of 64 keys from key0 of the piece (cache block `block`) into `stage` with TMA,
// completing mbarrier `full` with its kBytes: 9 chunks of 16-bit values (kTileBytes) or raw FP8
// pieces from piece chunk0 on (a rank-5 map, sm90/launch.h make_cache_map, make_fp8_chunk_map: chunk0
// is its third coordinate), or 64 raw FP8 tokens (a rank-4 map, make_fp8_cache_map). A block outside
// [0, num_blocks) is never read: `full` gets a plain arrival (no bytes), the consumers run on over
// stale data, and `bad_page` marks the piece, whose rows are then written as NaN.
// load_tile_at takes the token coordinate from token_of(), called only for a block in range (load_tile:
// page_token of key0; a caller may have found it before).
template <int kBytes = kTileBytes, int kRank = 5, typename TokenOf>
__device__ __forceinline__ void load_tile_at(const cuda::DecodeParams& p, const CUtensorMap* map, uint32_t stage,
                                             uint32_t full, TokenOf&& token_of, int kv_head, int32_t block,
                                             uint64_t policy, int& bad_page, int chunk0 = 0) {
  if (block < 0 || block >= p.num_blocks) {
    bad_page = 1;
    ptx::mbarrier_arrive(full);
    return;
  }
  ptx::mbarrier_arrive_expect_tx(full, kBytes);
  static_assert(kRank == 4 || kRank == 5, "a rank-4 or rank-5 cache map");
  if constexpr (kRank == 5) {
    ptx::tma_load_5d(stage, map, 0, token_of(), chunk0, kv_head, block, full, policy);
  } else {
    ptx::tma_load_4d(stage, map, 0, token_of(), kv_head, block, full, policy);
  }
}
template <int kBytes = kTileBytes, int kRank = 5>
__device__ __forceinline__ void load_tile(const cuda::DecodeParams& p, const CUtensorMap* map, uint32_t stage,
                                          uint32_t full, int key0, int kv_head, int32_t block, uint64_t policy,
                                          int& bad_page, int chunk0 = 0) {
  load_tile_at<kBytes, kRank>(
      p, map, stage, full, [&] { return page_token(p, key0); }, kv_head, block, policy, bad_page, chunk0);
}

// The tiles a CTA loads while thread 0 walks its part: the first `count` tiles from key key_begin of
// sequence seq (the piece cuda::guess_first_piece finds in the part's stored fields), in the stages
// its first piece's first tiles go to.
struct EarlyTiles {
  int seq;
  int key_begin;
  int count;
  bool q;  // the CTA's q rows of sequence seq are loaded too
};

// The early tiles of guess g: its first tiles, at most kCount, up to the first whose page lies outside
// the block-table row.
template <int kCount>
__device__ __forceinline__ EarlyTiles early_tiles_of(const cuda::DecodeParams& p, const cuda::FirstGuess& g) {
  EarlyTiles early{g.seq, g.tile_begin * kBlockN, 0, false};
  while (early.count < kCount && early.count < g.tile_end - g.tile_begin &&
         page_of(p, early.key_begin + early.count * kBlockN) < p.max_blocks) {
    ++early.count;
  }
  return early;
}

// Of the first kCount tiles of a part's first piece (n_tiles in all), how many the early loads hold:
// all of them when the early tiles are exactly those (as in every plan that passes the walk's checks),
// else 0 and `stale` counts the early loads, which the piece must wait for and release unread.
template <int kCount>
__device__ __forceinline__ int early_tiles_used(const EarlyTiles& early, const Piece& piece, int n_tiles, int& stale) {
  const bool same = piece.seq == early.seq && piece.key_begin == early.key_begin &&
                    (n_tiles < kCount ? n_tiles : kCount) == early.count;
  stale = same ? 0 : early.count;
  return same ? early.count : 0;
}

// Issues tiles first, first + kStride, ... (kCount of them, those below n_tiles) of a piece, their
// blocks read together (one round trip, not one after another), and returns the block of the tile
// after them (0 past the piece's end). fetch(t): tile t's cache block; issue(t, block): its load.
template <int kCount, int kStride, typename Fetch, typename Issue>
__device__ __forceinline__ int32_t issue_first_tiles(int first, int n_tiles, Fetch&& fetch, Issue&& issue) {
  int32_t blocks[kCount];
#pragma unroll
  for (int k = 0; k < kCount; ++k) {
    const int t = first + k * kStride;
    blocks[k] = t < n_tiles ? fetch(t) : 0;
  }
  const int after = first + kCount * kStride;
  const int32_t next = after < n_tiles ? fetch(after) : 0;
#pragma unroll
  for (int k = 0; k < kCount; ++k) {
    const int t = first + k * kStride;
    if (t < n_tiles) {
      issue(t, blocks[k]);
    }
  }
  return next;
}

// Multiplies the thread's two accumulator rows (d[4 j + e], row half e / 2) by their factors.
template <int N>
__device__ __forceinline__ void scale_rows(float (&d)[N], float factor0, float factor1) {
#pragma unroll
  for (int j = 0; j < N / 4; ++j) {
    d[4 * j] *= factor0;
    d[4 * j + 1] *= factor0;
    d[4 * j + 2] *= factor1;
    d[4 * j + 3] *= factor1;
  }
}

// Rows [kRows m_tile, +kRows) of q for `seq` into `sq` (chunks of the swizzled layout), by all threads
// of the CTA; rows past p.rows are zero. Packed rows may have any strides, so the threads copy 16-byte
// pieces; the proxy fence makes the generic writes visible to wgmma after the caller's next barrier.
template <typename T, int kRows = kBlockM>
__device__ void load_q(const cuda::DecodeParams& p, int seq, int m_tile, int kv_head,
                       T (&sq)[kChunks][kRows * kChunkCols]) {
  const auto* q = static_cast<const T*>(p.q);  // [b, s_q, h_q, kDQK]
  constexpr int kUnitsPerRow = kChunks * kChunkCols / 8;
  // Not unrolled: unrolled, the compiler keeps all of the thread's addresses live across pieces.
#pragma unroll 1
  for (int x = static_cast<int>(threadIdx.x); x < kRows * kUnitsPerRow; x += kThreads) {
    const int r = x / kUnitsPerRow;
    const int chunk = x % kUnitsPerRow / 8;
    const int col = x % 8 * 8;
    const int packed = m_tile * kRows + r;
    const bool valid = packed < p.rows;
    const int i = valid ? packed / p.group : 0;
    const int head = kv_head * p.group + (valid ? packed % p.group : 0);
    const T* src = q + seq * p.q_stride_b + i * p.q_stride_s + head * p.q_stride_h + chunk * kChunkCols + col;
    ptx::cp_async_16(ptx::smem_addr(&sq[chunk][0]) + swizzled_offset(r, col), src, valid ? 16 : 0);
  }
  ptx::cp_async_commit();
  ptx::cp_async_wait<0>();
  ptx::fence_proxy_async_shared();
}

// Asks L2 for the q rows of `seq` that a CTA computing m-tile m_tile (rows [kRows m_tile, +kRows), those
// below p.rows) of KV head kv_head loads, the 128-byte lines spread over kCallers threads: a later
// load of them then waits for an L2 round trip, not for one through the DRAM queue that the cache
// stream keeps full.
template <typename T, int kRows, int kCallers>
__device__ __forceinline__ void prefetch_q_rows(const cuda::DecodeParams& p, int seq, int m_tile, int kv_head) {
  constexpr int kLines = cuda::kDQK * static_cast<int>(sizeof(T)) / 128;  // 128-byte lines of a q row: 9
  const auto* q = static_cast<const T*>(p.q);                             // [b, s_q, h_q, kDQK]
  const int first = m_tile * kRows;
  const int rows = p.rows - first < kRows ? p.rows - first : kRows;
  // Line x % kLines of row x / kLines.
  for (int x = ptx::thread_index_here() % kCallers; x < rows * kLines; x += kCallers) {
    const int packed = first + x / kLines;
    const int head = kv_head * p.group + packed % p.group;
    ptx::prefetch_l2(q + seq * p.q_stride_b + packed / p.group * p.q_stride_s + head * p.q_stride_h + x % kLines * 64);
  }
}

// prefetch_q_rows for the CTA's next piece, the next sequence of its walk, while it computes `piece`.
template <typename T, int kRows, int kCallers>
__device__ __forceinline__ void prefetch_next_q(const cuda::DecodeParams& p, const schedule::Walk& walk,
                                                const Piece& piece, int m_tile, int kv_head) {
  const int next = piece.seq + walk.stride;
  if (next <= walk.last) {
    prefetch_q_rows<T, kRows, kCallers>(p, next, m_tile, kv_head);
  }
}

// threadIdx.x read with a volatile asm, which the compiler can neither merge with other reads nor
// hoist: a schedule short of registers computes thread-dependent values from it where they are used
// instead of holding them across its tile loop.
__device__ __forceinline__ int fresh_thread_index() {
  uint32_t tid;
  asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(tid));
  return static_cast<int>(tid);
}

// Writes the thread's two rows (row0 and row0 + 8 of its warpgroup's accumulator) of its warpgroup's
// half of the output (cuda::row_result from each row's base `max`, log2 domain, and sum `sum`): the
// final out and lse, or a split piece's normalized partial and its lse in the workspace. `thread`:
// threadIdx.x (or fresh_thread_index()).
template <typename T>
__device__ void write_rows(const cuda::DecodeParams& p, const Piece& piece, int m_tile, int kv_head, bool bad,
                           const float (&max)[2], const float (&sum)[2], const float (&o)[kAccumulators],
                           int thread = static_cast<int>(threadIdx.x)) {
  const int warpgroup = thread / kWarpgroupThreads;
  const int wg_thread = thread % kWarpgroupThreads;
  const int col0 = warpgroup * kColsPerWarpgroup + fragment_col(wg_thread);
  const bool writes_lse = warpgroup == 0 && wg_thread % 4 == 0;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int packed = m_tile * kBlockM + fragment_row(wg_thread) + 8 * h;
    if (packed >= p.rows) {
      continue;
    }
    const int i = packed / p.group;
    const int head = kv_head * p.group + packed % p.group;
    const cuda::RowResult r = cuda::row_result(bad, piece.slot >= 0, max[h], sum[h]);
    if (piece.slot >= 0) {
      const int64_t slot_row = (piece.slot * p.s_q + i) * p.h_q + head;
      float* partial = p.partial_out + slot_row * cuda::kDV + col0;  // [kDV] from this thread's first column
#pragma unroll
      for (int j = 0; j < kAccumulators / 4; ++j) {
        *reinterpret_cast<float2*>(partial + 8 * j) =
            make_float2(o[4 * j + 2 * h] * r.inv, o[4 * j + 2 * h + 1] * r.inv);
      }
      if (writes_lse) {
        p.partial_lse[slot_row] = r.lse;
      }
      continue;
    }
    T* out = static_cast<T*>(p.out) + piece.seq * p.out_stride_b + i * p.out_stride_s + head * p.out_stride_h +
             col0;  // [kDV] from this thread's first column
#pragma unroll
    for (int j = 0; j < kAccumulators / 4; ++j) {
      *reinterpret_cast<uint32_t*>(out + 8 * j) = pack2<T>(o[4 * j + 2 * h] * r.inv, o[4 * j + 2 * h + 1] * r.inv);
    }
    if (writes_lse) {
      p.lse[piece.seq * p.lse_stride_b + head * p.lse_stride_h + i * p.lse_stride_s] = r.lse;
    }
  }
}

}  // namespace openmla::sm90
