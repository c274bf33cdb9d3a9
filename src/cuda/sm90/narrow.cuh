#pragma once
// The narrow consumer schedule of the Hopper kernel (kernel.cuh), the default for decodes of at most
// kNarrowMaxRows packed query rows per KV head (h_q = 16 or 32 with s_q = 1, h_q = 16 with s_q = 2):
// there a 64-row tile would leave most of every product's rows empty, so both products are computed
// transposed, with the query rows as wgmma's N = kRows (16 or 32) instead of its M = 64:
//   S^T [64 keys, kRows]  = K [64 keys, 576] . Q^T        36 wgmma m64nRk16, K and Q K-major
//   O^T [512, kRows]     += V^T [512, 64 keys] . P^T      8 m64 blocks x 4 k16 steps, V^T MN-major
// a quarter (kRows = 16) of the asymmetric schedule's tensor work per tile.
//
// The two warpgroups take alternate tiles: tile n of the CTA (counted over all its pieces) goes to
// stage n % 2 and warpgroup n % 2, whose first thread issues its TMA load and, once the warpgroup is
// done with it, the load of tile n + 2. Each warpgroup keeps its own online softmax and its own
// 512 x kRows fp32 accumulator; no barrier crosses warpgroups inside the tile loop. The warpgroup
// without the piece's first tile starts once the other's score product of that tile has retired
// (kStagger): started together, the two would run the same phases side by side. At the end of a
// piece each warpgroup hands the other its share of that one's query rows through shared memory and
// writes its own rows from registers: out/lse for a whole sequence, the normalized partial and its lse
// in the workspace for a piece of a split one.
//
// Per tile, warpgroup w (named barrier kLocal0 + w, its 128 threads):
//   wait full[w]; S^T; mask and scale; each warp's row max by shuffles, and a flag where a row's max
//   exceeds its exponent base by more than kRescaleThreshold; a tail tile: barrier, zero its v rows;
//   P^T = 2^(S^T - base) to shared memory (barrier); only when some warp flagged (the first tile of
//   a piece, then rarely): raise the bases to the tile's max, rescale, P^T again (barrier); O^T +=
//   V^T P^T; barrier: the stage and P are free, the load of tile n + 2 goes out.
//
// On an FP8 cache (kFormat fp8_per_tensor or fp8_656, at most 16 rows) the stages hold the tile's raw
// tokens, four of them (tile n in stage n % 4, the load of tile n + 4 goes out), and both products
// take K and V^T from registers, converted from the raw bytes (fp8_fragments.cuh).

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../common/ptx/barrier.cuh"
#include "../common/ptx/fence.cuh"
#include "../common/ptx/mbarrier.cuh"
#include "../common/ptx/tma.cuh"
#include "../common/ptx/wgmma.cuh"
#include "../common/row_result.cuh"
#include "../common/walk.cuh"
#include "fp8_fragments.cuh"
#include "layout.cuh"
#include "openmla/decode.h"
#include "piece.cuh"
#include "traits.h"

namespace openmla::sm90 {

template <typename T, int kRows, CacheFormat kFormat = CacheFormat::plain>
struct NarrowCta {
  static_assert(kRows == 16 || kRows == kNarrowMaxRows, "wgmma N of 16 or 32");
  static constexpr bool kFp8 = kFormat != CacheFormat::plain;
  static_assert(!kFp8 || kRows == kFp8Rows, "an FP8 cache takes wgmma N = 16");
  using Op = std::conditional_t<kFp8, __half, T>;  // the products' 16-bit operands: fp16 on an FP8 cache
  using Shared = std::conditional_t<kFp8, typename Traits<T>::template NarrowFp8Shared<Op>,
                                    typename Traits<T>::template NarrowPlainShared<kRows>>;
  static constexpr int kTileStages = kFp8 ? kFp8Stages : kStages;
  static constexpr int kStageBytes = kFp8 ? kBlockN * fp8::kTokenBytes<kFormat> : kTileBytes;
  static constexpr int kRegs = kRows / 2;  // fp32 of one m64nR accumulator per thread
  static constexpr int kCols = kRows / 4;  // query rows (accumulator columns) of a thread
  static constexpr int kQChunkBytes = kRows * kRowBytes;
  static constexpr int kOutBlocks = cuda::kDV / 64;  // m64 blocks of O^T
  static constexpr int kQBatchRows = 2;              // q rows a warp loads at once on an FP8 cache (fp8::load_q_fp8)

  const cuda::DecodeParams& p;
  const CUtensorMap* cache_map;  // boxes of 64 tokens: x 9 chunks (plain), of raw tokens (FP8; sm90/launch.h)
  Shared& s;
  int kv_head;
  int warpgroup = static_cast<int>(threadIdx.x) / kWarpgroupThreads;
  int wg_thread = static_cast<int>(threadIdx.x) % kWarpgroupThreads;
  int warp = wg_thread / 32;  // within the warpgroup
  int lane = static_cast<int>(threadIdx.x) % 32;
  int key_row = fragment_row(wg_thread);  // the thread's accumulator rows: key_row and key_row + 8
  uint32_t tiles_done = 0;                // tiles computed in earlier pieces
  float score_scale = 0.f;                // scores to the log2 domain: softmax scale (x k_scale per tensor)
  float out_scale = 1.f;                  // of the output rows: k_scale per tensor, else 1
  // State of the issuing threads (each warpgroup's first) only.
  uint64_t policy = 0;     // L2 evict-first: the cache is streamed once
  int32_t next_block = 0;  // cache block of the warpgroup's next tile to issue, read a tile ahead

  // Query row (accumulator column) of the thread's column slot c, and the register of slot c in key
  // half h (layout.cuh slot_col, slot_reg).
  __device__ int col_of(int c) const { return slot_col(wg_thread, c); }
  static constexpr int reg(int c, int h) { return slot_reg(c, h); }

  __device__ void init() {
    fp8::log2_scales<kFormat == CacheFormat::fp8_per_tensor>(p, score_scale, out_scale);
    if (threadIdx.x == 0) {
      for (int stage = 0; stage < kTileStages; ++stage) {
        ptx::mbarrier_init(ptx::smem_addr(&s.full[stage]), 1);
      }
      s.bad_page = 0;
      ptx::fence_mbarrier_init();
    }
    if (wg_thread == 0) {
      ptx::prefetch_tensormap(cache_map);
      policy = ptx::create_policy_evict_first();
    }
    __syncthreads();
  }

  // ---- issuing threads --------------------------------------------------------------------------------

  __device__ int32_t fetch_block(const Piece& piece, int t) const {
    return cache_block(p, piece, piece.key_begin + t * kBlockN);
  }

  // Stage `stage`: a tile, and at the end of a piece a warpgroup's output.
  __device__ char* stage_data(int stage) const { return reinterpret_cast<char*>(&s.kv[stage][0]); }

  // Loads tile t of the piece (cache block `block`) into its stage, which its warpgroup is done with
  // (load_tile: a bad block marks the piece instead).
  __device__ void issue(const Piece& piece, int t, int32_t block) {
    const uint32_t stage = (tiles_done + t) % kTileStages;
    load_tile<kStageBytes, kFp8 ? 4 : 5>(p, cache_map, ptx::smem_addr(stage_data(static_cast<int>(stage))),
                                         ptx::smem_addr(&s.full[stage]), piece.key_begin + t * kBlockN, kv_head, block,
                                         policy, s.bad_page);
  }

  // Issues tile t if the piece has it, with the block read earlier, and then reads the block of the
  // warpgroup's tile after it (t + 2). In that order the read lands in next_block's register itself:
  // read first, it went to another register, moved into next_block after the issue, and that move made
  // the issuing thread wait for the read's round trip (about 420 cycles a tile on the H200).
  __device__ void issue_next(const Piece& piece, int t, int n_tiles) {
    if (t >= n_tiles) {
      return;
    }
    issue(piece, t, next_block);
    next_block = t + kWarpgroups < n_tiles ? fetch_block(piece, t + kWarpgroups) : 0;
  }

  // ---- one warpgroup's tiles --------------------------------------------------------------------------

  // The running softmax state of the thread's query rows, in the log2 domain.
  struct RowState {
    float max[kCols];    // the warpgroup's exponent base of each row: its max, up to kRescaleThreshold
    float sum[kCols];    // this thread's share of the sum: its keys of each tile
    int limit[kCols];    // keys below the limit are visible to the row
    float scale[kCols];  // scores to the log2 domain: score_scale, times 2^q_exponent of the row (FP8)
    int value_exponent;  // 656-byte tokens: the thread's rows of O^T hold O^T times 2^-value_exponent
                         // (fp8::raise_value_exponent; the same in every thread of a warp)
  };

  // sc = S^T of the tile in `stage`: 36 k16 steps over the 9 chunks, 32 bytes per step within a chunk.
  __device__ void compute_scores(int stage, float (&sc)[kRegs]) const {
    const uint32_t sq = ptx::smem_addr(&s.q[0][0]);
    if constexpr (kFp8) {
      fp8::scores<T, kFormat>(reinterpret_cast<const uint8_t*>(stage_data(stage)), sq, key_row, wg_thread % 4, sc);
      return;
    }
    const uint64_t k_desc = k_major_desc(ptx::smem_addr(stage_data(stage)));
    const uint64_t q_desc = k_major_desc(sq);
    ptx::wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kChunks * kChunkCols / 16; ++ks) {
      const uint32_t step = ks % 4 * 32;
      ptx::wgmma_m64nNk16_ss<T, kRows, 0>(sc, ptx::smem_desc_advance(k_desc, ks / 4 * kChunkBytes + step),
                                          ptx::smem_desc_advance(q_desc, ks / 4 * kQChunkBytes + step), ks > 0);
    }
    ptx::wgmma_commit();
    ptx::wgmma_wait<0>();
    ptx::pin_registers(sc);
  }

  // The barrier of this warpgroup's 128 threads.
  __device__ void sync_warpgroup() const { ptx::bar_sync(kLocal0 + warpgroup, kWarpgroupThreads); }

  // Masks and scales the tile's scores (keys from key0) and returns each row's max over the warp's 16
  // keys (the thread's two, the warp's by shuffles), also stored in s.red for the warpgroup. Masking is a
  // select, so a NaN score of a key past a row's limit never counts.
  __device__ void warp_max(float (&sc)[kRegs], int key0, const RowState& row, float (&max)[kCols]) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int key = key0 + key_row + 8 * h;
        const float v = sc[reg(c, h)] * row.scale[c];
        sc[reg(c, h)] = key >= row.limit[c] ? -INFINITY : v;
      }
      max[c] = fmaxf(sc[reg(c, 0)], sc[reg(c, 1)]);
#pragma unroll
      for (int offset = 4; offset < 32; offset *= 2) {
        max[c] = fmaxf(max[c], __shfl_xor_sync(0xffffffffu, max[c], offset));
      }
      if (lane < 4) {
        s.red[warpgroup][warp][col_of(c)] = max[c];
      }
    }
  }

  // Whether some warp of the warpgroup flagged a row whose max exceeds its base by more than
  // kRescaleThreshold (after the warpgroup's barrier).
  __device__ bool rescale_flagged() const {
    const int4 flags = *reinterpret_cast<const int4*>(&s.rescale[warpgroup][0]);
    return (flags.x | flags.y | flags.z | flags.w) != 0;
  }

  // Zeroes keys [valid, 64) of the stage's values: slots past the sequence's end may hold NaN, and
  // P = 0 times NaN would still reach the output. A 16-bit tile: the v chunks' whole 128-byte rows, so
  // the swizzle does not matter. An FP8 tile: the raw tokens from `valid` on, contiguous (their scales
  // too, which then make the values 0). Called after the warpgroup's barrier that follows its score
  // products.
  __device__ void zero_tail(int stage, int valid) {
    char* kv = stage_data(stage);
    if constexpr (kFp8) {
      constexpr int kBytes = fp8::kTokenBytes<kFormat>;
      for (int x = valid * kBytes / 16 + wg_thread; x < kBlockN * kBytes / 16; x += kWarpgroupThreads) {
        *reinterpret_cast<uint4*>(kv + x * 16) = make_uint4(0, 0, 0, 0);
      }
    } else {
      constexpr int kUnits = kVChunks * kChunkBytes / 16;
      for (int x = wg_thread; x < kUnits; x += kWarpgroupThreads) {
        if (x / 8 % kBlockN >= valid) {
          *reinterpret_cast<uint4*>(kv + x * 16) = make_uint4(0, 0, 0, 0);
        }
      }
    }
  }

  // Turns the masked scores into probabilities against the rows' bases, 2^(score - base) (at most
  // 2^kRescaleThreshold), stores them as P^T's operand (P [kRows rows, 64 keys], K-major; on an FP8
  // cache the keys in fp8::pv_key_position's order) and returns the thread's sum of them per row.
  __device__ void store_p(const float (&sc)[kRegs], const RowState& row, float (&tile_sum)[kCols]) {
    char* sp = reinterpret_cast<char*>(&s.p[warpgroup][0]);
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      // A row that has seen no key keeps base -inf: subtract 0 so that exp2 gives 0, not NaN.
      const float use = row.max[c] == -INFINITY ? 0.f : row.max[c];
      tile_sum[c] = 0.f;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float prob = ptx::ex2(sc[reg(c, h)] - use);
        tile_sum[c] += prob;
        const uint32_t bits = pack2<Op>(prob, 0.f);  // prob in the low 16 bits
        const int position = kFp8 ? fp8::pv_key_position(key_row + 8 * h) : key_row + 8 * h;
        *reinterpret_cast<uint16_t*>(sp + swizzled_offset(col_of(c), position)) = static_cast<uint16_t>(bits);
      }
    }
  }

  // Moves each row's base to its max over the tile (the four warps' in s.red) where that is larger,
  // returning the factors that bring the earlier sums and output to the new base.
  __device__ void raise_bases(RowState& row, float (&factor)[kCols]) const {
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      float max = row.max[c];
#pragma unroll
      for (int w = 0; w < kWarpgroupThreads / 32; ++w) {
        max = fmaxf(max, s.red[warpgroup][w][col_of(c)]);
      }
      factor[c] = ptx::ex2(row.max[c] - (max == -INFINITY ? 0.f : max));
      row.max[c] = max;
      row.sum[c] *= factor[c];
    }
  }

  // O^T = O^T * factor + V^T P^T: V^T MN-major from the stage (FP8: converted into registers), P^T
  // K-major from the warpgroup's P. A factor is exactly 1 unless its row's base moved; the warp skips
  // the kOutBlocks x kRegs multiplications when no row of its threads moved.
  __device__ void accumulate(int stage, const float (&factor)[kCols], RowState& row,
                             float (&o)[kOutBlocks][kRegs]) const {
    const uint32_t sp = ptx::smem_addr(&s.p[warpgroup][0]);
    bool moved = false;
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      moved = moved || factor[c] != 1.f;
    }
    if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
      for (int mb = 0; mb < kOutBlocks; ++mb) {
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
          o[mb][reg(c, 0)] *= factor[c];
          o[mb][reg(c, 1)] *= factor[c];
        }
      }
    }
#pragma unroll
    for (int mb = 0; mb < kOutBlocks; ++mb) {
      ptx::pin_registers(o[mb]);
    }
    if constexpr (kFp8) {
      fp8::accumulate<kFormat>(reinterpret_cast<const uint8_t*>(stage_data(stage)), sp, warp, lane / 4, lane % 4, o,
                               row.value_exponent);
      return;
    }
    const uint64_t v_desc = mn_major_desc(ptx::smem_addr(stage_data(stage)));
    const uint64_t p_desc = k_major_desc(sp);
    ptx::wgmma_fence();
#pragma unroll
    for (int mb = 0; mb < kOutBlocks; ++mb) {
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        ptx::wgmma_m64nNk16_ss<T, kRows, 1>(o[mb],
                                            ptx::smem_desc_advance(v_desc, mb * kChunkBytes + kk * 16 * kRowBytes),
                                            ptx::smem_desc_advance(p_desc, kk * 32), true);
      }
    }
    ptx::wgmma_commit();
    ptx::wgmma_wait<0>();
#pragma unroll
    for (int mb = 0; mb < kOutBlocks; ++mb) {
      ptx::pin_registers(o[mb]);
    }
  }

  // The warpgroup's tiles of the piece: t = first, first + 2, ... Each row keeps an exponent base
  // (row.max) until some key's score exceeds it by more than kRescaleThreshold: then the warp flags the
  // tile, and after the barrier that publishes P the whole warpgroup raises its bases, rescales, stores
  // P again and passes one more barrier. Other tiles pass two barriers (three when a tail is zeroed).
  __device__ void tiles(const Piece& piece, int first, int n_tiles, RowState& row, float (&o)[kOutBlocks][kRegs]) {
    const bool leads = first == 0;  // the warpgroup has the piece's first tile
    if (!leads) {
      ptx::bar_sync(kStagger, kThreads);  // the other warpgroup's first score product retired
    }
    for (int t = first; t < n_tiles; t += kWarpgroups) {
      const uint32_t n = tiles_done + t;
      const int stage = static_cast<int>(n % kTileStages);
      const int key0 = piece.key_begin + t * kBlockN;
      ptx::mbarrier_wait(ptx::smem_addr(&s.full[stage]), n / kTileStages % 2);

      float sc[kRegs];
      compute_scores(stage, sc);
      if (leads && t == 0) {
        ptx::bar_arrive(kStagger, kThreads);  // the other warpgroup starts its first tile
      }
      float max[kCols];
      warp_max(sc, key0, row, max);
      bool flag = false;
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        flag = flag || max[c] > row.max[c] + kRescaleThreshold;  // base -inf: any key seen; NaN: never
      }
      flag = __any_sync(0xffffffffu, flag);
      if (lane == 0) {
        s.rescale[warpgroup][warp] = flag ? 1 : 0;
      }
      if (key0 + kBlockN > piece.key_end) {
        sync_warpgroup();  // every warp's score products retired
        zero_tail(stage, piece.key_end - key0);
      }
      float tile_sum[kCols];
      store_p(sc, row, tile_sum);
      ptx::fence_proxy_async_shared();
      sync_warpgroup();  // P, the zeroed rows, the warps' maxes and flags are stored
      float factor[kCols];
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        factor[c] = 1.f;
      }
      if (rescale_flagged()) {
        raise_bases(row, factor);
        store_p(sc, row, tile_sum);
        ptx::fence_proxy_async_shared();
        sync_warpgroup();  // P against the new bases is stored
      }
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        row.sum[c] += tile_sum[c];
      }
      accumulate(stage, factor, row, o);
      sync_warpgroup();  // every warp's products retired: the stage and P are free; the flags may be reused
      if (wg_thread == 0) {
        issue_next(piece, t + kTileStages, n_tiles);
      }
    }
    if (leads && n_tiles == 0) {
      ptx::bar_arrive(kStagger, kThreads);  // an empty piece: nothing to stagger
    }
  }

  // ---- the end of a piece: both warpgroups' results merged, the rows written ------------------------
  //
  // Warpgroup w writes query rows [w kRows / 2, +kRows / 2): the thread's column slots [w kHalfCols,
  // +kHalfCols) (col_of). Each thread hands the other warpgroup its values of that warpgroup's rows,
  // scaled to the piece's row max, through its own stage: value x = kRowValues c + 2 mb + h of thread t
  // (c counted within the half) in float4 unit x / 4, stored at unit (x / 4) * 128 + t, so no store or
  // load meets a bank twice. The thread of the same index there holds the same (dim, row) positions,
  // adds them to its own and writes its rows from registers.
  static constexpr int kHalfCols = kCols / 2;
  static constexpr int kRowValues = 2 * kOutBlocks;  // a thread's values of one query row: 16 dims
  static constexpr int kExchangeUnits = kHalfCols * kRowValues / 4;
  static_assert(kExchangeUnits * kWarpgroupThreads * 16 <= kStageBytes, "a warpgroup's exchange fits its stage");

  // The dim of value 2 mb + h of a row (accumulator row key_row + 8 h of m64 block mb). On an FP8 cache
  // (fp8::pv_dim) the thread's 16 dims are contiguous, [128 warp + 16 (key_row % 8), +16), and the row
  // is written 16 bytes at a time.
  __device__ int dim_of(int mb, int h) const {
    return kFp8 ? fp8::pv_dim(mb, key_row + 8 * h) : mb * 64 + key_row + 8 * h;
  }

  __device__ void finish(const Piece& piece, RowState& row, const float (&o)[kOutBlocks][kRegs]) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
#pragma unroll
      for (int offset = 4; offset < 32; offset *= 2) {
        row.sum[c] += __shfl_xor_sync(0xffffffffu, row.sum[c], offset);
      }
      if (lane < 4) {
        s.red[warpgroup][warp][col_of(c)] = row.sum[c];
        if (warp == 0) {
          s.wg_max[warpgroup][col_of(c)] = row.max[c];
        }
      }
    }
    __syncthreads();  // both warpgroups' tiles are done and their row statistics stored

    const bool bad = cuda::report_piece(piece, s.bad_page, [&] { return s.walk.status; });
    // Column slots are compile-time indices of o (else it would live in local memory): slot c of the
    // half this warpgroup keeps is c + kHalfCols on warpgroup 1, of the half it gives c on warpgroup 1.
    const bool second = warpgroup == 1;
    float keep_scale[kHalfCols];  // the thread's own factor to the piece's max of its kept rows
    float give_scale[kHalfCols];  // ... of the rows it gives
    float keep_sum[kHalfCols];    // the kept rows' sums over both warpgroups, scaled to that max
    float keep_max[kHalfCols];    // the kept rows' max, 0 for a row that saw no key
#pragma unroll
    for (int c = 0; c < kHalfCols; ++c) {
      const int kept = col_of(second ? c + kHalfCols : c);
      const int given = col_of(second ? c : c + kHalfCols);
      const float max0 = s.wg_max[0][kept];
      const float max1 = s.wg_max[1][kept];
      const float max = fmaxf(max0, max1);
      keep_max[c] = max == -INFINITY ? 0.f : max;  // then every factor is ex2(-inf) = 0
      const float scale0 = ptx::ex2(max0 - keep_max[c]);
      const float scale1 = ptx::ex2(max1 - keep_max[c]);
      keep_scale[c] = second ? scale1 : scale0;
      float sum0 = 0.f;
      float sum1 = 0.f;
#pragma unroll
      for (int w = 0; w < kWarpgroupThreads / 32; ++w) {
        sum0 += s.red[0][w][kept];
        sum1 += s.red[1][w][kept];
      }
      keep_sum[c] = scale0 * sum0 + scale1 * sum1;
      const float given_max0 = s.wg_max[0][given];
      const float given_max1 = s.wg_max[1][given];
      const float given_max = fmaxf(given_max0, given_max1);
      give_scale[c] = ptx::ex2((second ? given_max1 : given_max0) - (given_max == -INFINITY ? 0.f : given_max));
      if constexpr (kFormat == CacheFormat::fp8_656) {  // the thread's rows of O^T to the output's scale
        const float up = fp8::value_up(row.value_exponent);
        keep_scale[c] *= up;
        give_scale[c] *= up;
      }
    }
    auto* mine = reinterpret_cast<float4*>(stage_data(warpgroup));                    // [kExchangeUnits][128]
    const auto* theirs = reinterpret_cast<const float4*>(stage_data(1 - warpgroup));  // [kExchangeUnits][128]
#pragma unroll
    for (int u = 0; u < kExchangeUnits; ++u) {
      float v[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const int x = 4 * u + k;
        const int c = x / kRowValues;
        const float* block = o[x % kRowValues / 2];
        v[k] = (second ? block[reg(c, x % 2)] : block[reg(c + kHalfCols, x % 2)]) * give_scale[c];
      }
      mine[u * kWarpgroupThreads + wg_thread] = make_float4(v[0], v[1], v[2], v[3]);
    }
    __syncthreads();  // both exchanges are in shared memory; every thread has read bad_page
    if (threadIdx.x == 0) {
      s.bad_page = 0;
    }
#pragma unroll
    for (int c = 0; c < kHalfCols; ++c) {
      const cuda::RowResult result = cuda::row_result(bad, piece.slot >= 0, keep_max[c], keep_sum[c]);
      const float inv = result.inv * out_scale;
      float v[kRowValues];  // v[2 mb + h]: dim dim_of(mb, h) of the row
#pragma unroll
      for (int q4 = 0; q4 < kRowValues / 4; ++q4) {
        const float4 other = theirs[(c * kRowValues / 4 + q4) * kWarpgroupThreads + wg_thread];
        const float add[4] = {other.x, other.y, other.z, other.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const int x = 4 * q4 + k;
          const float* block = o[x / 2];
          const float own = second ? block[reg(c + kHalfCols, x % 2)] : block[reg(c, x % 2)];
          v[x] = (own * keep_scale[c] + add[k]) * inv;
        }
      }
      write_row(piece, col_of(second ? c + kHalfCols : c), v, result.lse);
    }
    ptx::fence_proxy_async_shared();  // the stages' generic accesses before the next piece's loads
  }

  // Query row r of the piece from the thread's values v[2 mb + h] (dim dim_of(mb, h)): the final out
  // row, or a split piece's normalized partial in the workspace; lane 0-3 of warp 0 (one thread per
  // row) also its lse.
  __device__ void write_row(const Piece& piece, int r, const float (&v)[kRowValues], float lse) const {
    if (r >= p.rows) {
      return;
    }
    const int i = r / p.group;
    const int head = kv_head * p.group + r % p.group;
    const bool lse_writer = wg_thread < 4;
    if (piece.slot >= 0) {
      const int64_t slot_row = (piece.slot * p.s_q + i) * p.h_q + head;
      float* dst = p.partial_out + slot_row * cuda::kDV;  // [kDV]
      if constexpr (kFp8) {
#pragma unroll
        for (int q4 = 0; q4 < kRowValues / 4; ++q4) {
          *reinterpret_cast<float4*>(dst + dim_of(0, 0) + 4 * q4) =
              make_float4(v[4 * q4], v[4 * q4 + 1], v[4 * q4 + 2], v[4 * q4 + 3]);
        }
      } else {
#pragma unroll
        for (int x = 0; x < kRowValues; ++x) {
          dst[dim_of(x / 2, x % 2)] = v[x];
        }
      }
      if (lse_writer) {
        p.partial_lse[slot_row] = lse;
      }
      return;
    }
    T* dst = static_cast<T*>(p.out) + piece.seq * p.out_stride_b + i * p.out_stride_s + head * p.out_stride_h;  // [kDV]
    if constexpr (kFp8) {
#pragma unroll
      for (int q4 = 0; q4 < kRowValues / 4; ++q4) {  // out rows are 8-byte aligned
        *reinterpret_cast<uint2*>(dst + dim_of(0, 0) + 4 * q4) =
            make_uint2(pack2<T>(v[4 * q4], v[4 * q4 + 1]), pack2<T>(v[4 * q4 + 2], v[4 * q4 + 3]));
      }
    } else {
#pragma unroll
      for (int x = 0; x < kRowValues; ++x) {
        dst[dim_of(x / 2, x % 2)] = static_cast<T>(v[x]);
      }
    }
    if (lse_writer) {
      p.lse[piece.seq * p.lse_stride_b + head * p.lse_stride_h + i * p.lse_stride_s] = lse;
    }
  }

  // ---- one piece ------------------------------------------------------------------------------------

  __device__ void run(const Piece& piece) {
    const int n_tiles = (piece.key_end - piece.key_begin + kBlockN - 1) / kBlockN;
    const int first = static_cast<int>((warpgroup + tiles_done) % kWarpgroups);  // the warpgroup's first tile
    __syncthreads();  // every thread is done with the previous piece's shared memory
    const int s_k = p.seqlens[piece.seq * p.seqlens_stride];                 // read first: its round trip overlaps q's
    prefetch_next_q<T, kRows, kThreads>(p, s.walk.walk, piece, 0, kv_head);  // into L2, for the next piece
    // The issuing threads read the blocks of their warpgroup's first tiles once their warp's q loads
    // are on their way, so that both wait for the same round trip.
    const auto issue_first = [&] {
      if (wg_thread == 0 && first < n_tiles) {  // its tiles first, first + 2, ...
        next_block = issue_first_tiles<kTileStages / kWarpgroups, kWarpgroups>(
            first, n_tiles, [&](int t) { return fetch_block(piece, t); },
            [&](int t, int32_t block) { issue(piece, t, block); });
      }
    };
    if constexpr (kFp8) {
      fp8::load_q_fp8<T, Op, kFp8Rows, true, kQBatchRows, kFormat == CacheFormat::fp8_656>(
          p, piece.seq, 0, kv_head, s.q, s.q_exponent, issue_first);
    } else {
      issue_first();
      load_q<T, kRows>(p, piece.seq, 0, kv_head, s.q);
    }
    __syncthreads();  // q is in shared memory, visible to the async proxy

    RowState row;
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int r = col_of(c);
      row.max[c] = -INFINITY;
      row.sum[c] = 0.f;
      row.limit[c] = key_limit(p, s_k, r, piece.key_end);
      row.scale[c] = kFp8 ? score_scale * fp8::exp2i(s.q_exponent[r]) : score_scale;
    }
    row.value_exponent = fp8::kNoExponent;
    float o[kOutBlocks][kRegs];  // [512 dims, kRows rows] O^T, m64 block by block
#pragma unroll
    for (int mb = 0; mb < kOutBlocks; ++mb) {
#pragma unroll
      for (int i = 0; i < kRegs; ++i) {
        o[mb][i] = 0.f;
      }
    }
    tiles(piece, first, n_tiles, row, o);
    tiles_done += n_tiles;
    finish(piece, row, o);
  }
};

}  // namespace openmla::sm90
