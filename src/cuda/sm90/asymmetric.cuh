#pragma once
// The asymmetric consumer schedule of the Hopper kernel (kernel.cuh), the default (OPENMLA_SM90_SCHEDULE
// unset, empty or asymmetric): cache tiles streamed by TMA into 128-byte-swizzled shared memory, both
// products on wgmma, the 64 x 512 fp32 output split by columns over two consumer warpgroups.
//
// CTA (m, part, g) computes query rows [64 m, 64 m + 64) of KV head g (row r = i * group + head,
// i < s_q) for every sequence piece of plan part `part`, 64 keys (one TMA box) per tile, two tiles in
// flight. Per tile:
//   warpgroup 0 (scores + left half): S = Q K^T (36 wgmma m64n64k16), softmax in registers, P and the
//     rows' rescale factors to shared memory (hand-off "P full"), O[:, 0:256] = O * factor + P V
//     with P from registers (4 wgmma m64n256k16).
//   warpgroup 1 (right half): waits "P full", O[:, 256:512] = O * factor + P V with P from shared
//     memory, then hands P back ("P free"). Its first thread also issues the TMA loads (on an FP8
//     cache, kConsumersIssue).
// A piece that is a whole sequence writes out/lse; a piece of a split sequence writes its normalized
// partial result to the workspace for the combine kernel (the portable kernel's format).
//
// Pipeline and barriers (docs/hopper-kernel.md):
//   full[stage]  mbarrier, 1 arrival (the issuing thread's arrive.expect_tx) + the box's bytes.
//   empty[stage] mbarrier, one arrival per consumer warp after its wgmma reading the stage retired
//                (wgmma.wait_group); the issuing thread waits on it before refilling the stage.
//   kPFull / kPFree named barriers carry P from warpgroup 0 to 1 and back.
// Tile n of the CTA (counted over all its pieces) uses stage n % 2 in phase (n / 2) % 2.
//
// On an FP8 cache with more than 16 rows per KV head (asymmetric_fp8_kernel: 384 threads) TMA writes a
// tile's raw bytes into the top of its stage (per tensor: three boxes of three chunks, raw[stage][box];
// 656-byte tokens: five loads, raw[stage][step]), a third warpgroup, the converter, turns
// them in place into the 16-bit chunks (fp8_convert.cuh) and arrives on full[stage] (128 arrivals), and
// the consumers run the same code as on a 16-bit cache; per tensor in fp16 with k_scale in the scores'
// factor and on the output.
// On 656-byte tokens with a bf16 q (fp8::kTileExponent) in fp16 too: the converter stores a tile's
// values times their scale over 2^G (fp8_convert.cuh), G the piece's exponent at that tile (it only
// rises), so warpgroup 0 multiplies the tile's scores by 2^G and, where G rose, the rows' earlier output
// by 2^(old G - new G) with the softmax's factor; the output rows are multiplied by the last 2^G when
// written. The converter converts tile t while the consumers compute tile t - 1. Its first thread is
// the producer (kConsumersIssue false): it issues tile t + 1 into the stage of tile t - 1 once that is
// released and tile t is converted. On 656-byte tokens with a bf16 q the producer is warpgroup 1's, as
// on a 16-bit cache, so that a load never waits for the conversion of the tile before it (the consumers
// then hold 224 registers and the converter 56). The two roles are compiled apart (their own register
// budgets), so their CTA-wide barriers are the unaligned kCta (cuda::sync_cta).

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
#include "../common/walk.cuh"
#include "fp8_convert.cuh"
#include "fp8_fragments.cuh"
#include "layout.cuh"
#include "openmla/decode.h"
#include "piece.cuh"
#include "traits.h"

namespace openmla::sm90 {

inline constexpr int kProducerThread = kWarpgroupThreads;  // warpgroup 1's first thread issues the loads

// What a warp of the asymmetric kernel runs: the consumers' part (warpgroups 0 and 1) or, on an FP8
// cache, the converter's (warpgroup 2). Each is compiled apart, under its own register budget.
enum class Role { consumer, converter };

template <typename T, CacheFormat kFormat = CacheFormat::plain>
struct AsymmetricCta {
  static constexpr bool kFp8 = kFormat != CacheFormat::plain;
  static constexpr bool kPerTensor = kFormat == CacheFormat::fp8_per_tensor;
  // Whether warpgroup 1's first thread issues the loads (kProducerThread) rather than the converter's.
  // Where the converter issued them, a tile's load also waited for the conversion of the tile before it:
  // on 656-byte tokens at h_q = 128 (clock trace, H200) about 2,000 cycles of each tile's ~5,400. Per
  // tensor that wait was rare, and the producer in warpgroup 1 measured slower (docs/fp8.md).
  static constexpr bool kConsumersIssue = !kFp8 || fp8::kTileExponent<T, kFormat>;
  static constexpr int kProducer = kConsumersIssue ? kProducerThread : kThreads;  // the thread that issues the loads
  static constexpr int kCtaBarrier = kFp8 ? kCta : 0;  // the CTA-wide barrier of a piece (cuda::sync_cta)
  static constexpr int kQBatchRows = 4;                // q rows a warp loads at once on an FP8 cache (fp8::load_q_fp8)
  using Op = fp8::Operand<T, kFormat>;                 // the products' 16-bit operands: T, or fp16 (fp8_fragments.cuh)
  static constexpr bool kQScaled = !std::is_same_v<T, Op>;  // q rows stored times 2^-q_exponent (fp8::load_q_fp8)
  static constexpr bool kTileExponent = fp8::kTileExponent<T, kFormat>;  // tiles times 2^-G; RoPE products in T
  using Shared = typename Traits<Op>::AsymmetricShared;

  const cuda::DecodeParams& p;
  const CUtensorMap* cache_map;  // [num_blocks, h_kv, 9 chunks, page_size, 64 elements or bytes] boxes of
                                 // 64 tokens x 9 chunks (make_cache_map, make_fp8_chunk_map)
  const CUtensorMap* part_maps;  // FP8: [3] on 656-byte tokens the scales', the RoPE values' and the last
                                 // value chunks' boxes of 64 tokens (make_fp8_part_maps; per tensor unused)
  Shared& s;
  int m_tile;
  int kv_head;
  const CUtensorMap* q_map = nullptr;  // 16-bit cache where p.q_by_tma: the m-tile's q rows in one box (make_q_map)
  int warpgroup = static_cast<int>(threadIdx.x) / kWarpgroupThreads;
  int wg_thread = static_cast<int>(threadIdx.x) % kWarpgroupThreads;
  int lane = static_cast<int>(threadIdx.x) % 32;
  int row0 = fragment_row(wg_thread);  // the thread's accumulator rows: row0 and row0 + 8
  uint32_t tiles_done = 0;             // tiles consumed in earlier pieces
  uint32_t pieces_done = 0;            // pieces run before (with q_phase, the phase of q_full)
  uint32_t q_phase = 0;                // 1 once early q rows of another sequence were skipped (warm)
  float score_scale = 0.f;             // scores to the log2 domain: softmax scale (x k_scale per tensor)
  float out_scale = 1.f;               // of the output rows: k_scale per tensor, else 1
  // State of the producer thread only.
  uint32_t tiles_issued = 0;  // tiles issued in all pieces so far
  uint64_t policy = 0;        // L2 evict-first: the cache is streamed once (16-bit cache)
  int32_t next_block = 0;     // cache block of the next tile to issue, read a tile ahead

  __device__ void init() {
    fp8::log2_scales<kPerTensor>(p, score_scale, out_scale);
    if (threadIdx.x == 0) {
      ptx::mbarrier_init(ptx::smem_addr(&s.q_full), 1);
      for (int stage = 0; stage < kStages; ++stage) {
        ptx::mbarrier_init(ptx::smem_addr(&s.full[stage]), kFp8 ? kConverterThreads : 1);
        ptx::mbarrier_init(ptx::smem_addr(&s.empty[stage]), kStageReaders);
        for (int step = 0; step < kConvertSteps; ++step) {
          ptx::mbarrier_init(ptx::smem_addr(&s.raw[stage][step]), 1);
        }
      }
      ptx::fence_mbarrier_init();
    }
    if (threadIdx.x == kProducer) {
      ptx::prefetch_tensormap(cache_map);
      if constexpr (kFormat == CacheFormat::fp8_656) {
        ptx::prefetch_tensormap(&part_maps[0]);
        ptx::prefetch_tensormap(&part_maps[1]);
        ptx::prefetch_tensormap(&part_maps[2]);
      }
      if constexpr (!kFp8) {  // the converter makes it per load instead: one register pair fewer held
        policy = ptx::create_policy_evict_first();
        if (p.q_by_tma) {
          ptx::prefetch_tensormap(q_map);
        }
      }
    }
    __syncthreads();
  }

  // ---- the first tiles, issued during the walk (16-bit cache) -----------------------------------------

  // The producer, while thread 0 walks the part: loads the q rows (q by TMA) and the first tiles of the
  // piece that the part's stored fields say it starts with (cuda::guess_first_piece; the tiles whose
  // pages lie in the block-table row) into s.q and the first stages, and records them in s.early, so
  // that the cache stream's first burst overlaps the walk instead of following it. The part's first
  // piece uses them when it is that piece, as it always is in a plan that passes the walk's checks
  // (early_tiles, run); otherwise they are released unread (skip_tiles, run).
  __device__ void warm(const int32_t* fields) {
    if (kFp8 || threadIdx.x != kProducer) {
      return;
    }
    const cuda::FirstGuess g = cuda::guess_first_piece(p, fields, s.walk.copy);
    EarlyTiles early = early_tiles_of<kStages>(p, g);
    const Piece guess{early.seq, early.key_begin, early.key_begin, status::kOk, -1};  // only its keys from key_begin
    early.q = p.q_by_tma && g.tile_end > g.tile_begin;
    if (early.q) {  // first: it is what the piece needs first, and the tiles' burst would queue it behind
      issue_q(guess);
    }
    s.early = early;
    s.bad_page = 0;
    issue_first_tiles<kStages, 1>(
        0, early.count, [&](int t) { return fetch_block(guess, t); },
        [&](int t, int32_t block) { issue(guess, t, block); });
  }

  // Of the piece's first tiles, how many the early loads hold (warm): only for the part's first piece.
  // stale: how many early loads were for another piece.
  __device__ int early_tiles(const Piece& piece, int n_tiles, int& stale) const {
    stale = 0;
    return kFp8 || pieces_done != 0 ? 0 : early_tiles_used<kStages>(s.early, piece, n_tiles, stale);
  }

  // After the part's last piece: early loads that no piece used (a part without pieces, from a plan the
  // walk rejects) are waited for, so that no load into shared memory outlives the CTA.
  __device__ void end_part() const {
    if (!kFp8 && pieces_done == 0 && threadIdx.x == kProducer) {
      for (int t = 0; t < s.early.count; ++t) {
        ptx::mbarrier_wait(ptx::smem_addr(&s.full[t]), 0);
      }
      if (s.early.q) {
        ptx::mbarrier_wait(ptx::smem_addr(&s.q_full), 0);
      }
    }
  }

  // Every consumer warp waits for the next `count` tiles and releases their stages unread.
  __device__ void skip_tiles(int count) {
    for (int t = 0; t < count; ++t) {
      const uint32_t n = tiles_done + t;
      ptx::mbarrier_wait(ptx::smem_addr(&s.full[n % kStages]), n / kStages % 2);
      release_stage(static_cast<int>(n % kStages));
    }
    tiles_done += count;
  }

  // ---- producer (thread kProducer) ------------------------------------------------------------------

  // The cache block holding tile t of the piece.
  __device__ int32_t fetch_block(const Piece& piece, int t) const {
    return cache_block(p, piece, piece.key_begin + t * kBlockN);
  }

  // Loads tile t of the piece (cache block `block`) into the next stage once every reader of that
  // stage's previous tile is done (load_tile: a bad block marks the piece instead): the 16-bit tile,
  // completing full[stage], or the raw FP8 bytes into the top of the stage in fp8::RawTile's boxes,
  // box b completing raw[stage][b].
  __device__ void issue(const Piece& piece, int t, int32_t block) {
    const uint32_t n = tiles_issued++;
    const int stage = static_cast<int>(n % kStages);
    if (n >= kStages) {
      ptx::mbarrier_wait(ptx::smem_addr(&s.empty[stage]), (n / kStages - 1) % 2);
    }
    const uint32_t tile = ptx::smem_addr(&s.kv[stage][0][0]);
    const int key0 = piece.key_begin + t * kBlockN;
    if constexpr (kFormat == CacheFormat::fp8_656) {
      issue_656(tile + fp8::kRawOffset<kFormat>, ptx::smem_addr(&s.raw[stage][0]), key0, block);
    } else if constexpr (kFp8) {
      using Raw = fp8::RawTile<kFormat>;
      constexpr int kBoxPieces = Raw::kPieces / Raw::kBoxes;
      constexpr int kBoxBytes = kBoxPieces * Raw::kPieceBytes;
#pragma unroll
      for (int box = 0; box < Raw::kBoxes; ++box) {
        load_tile<kBoxBytes>(p, cache_map, tile + fp8::kRawOffset<kFormat> + box * kBoxBytes,
                             ptx::smem_addr(&s.raw[stage][box]), key0, kv_head, block, ptx::create_policy_evict_first(),
                             s.bad_page, box * kBoxPieces);
      }
    } else {
      load_tile(p, cache_map, tile, ptx::smem_addr(&s.full[stage]), key0, kv_head, block, policy, s.bad_page);
    }
  }

  // A 656-byte tile's raw bytes (fp8::RawTile) into `raw` in five loads: the e4m3 values of step s's chunks
  // complete landed[s] (s = 0: with the scales; s = 2: with the RoPE values), so that a conversion step
  // need not wait for the later ones (a bad block: a plain arrival on each, as load_tile).
  __device__ void issue_656(uint32_t raw, uint32_t landed, int key0, int32_t block) {
    using Raw = fp8::RawTile<CacheFormat::fp8_656>;
    constexpr uint32_t kBar = sizeof(uint64_t);                           // raw[stage][s] apart
    constexpr int kBoxBytes = kChunksPerStep * 4 * Raw::kPieceBytes;      // 12,288: three chunks' values
    constexpr int kLastBytes = kLastValueChunks656 * 4 * Raw::kPieceBytes;
    if (block < 0 || block >= p.num_blocks) {
      s.bad_page = 1;
#pragma unroll
      for (int step = 0; step < kConvertSteps; ++step) {
        ptx::mbarrier_arrive(landed + step * kBar);
      }
      return;
    }
    const uint64_t evict_first = ptx::create_policy_evict_first();
    const int token = page_token(p, key0);
    ptx::mbarrier_arrive_expect_tx(landed, kBoxBytes + Raw::kPieceBytes);
    ptx::tma_load_5d(raw, cache_map, 0, token, 0, kv_head, block, landed, evict_first);
    ptx::tma_load_4d(raw + Raw::kValueBytes, &part_maps[0], 0, token, kv_head, block, landed, evict_first);
    ptx::mbarrier_arrive_expect_tx(landed + kBar, kBoxBytes);
    ptx::tma_load_5d(raw + kBoxBytes, cache_map, 0, token, kChunksPerStep, kv_head, block, landed + kBar, evict_first);
    ptx::mbarrier_arrive_expect_tx(landed + 2 * kBar, kLastBytes + Raw::kRopeBytes);
    ptx::tma_load_5d(raw + 2 * kBoxBytes, &part_maps[2], 0, token, 2 * kChunksPerStep, kv_head, block,
                     landed + 2 * kBar, evict_first);
    ptx::tma_load_4d(raw + Raw::kRopePiece * Raw::kPieceBytes, &part_maps[1], 0, token, kv_head, block,
                     landed + 2 * kBar, evict_first);
  }

  // The piece's q rows [64 m_tile, +64) into s.q with one TMA box (zeros past s_q), completing q_full.
  __device__ void issue_q(const Piece& piece) {
    const int first = m_tile * kBlockM;
    ptx::mbarrier_arrive_expect_tx(ptx::smem_addr(&s.q_full), sizeof(s.q));
    ptx::tma_load_5d(ptx::smem_addr(&s.q[0][0]), q_map, 0, kv_head * p.group + first % p.group, first / p.group, 0,
                     piece.seq, ptx::smem_addr(&s.q_full));
  }

  // Issues tile t if the piece has it, with the block read earlier, and then reads the next tile's
  // block, in that order so that the read lands in next_block's register and nothing but the
  // per-tensor L2 prefetch, which needs it, waits for it before the next issue.
  __device__ void issue_next(const Piece& piece, int t, int n_tiles) {
    if (t >= n_tiles) {
      return;
    }
    issue(piece, t, next_block);
    next_block = t + 1 < n_tiles ? fetch_block(piece, t + 1) : 0;
    if constexpr (kPerTensor) {
      if (t + 1 < n_tiles) {
        prefetch_raw(piece.key_begin + (t + 1) * kBlockN, next_block);
      }
    }
  }

  // Asks L2 for the raw bytes of a per-tensor tile at key0 (cache block `block`; nothing when it is out
  // of range) a tile before its load. With two stages a tile's load starts only once the consumers
  // release the stage of the tile before it, so without this its DRAM latency falls within one tile of
  // their products. (656-byte tokens measured slower with it, by TMA or by plain prefetches: docs/fp8.md.)
  __device__ void prefetch_raw(int key0, int32_t block) const {
    if (block < 0 || block >= p.num_blocks) {
      return;
    }
    using Raw = fp8::RawTile<kFormat>;
    const int token = page_token(p, key0);
#pragma unroll
    for (int box = 0; box < Raw::kBoxes; ++box) {
      ptx::tma_prefetch_l2_5d(cache_map, 0, token, box * (Raw::kPieces / Raw::kBoxes), kv_head, block);
    }
  }

  // ---- all threads ------------------------------------------------------------------------------------

  // This warp is done reading `stage` (its wgmma retired): one arrival per warp on empty[stage].
  __device__ void release_stage(int stage) const {
    if (lane == 0) {
      ptx::mbarrier_arrive(ptx::smem_addr(&s.empty[stage]));
    }
  }

  // ---- warpgroup 0: scores, softmax, left half of the output ---------------------------------------

  // sc = Q K^T of the tile in `stage`: 36 k16 steps over the 9 chunks, 32 bytes per step within a chunk.
  // Each step's descriptors are one add from the two bases; warpgroup 0 reaches this code through a
  // branch ptxas knows to be warp-uniform (consume), so they stay on the uniform datapath.
  __device__ void compute_scores(uint32_t kv, float (&sc)[kScoreRegisters]) const {
    const uint64_t q_desc = k_major_desc(ptx::smem_addr(&s.q[0][0]));
    const uint64_t k_desc = k_major_desc(kv);
    ptx::wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kChunks * kChunkCols / 16; ++ks) {
      const uint32_t offset = ks / 4 * kChunkBytes + ks % 4 * 32;
      const uint64_t q_at = ptx::smem_desc_advance(q_desc, offset);
      const uint64_t k_at = ptx::smem_desc_advance(k_desc, offset);
      if (kTileExponent && ks / 4 == kChunks - 1) {  // the RoPE chunk, in T
        ptx::wgmma_m64n64k16_ss<T>(sc, q_at, k_at, ks > 0);
      } else {
        ptx::wgmma_m64n64k16_ss<Op>(sc, q_at, k_at, ks > 0);
      }
    }
    ptx::wgmma_commit();
    ptx::wgmma_wait<0>();
    ptx::pin_registers(sc);
  }

  // Zeroes rows [valid, 64) of the stage's v chunks: slots past the sequence's end may hold NaN, and
  // P = 0 times NaN would still reach the output. Whole 128-byte rows, so the swizzle does not matter.
  // The first barrier: every warp's part of the score wgmma (each reads all keys) has retired.
  __device__ void zero_tail(int stage, int valid) {
    ptx::bar_sync(kScoreGroup, kWarpgroupThreads);
    char* kv = reinterpret_cast<char*>(&s.kv[stage][0][0]);
    constexpr int kUnits = kVChunks * kChunkBytes / 16;
    for (int x = wg_thread; x < kUnits; x += kWarpgroupThreads) {
      if (x / 8 % kBlockN >= valid) {
        *reinterpret_cast<uint4*>(kv + x * 16) = make_uint4(0, 0, 0, 0);
      }
    }
    ptx::fence_proxy_async_shared();
    ptx::bar_sync(kScoreGroup, kWarpgroupThreads);
  }

  // The running softmax state of the thread's two rows, in the log2 domain.
  struct RowState {
    float max[2] = {-INFINITY, -INFINITY};
    float sum[2] = {0.f, 0.f};  // this thread's share: its 16 columns of each tile
    int limit[2];               // keys below the limit are visible to the row
    float scale[2];             // scores to the log2 domain: score_scale, times 2^q_exponent of the row (FP8)
  };

  // Turns the tile's scores (keys from key0) into probabilities packed as the A fragments of P V
  // (pf[kk]: keys [16 kk, 16 kk + 16)), updates the rows' max and sum and returns the factors that
  // rescale what the rows accumulated before. Masking is a select, so a NaN score of a key past a
  // row's limit never reaches P.
  // kTileExponent: the scores are multiplied by 2^G of the tile in `stage` and the factors by 2^(old G -
  // new G).
  __device__ void softmax(float (&sc)[kScoreRegisters], int key0, int stage, RowState& row, uint32_t (&pf)[kKSteps][4],
                          float (&factor)[2]) const {
    float scale[2] = {row.scale[0], row.scale[1]};
    if constexpr (kTileExponent) {  // score_scale x 2^q_exponent x 2^G, from shared memory
      scale[0] = score_scale * fp8::exp2i(s.q_exponent[row0]) * s.tile_up[stage];
      scale[1] = score_scale * fp8::exp2i(s.q_exponent[row0 + 8]) * s.tile_up[stage];
    }
    const bool masked = key0 + kBlockN > min(row.limit[0], row.limit[1]);
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < kScoreRegisters / 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + 8 * j + fragment_col(wg_thread) + e % 2;
        const float v = sc[4 * j + e] * scale[e / 2];
        sc[4 * j + e] = masked && key >= row.limit[e / 2] ? -INFINITY : v;
        tile_max[e / 2] = fmaxf(tile_max[e / 2], sc[4 * j + e]);
      }
    }
    float use_max[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
      tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
      const float new_max = fmaxf(row.max[h], tile_max[h]);
      // A row that has seen no key keeps max -inf: subtract 0 so that exp2 gives 0, not NaN.
      use_max[h] = new_max == -INFINITY ? 0.f : new_max;
      const float drop = row.max[h] - use_max[h];
      factor[h] = ptx::ex2(drop);
      row.max[h] = new_max;
      row.sum[h] *= factor[h];
      if constexpr (kTileExponent) {  // the earlier output also times 2^(old G - new G)
        factor[h] = ptx::ex2(drop + s.tile_shift[stage]);
      }
    }
#pragma unroll
    for (int j = 0; j < kScoreRegisters / 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        sc[4 * j + e] = ptx::ex2(sc[4 * j + e] - use_max[e / 2]);
        row.sum[e / 2] += sc[4 * j + e];
      }
    }
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        pf[kk][i] = pack2<Op>(sc[8 * kk + 2 * i], sc[8 * kk + 2 * i + 1]);
      }
    }
  }

  // P (the same 16-bit values as pf) and the rows' factors to shared memory for warpgroup 1.
  __device__ void publish_p(const uint32_t (&pf)[kKSteps][4], const float (&factor)[2]) {
    char* sp = reinterpret_cast<char*>(s.p);
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = row0 + 8 * (i % 2);
        const int col = 16 * kk + 8 * (i / 2) + fragment_col(wg_thread);
        *reinterpret_cast<uint32_t*>(sp + swizzled_offset(row, col)) = pf[kk][i];
      }
    }
    if (lane % 4 == 0) {
      s.row_scale[row0] = factor[0];
      s.row_scale[row0 + 8] = factor[1];
    }
    ptx::fence_proxy_async_shared();
    ptx::bar_arrive(kPFull, kThreads);
  }

  __device__ void score_warpgroup(const Piece& piece, int n_tiles, float (&o)[kAccumulators], RowState& row) {
    if (!kFp8 && p.q_by_tma) {
      ptx::mbarrier_wait(ptx::smem_addr(&s.q_full), (pieces_done + q_phase) % 2);
    }
    for (int t = 0; t < n_tiles; ++t) {
      const uint32_t n = tiles_done + t;
      const int stage = static_cast<int>(n % kStages);
      const uint32_t kv = ptx::smem_addr(&s.kv[stage][0][0]);
      const int key0 = piece.key_begin + t * kBlockN;
      ptx::mbarrier_wait(ptx::smem_addr(&s.full[stage]), n / kStages % 2);

      float sc[kScoreRegisters];
      compute_scores(kv, sc);
      uint32_t pf[kKSteps][4];
      float factor[2];
      softmax(sc, key0, stage, row, pf, factor);
      if (key0 + kBlockN > piece.key_end) {
        zero_tail(stage, piece.key_end - key0);
      }
      if (t > 0) {
        ptx::bar_sync(kPFree, kThreads);  // warpgroup 1 is done with the previous P
      }
      publish_p(pf, factor);

      // O[:, 0:256] = O * factor + P V[:, 0:256], P from registers, V MN-major from the stage.
      scale_rows(o, factor[0], factor[1]);
      ptx::pin_registers(o);
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        ptx::pin_registers(pf[kk]);
      }
      ptx::wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        ptx::wgmma_m64n256k16_rs<Op, 1>(o, pf[kk], mn_major_desc(kv + kk * 16 * kRowBytes));
      }
      ptx::wgmma_commit();
      ptx::wgmma_wait<0>();
      ptx::pin_registers(o);
      release_stage(stage);
    }
  }

  // ---- warpgroup 1: right half of the output; its first thread is the producer ---------------------

  __device__ void value_warpgroup(const Piece& piece, int n_tiles, float (&o)[kAccumulators]) {
    const uint32_t sp = ptx::smem_addr(s.p);
    for (int t = 0; t < n_tiles; ++t) {
      const uint32_t n = tiles_done + t;
      const int stage = static_cast<int>(n % kStages);
      const uint32_t v = ptx::smem_addr(&s.kv[stage][kVChunksPerWarpgroup][0]);
      ptx::bar_sync(kPFull, kThreads);  // P and the factors of tile t are in shared memory
      ptx::mbarrier_wait(ptx::smem_addr(&s.full[stage]), n / kStages % 2);

      // O[:, 256:512] = O * factor + P V[:, 256:512], P K-major and V MN-major from shared memory.
      scale_rows(o, s.row_scale[row0], s.row_scale[row0 + 8]);
      ptx::pin_registers(o);
      ptx::wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        ptx::wgmma_m64n256k16_ss<Op, 1>(o, k_major_desc(sp + kk * 32), mn_major_desc(v + kk * 16 * kRowBytes));
      }
      ptx::wgmma_commit();
      ptx::wgmma_wait<0>();
      ptx::pin_registers(o);
      if (t + 1 < n_tiles) {
        ptx::bar_arrive(kPFree, kThreads);
      }
      release_stage(stage);
      if (kConsumersIssue && threadIdx.x == kProducer) {
        issue_next(piece, t + kStages, n_tiles);
      }
    }
  }

  // ---- warpgroup 2 on an FP8 cache: the converter (its first thread the producer: !kConsumersIssue) -

  // Tile t's raw bytes become its 16-bit chunks (full[stage]); then, where this warpgroup holds the
  // producer, tile t + 1 is issued into the stage of tile t - 1 (the first two tiles were issued at the
  // start of the piece).
  __device__ void converter_warpgroup(const Piece& piece, int n_tiles) {
    for (int t = 0; t < n_tiles; ++t) {
      const uint32_t n = tiles_done + t;
      const int stage = static_cast<int>(n % kStages);
      char* tile = reinterpret_cast<char*>(&s.kv[stage][0][0]);
      float down = 1.f;  // kTileExponent: 2^-G of the tile
      if constexpr (kTileExponent) {
        // G of the tile before, from its stage (written by this warpgroup's thread 0 before the last barrier)
        const int before = t == 0 ? fp8::kNoExponent : fp8::exponent_of(s.tile_up[(n + 1) % kStages]);
        down = fp8::tile_exponent<kFormat>(s, stage, n / kStages % 2, wg_thread,
                                           piece.key_end - (piece.key_begin + t * kBlockN), before);
      }
      fp8::convert_tile<T, kFormat>(tile, s.raw[stage], n / kStages % 2, wg_thread, down);
      ptx::mbarrier_arrive(ptx::smem_addr(&s.full[stage]));
      if constexpr (!kConsumersIssue) {
        if (threadIdx.x == kProducer && t + 1 >= kStages) {
          issue_next(piece, t + 1, n_tiles);
        }
        __syncwarp();  // the producer's warp converged again before the next tile's barriers
      }
    }
  }

  // ---- one piece ------------------------------------------------------------------------------------

  // The consumers' tiles of the piece, then its rows written.
  __device__ void consume(const Piece& piece, int n_tiles) {
    float o[kAccumulators];  // [64 rows, 256 cols] of this warpgroup's half of the output
#pragma unroll
    for (int i = 0; i < kAccumulators; ++i) {
      o[i] = 0.f;
    }
    // The warpgroup broadcast from lane 0: the same value, but one ptxas knows to be warp-uniform, so
    // the wgmma descriptors below it are built on the uniform datapath instead of in vector registers
    // moved over one R2UR at a time.
    if (__shfl_sync(0xffffffffu, warpgroup, 0) == 0) {
      const int s_k = p.seqlens[piece.seq * p.seqlens_stride];
      RowState row;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        row.limit[h] = key_limit(p, s_k, m_tile * kBlockM + row0 + 8 * h, piece.key_end);
        row.scale[h] = kQScaled ? score_scale * fp8::exp2i(s.q_exponent[row0 + 8 * h]) : score_scale;
      }
      score_warpgroup(piece, n_tiles, o, row);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        row.sum[h] += __shfl_xor_sync(0xffffffffu, row.sum[h], 1);
        row.sum[h] += __shfl_xor_sync(0xffffffffu, row.sum[h], 2);
        if (lane % 4 == 0) {
          s.row_max[row0 + 8 * h] = row.max[h];
          s.row_sum[row0 + 8 * h] = row.sum[h];
        }
      }
    } else {
      value_warpgroup(piece, n_tiles, o);
    }
    tiles_done += n_tiles;
    cuda::sync_cta<kCtaBarrier>();  // row statistics and the bad-page flag are final

    const bool bad = cuda::report_piece(piece, s.bad_page, [&] { return s.walk.status; });
    const float max[2] = {s.row_max[row0], s.row_max[row0 + 8]};
    const float sum[2] = {s.row_sum[row0], s.row_sum[row0 + 8]};
    if constexpr (kPerTensor) {
      scale_rows(o, out_scale, out_scale);
    }
    if constexpr (kTileExponent) {  // the output accumulated O times 2^-G
      scale_rows(o, s.value_up, s.value_up);
    }
    write_rows<T>(p, piece, m_tile, kv_head, bad, max, sum, o);
  }

  template <Role kRole = Role::consumer>
  __device__ void run(const Piece& piece) {
    static_assert(kFp8 || kRole == Role::consumer, "a 16-bit cache has no converter");
    constexpr bool kIssues = (kRole == Role::consumer) == kConsumersIssue;  // this role holds the producer thread
    const int n_tiles = (piece.key_end - piece.key_begin + kBlockN - 1) / kBlockN;
    cuda::sync_cta<kCtaBarrier>();  // every thread is done with the previous piece's shared memory
    const bool q_by_tma = !kFp8 && p.q_by_tma;
    int stale = 0;
    const int early = early_tiles(piece, n_tiles, stale);
    if (stale > 0) {
      skip_tiles(stale);
    }
    // The early q rows (warm) are this piece's when it is of their sequence; else this piece's box is
    // issued once they landed, and warpgroup 0 waits for one phase of q_full more.
    const bool q_early = !kFp8 && pieces_done == 0 && s.early.q;
    const bool q_ours = q_early && piece.seq == s.early.seq;
    q_phase += q_early && !q_ours ? 1 : 0;
    if (kIssues && threadIdx.x == kProducer) {
      if (q_early && !q_ours) {
        ptx::mbarrier_wait(ptx::smem_addr(&s.q_full), 0);
      }
      if (q_by_tma && !q_ours) {
        issue_q(piece);
      }
      if (early == 0) {
        s.bad_page = 0;
        next_block = issue_first_tiles<kStages, 1>(
            0, n_tiles, [&](int t) { return fetch_block(piece, t); },
            [&](int t, int32_t block) { issue(piece, t, block); });
      } else {
        next_block = kStages < n_tiles ? fetch_block(piece, kStages) : 0;
      }
    }
    if constexpr (kRole == Role::consumer) {
      if constexpr (kQScaled) {
        fp8::load_q_fp8<T, Op, kBlockM, false, kQBatchRows, kTileExponent>(p, piece.seq, m_tile, kv_head, s.q,
                                                                           s.q_exponent);
      } else if (!q_by_tma) {
        load_q<T>(p, piece.seq, m_tile, kv_head, s.q);
      }
      prefetch_next_q<T, kBlockM, kThreads>(p, s.walk.walk, piece, m_tile, kv_head);  // into L2, for the next piece
    }
    if (!q_by_tma) {
      cuda::sync_cta<kCtaBarrier>();  // q is in shared memory, visible to the async proxy
    }
    if constexpr (kRole == Role::converter) {
      converter_warpgroup(piece, n_tiles);
      if (kTileExponent && wg_thread == 0) {  // 2^G of the piece's last tile
        s.value_up = n_tiles == 0 ? 1.f : s.tile_up[(tiles_done + n_tiles - 1) % kStages];
      }
      tiles_done += n_tiles;
      cuda::sync_cta<kCtaBarrier>();  // matches the consumers' barrier before they write the rows
    } else {
      consume(piece, n_tiles);
    }
    ++pieces_done;
  }
};

}  // namespace openmla::sm90
