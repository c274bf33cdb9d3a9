#pragma once
// The portable MLA decode kernel (sm_80+): cp.async-buffered cache tiles gathered through the block
// table (two in flight, three of a per-tensor FP8 cache), mma.sync m16n8k16 for both products, online
// softmax in fp32.
//
// Grid: (m_tiles, num_parts, h_kv). CTA (m, p, g) computes query rows [m * kM, (m + 1) * kM) of KV head
// g (row r = i * group + head, i < s_q) for every sequence piece of plan part p. A piece that is the
// whole sequence writes out/lse; a piece of a split sequence writes its normalized partial result to
// the workspace for the combine kernel.
//
// Per cache tile of kKeys keys (Cta::run), in five phases:
//   (0. partial_scores: split scores, a per-tensor FP8 cache at 16 rows: each warp's partial S over a
//       quarter of the dims, q in its registers (fp8_fragments.cuh); phase 1 adds them up; that loop,
//       Cta::run_split, has its own barriers, a lazy softmax base instead of phases 2-3's running max,
//       and its loads among phase 4's products;)
//   1. scores:        S = Q K^T for each score warp's [16 rows, kKeysPerWarp keys], scaled, masked;
//   2. softmax_to_p:  the rows' running max moves; P = exp2(S - max) goes to shared memory;
//   3. rescale:       the output accumulators are scaled by how far their row's max moved;
//   4. accumulate_pv: O += P V for each output warp's [kORows rows, kColsPerWarp columns];
// and once per piece, 5. finish_rows: O / row sum and the lse are written.
//
// An FP8 cache (Tr::kFp8, docs/fp8.md) streams its raw rows (half the bytes of bf16) through the
// cp.async stages instead. fp8_per_tensor: the products take their cache operands from the raw tiles,
// converted to fp16 fragments in registers (fp8_fragments.cuh; q and P in fp16, a bf16 q row times a
// power of two), and k_scale multiplies the scores and the output in fp32. fp8_656: each tile is
// converted to T in shared memory (convert_tile) before phase 1, each value times its token's scale,
// rounded once to T.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <numbers>

#include "../../core/pieces.h"
#include "../../core/status.h"
#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../common/walk.cuh"
#include "dequant.cuh"
#include "fp8_fragments.cuh"
#include "fragment.cuh"
#include "traits.h"

namespace openmla::portable {

using fragment::mma;
using fragment::pack2;

using schedule::Piece;

template <class Tr>
struct Cta {
  using T = typename Tr::T;
  using Op = typename Tr::Op;  // of both products: T, or fp16 on a per-tensor cache
  using Shared = typename Tr::Shared;
  static constexpr bool kFp8 = Tr::kFp8;
  static constexpr bool kFp8Fragments = Tr::kFp8Fragments;   // per tensor: the products read the raw tiles
  static constexpr bool kConverts = kFp8 && !kFp8Fragments;  // 656-byte tokens: each tile converted to T
  static constexpr bool kSplitScores = Tr::kSplitScores;     // per tensor at 16 rows (fp8_fragments.cuh)
  static constexpr int kLoadStages = Tr::kLoadStages;
  static constexpr int kM = Tr::kM;
  static constexpr int kKeys = Tr::kKeys;

  const cuda::DecodeParams& p;
  Shared& s;
  int m_tile;
  int kv_head;
  int warp = threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  int dim_group = warp % kScoreDimGroups;  // split scores: the warp's k16 steps
  int key_group = warp / kScoreDimGroups;  // ... and keys
  int warp_m = warp / Tr::kWarpsN;         // score row slice
  // Score key slice: with split scores, n8 tile warp_n of keys is summed by a warp of the key group that
  // computed its partials, so that the group's own barrier orders the two.
  int warp_n = kSplitScores ? key_group * Tr::kKeyGroupTiles + dim_group : warp % Tr::kWarpsN;

  int o_m = warp / Tr::kOWarpsN;  // output row group
  int o_n = warp % Tr::kOWarpsN;  // output column group
  bool has_scores = kSplitScores ? dim_group < Tr::kKeyGroupTiles : warp_n < Tr::kScoreWarps;
  // k_scale (fp8_per_tensor), read once per CTA: on the device, so that a replayed graph sees a new value.
  float k_scale = Tr::kFormat == CacheFormat::fp8_per_tensor ? *p.k_scale : 1.f;

  using RowLayout = typename Tr::RowLayout;  // q and cache tiles
  using PLayout = typename Tr::PLayout;      // P
  static constexpr int kRowBytes = RowLayout::kRowBytes;
  // k16 steps (two chunks each) per swizzle period: the per-lane ldmatrix offsets of one period, plus
  // compile-time multiples of kPeriodBytes, address every fragment along a row.
  static constexpr int kStepsPerPeriod = RowLayout::kPeriodChunks / 2;

  // Loads rows [m_tile * kM, +kM) of q for `seq` into s.q; rows past p.rows are zero.
  __device__ void load_q(int seq) {
    const auto* q = static_cast<const T*>(p.q);  // [b, s_q, h_q, kDQK]
    for (int r = threadIdx.x / kThreadsPerRow; r < kM; r += kThreads / kThreadsPerRow) {
      const int row = m_tile * kM + r;
      const bool valid = row < p.rows;
      const int i = valid ? row / p.group : 0;
      const int head = kv_head * p.group + (valid ? row % p.group : 0);
      const T* src = q + seq * p.q_stride_b + i * p.q_stride_s + head * p.q_stride_h;  // [kDQK]
      for (int c = threadIdx.x % kThreadsPerRow; c < kRowChunks; c += kThreadsPerRow) {
        ptx::cp_async_16(ptx::smem_addr(s.q) + RowLayout::offset(r, c), src + c * kChunk, valid ? 16 : 0);
      }
    }
  }

  // Threads per cache row of a load: an FP8 tile gives each thread a part of one row.
  static constexpr int kLoadThreadsPerRow = kFp8 ? kThreads / kKeys : kThreadsPerRow;
  static constexpr int kRowsPerPass = kThreads / kLoadThreadsPerRow;  // cache rows the CTA loads at once
  static constexpr int kLoadRows = kKeys / kRowsPerPass;              // cache rows per thread and tile
  static_assert(kRowsPerPass % RowLayout::kPeriodRows == 0 && kThreadsPerRow % RowLayout::kPeriodChunks == 0 &&
                kKeys % kRowsPerPass == 0 && kRowChunks % kThreadsPerRow == 0);
  static_assert(!kFp8 || kLoadRows == 1);

  // Where each of this thread's rows of a tile lies in the cache: its block (unused past the piece's
  // end) and its slot in the block.
  struct Places {
    int32_t block[kLoadRows];
    int slot[kLoadRows];
  };

  // The places of this thread's rows of the tile at key0. Read a tile ahead of the load, so the
  // block-table latency hides behind a tile of work.
  __device__ void fetch_places(int seq, int key0, int key_end, Places& at) const {
    const int32_t* pages = p.block_table + seq * p.bt_stride_b;  // [max_blocks]
#pragma unroll
    for (int i = 0; i < kLoadRows; ++i) {
      const int key = key0 + threadIdx.x / kLoadThreadsPerRow + i * kRowsPerPass;
      const int page = p.page_shift >= 0 ? key >> p.page_shift : key / p.page_size;
      at.block[i] = key < key_end ? pages[static_cast<int64_t>(page) * p.bt_stride_page] : 0;
      at.slot[i] = key - page * p.page_size;
    }
  }

  // Loads keys [key0, key0 + kKeys) into stage buffer `stage` from the places fetch_places read; keys
  // at or past key_end are zero (their slots may hold NaN, and 0 * NaN would reach the output). A
  // block index outside [0, num_blocks) is never dereferenced: the row is zeroed and s.bad_page set.
  __device__ void load_k(int key0, int key_end, int stage, const Places& at) {
    const auto* cache = static_cast<const T*>(p.k_cache);  // [num_blocks, page_size, h_kv, kDQK]
    const int row0 = threadIdx.x / kThreadsPerRow;
    const int chunk0 = threadIdx.x % kThreadsPerRow;
    // This thread's rows are a pass apart and its chunks kThreadsPerRow apart, multiples of the swizzle's
    // periods: every one of its slots is the slot of (row0, chunk0) plus a compile-time offset.
    const uint32_t dst0 = ptx::smem_addr(s.tiles.k[stage]) + RowLayout::offset(row0, chunk0);
#pragma unroll
    for (int i = 0; i < kLoadRows; ++i) {
      const int key = key0 + row0 + i * kRowsPerPass;
      bool valid = key < key_end;
      const T* src = cache;
      if (valid) {
        if (at.block[i] < 0 || at.block[i] >= p.num_blocks) {
          s.bad_page = 1;
          valid = false;
        } else {
          src = cache + at.block[i] * p.k_stride_block + static_cast<int64_t>(at.slot[i]) * p.k_stride_token +
                kv_head * p.k_stride_head + chunk0 * kChunk;
        }
      }
      const uint32_t dst = dst0 + i * kRowsPerPass * kRowBytes;
#pragma unroll
      for (int j = 0; j < kRowChunks / kThreadsPerRow; ++j) {
        ptx::cp_async_16(dst + j * kThreadsPerRow * 16, src + j * kThreadsPerRow * kChunk, valid ? 16 : 0);
      }
    }
  }

  // The FP8 form of load_k in two halves: raw_copy finds where this thread's chunks of its row of keys
  // [key0, key0 + kKeys) come from and go to in s.raw[stage] (per tensor at their fp8::raw_slot), issue
  // copies them; zeros (every value, scale and RoPE value 0) past key_end and for a bad block.
  static constexpr int kRawChunks = kRawRowBytes<Tr::kFormat> / 16;
  static constexpr int kRawCopies = (kRawChunks + kLoadThreadsPerRow - 1) / kLoadThreadsPerRow;  // per thread
  struct RawCopy {
    const uint8_t* src;  // the first chunk in the cache
    uint32_t dst;        // ... its slot in the stage
    int size;            // bytes each copy reads: 16, or 0 (zero fill, nothing read)

    // Copies [kFirst, kLast) of the thread's kRawCopies.
    template <int kFirst, int kLast>
    __device__ void issue() const {
#pragma unroll
      for (int j = kFirst; j < kLast; ++j) {
        if (kRawChunks % kLoadThreadsPerRow == 0 ||
            static_cast<int>(threadIdx.x) % kLoadThreadsPerRow + j * kLoadThreadsPerRow < kRawChunks) {
          ptx::cp_async_16(dst + j * kLoadThreadsPerRow * 16, src + j * kLoadThreadsPerRow * 16, size);
        }
      }
    }
  };

  __device__ void load_raw(int key0, int key_end, int stage, const Places& at) {
    bool bad = false;
    raw_copy(key0, key_end, stage, at, bad).template issue<0, kRawCopies>();
    if (bad) {
      s.bad_page = 1;
    }
  }

  // bad_row: set when the row's block is out of range.
  __device__ RawCopy raw_copy(int key0, int key_end, int stage, const Places& at, bool& bad_row) {
    constexpr int kBytes = kRawRowBytes<Tr::kFormat>;
    const auto* cache = static_cast<const uint8_t*>(p.k_cache);  // [num_blocks, page_size, h_kv, kBytes]
    const int row = threadIdx.x / kLoadThreadsPerRow;
    const int chunk0 = threadIdx.x % kLoadThreadsPerRow;
    const bool in_piece = key0 + row < key_end;
    const bool bad = in_piece && (at.block[0] < 0 || at.block[0] >= p.num_blocks);
    bad_row = bad_row || bad;
    const bool valid = in_piece && !bad;
    // Without branches, so that this arithmetic can interleave with the products around it.
    const int64_t offset = static_cast<int64_t>(valid ? at.block[0] : 0) * p.k_stride_block +
                           static_cast<int64_t>(valid ? at.slot[0] : 0) * p.k_stride_token +
                           (valid ? kv_head * p.k_stride_head : 0);
    const uint8_t* src = cache + offset;
    // Chunk chunk0 + j kLoadThreadsPerRow lies at slot slot0 + j kLoadThreadsPerRow (fp8::raw_slot permutes
    // chunks within aligned fours), so every copy is the first's plus compile-time offsets. An invalid row
    // copies 0 bytes (zero fill) and reads none.
    static_assert(!kFp8Fragments || kLoadThreadsPerRow % 4 == 0);
    const int slot0 = kFp8Fragments ? fp8::raw_slot(row, chunk0) : chunk0;
    return RawCopy{src + chunk0 * 16, ptx::smem_addr(s.raw[stage]) + row * kBytes + slot0 * 16, valid ? 16 : 0};
  }

  // What one 16-byte chunk of a T row is made from, as read from the raw row: eight e4m3 values (in
  // bits.x, bits.y) and, for a 656-byte token, their scale; or a 656-byte token's eight RoPE values,
  // already T (all of bits).
  struct RawChunk {
    uint4 bits;
    float scale;
  };
  static constexpr bool kToken = Tr::kFormat == CacheFormat::fp8_656;

  // Chunk c of the raw row at src.
  __device__ static RawChunk read_chunk(const uint8_t* src, int c) {
    RawChunk r{};
    if (kToken && c >= kTokenValueChunks) {
      r.bits = *reinterpret_cast<const uint4*>(src + kTokenRopeAt + (c - kTokenValueChunks) * 16);
    } else {
      const uint2 v = *reinterpret_cast<const uint2*>(src + c * kChunk);
      r.bits.x = v.x;
      r.bits.y = v.y;
      if constexpr (kToken) {
        r.scale = reinterpret_cast<const float*>(src + kTokenScalesAt)[c * kChunk / kFp8TokenTile];
      }
    }
    return r;
  }

  // Chunk c of a T row from what read_chunk read.
  __device__ static uint4 convert_chunk(const RawChunk& r, int c) {
    if (kToken && c >= kTokenValueChunks) {
      return r.bits;
    }
    return dequant::e4m3x8<T, kToken>(make_uint2(r.bits.x, r.bits.y), r.scale);
  }

  // Converts the raw tile in s.raw[stage] to T in s.k[0] (RowLayout), 16-byte chunk by chunk. Each
  // thread reads kReadAhead of its chunks before converting and storing them, so that their shared-
  // memory reads overlap instead of each waiting behind the previous chunk's store.
  __device__ void convert_tile(int stage) {
    constexpr int kBytes = kRawRowBytes<Tr::kFormat>;
    constexpr int kPerThread = kKeys * kRowChunks / kThreads;  // chunks per thread: 18 (64 keys) or 9
    constexpr int kReadAhead = 9;
    static_assert((kKeys * kRowChunks) % kThreads == 0 && kPerThread % kReadAhead == 0);
    const uint8_t* raw = s.raw[stage];  // [kKeys, kBytes]
    char* tile = reinterpret_cast<char*>(s.tiles.k[0]);
#pragma unroll
    for (int i0 = 0; i0 < kPerThread; i0 += kReadAhead) {
      RawChunk in[kReadAhead];
#pragma unroll
      for (int j = 0; j < kReadAhead; ++j) {
        const int id = threadIdx.x + (i0 + j) * kThreads;
        in[j] = read_chunk(raw + id / kRowChunks * kBytes, id % kRowChunks);
      }
#pragma unroll
      for (int j = 0; j < kReadAhead; ++j) {
        const int id = threadIdx.x + (i0 + j) * kThreads;
        *reinterpret_cast<uint4*>(tile + RowLayout::offset(id / kRowChunks, id % kRowChunks)) =
            convert_chunk(in[j], id % kRowChunks);
      }
    }
  }

  // Between a tile's score, softmax and output phases, warps exchange data only with the warps of
  // their own query rows. When the CTA's rows form two output row groups whose warps are exactly the
  // score warps of those rows, each group (kWarps / 2 warps) waits at its own named barrier rather
  // than for the other group too; otherwise the whole CTA synchronizes.
  static constexpr bool kRowGroups =
      Tr::kOWarpsM == 2 && Tr::kOWarpsN == Tr::kOMTiles * Tr::kWarpsN && Tr::kScoreWarps == Tr::kWarpsN;
  __device__ void row_group_sync() const {
    if constexpr (kRowGroups) {
      static_assert(kBarrierRowGroup1 == kBarrierRowGroup0 + 1);
      ptx::named_barrier(kBarrierRowGroup0 + o_m, kThreads / 2);
    } else {
      __syncthreads();
    }
  }

  // Loads tile `tile` (if the piece has it) into its stage buffer from `places`, commits a cp.async
  // group, and fetches into `places` where the rows of the tile after it lie.
  __device__ void load_next(const Piece& piece, int tile, int n_tiles, Places& places) {
    if (tile < n_tiles) {
      if constexpr (kFp8) {
        load_raw(piece.key_begin + tile * kKeys, piece.key_end, tile % kLoadStages, places);
      } else {
        load_k(piece.key_begin + tile * kKeys, piece.key_end, tile % kLoadStages, places);
      }
    }
    ptx::cp_async_commit();
    if (tile + 1 < n_tiles) {
      fetch_places(piece.seq, piece.key_begin + (tile + 1) * kKeys, piece.key_end, places);
    }
  }

  // When the CTA is compute-bound (the row-group instance), tile t + 1 is loaded into the free stage
  // right after the barrier that opens tile t: the copies issue among the score products, and no
  // barrier closes the tile. Otherwise tile t + 2 is loaded after a barrier that closes tile t, which
  // keeps two tiles in flight for memory-bound shapes.
  // A per-tensor FP8 cache loads early too, tile t + 2 of its three stages, which saves the closing
  // barrier of every tile (at 16 rows, split scores, in run_split's own order). A 656-byte cache converts
  // each tile into the one T tile, so its loads follow the conversion instead.
  static constexpr bool kEarlyLoads = (kRowGroups && !kFp8) || kFp8Fragments;

  // The fragments each warp keeps in registers across a piece.
  using Scores = float[Tr::kScoreTiles][4];              // [16 rows, kKeysPerWarp keys] of a score warp
  using Output = float[Tr::kOMTiles][Tr::kOutTiles][4];  // [kORows rows, kColsPerWarp cols] of an output warp
  using QSteps = uint32_t[fp8::kDimSteps][4];            // split scores: q [16 rows, k16] of the warp's dim
                                                         // group, step by step

  // This thread's two rows of its warp's score slice (fragment halves 0 and 1) and the keys they see.
  struct ScoreRows {
    int row[2];     // row of the CTA's kM
    int limit[2];   // the row sees keys below this: its causal limit, at most key_end
    int min_limit;  // the smaller limit; a warp masks only the tiles that reach past some lane's min_limit
  };

  // The row of the CTA's kM that half h of output m16 tile mt of this thread holds.
  __device__ int output_row(int mt, int h) const {
    return o_m * Tr::kORows + mt * fragment::kM + fragment::acc_row(lane, h);
  }

  // Per-lane shared-memory addresses of the ldmatrix reads: this warp's Q slice and P rows, and for
  // each operand one byte offset per k16 step of a swizzle period (the fragment layouts of fragment.cuh).
  struct Lanes {
    uint32_t q_slice;             // s.q at this warp's score row slice
    uint32_t p_rows;              // s.p at this warp's output row group
    uint32_t q[kStepsPerPeriod];  // A from Q
    uint32_t k[kStepsPerPeriod];  // B from K (the score keys)
    uint32_t v[kStepsPerPeriod];  // B from V, through ldmatrix.trans
    uint32_t p[kStepsPerPeriod];  // A from P (steps past P's row are unused)
    fp8::ValueLanes raw_v;        // per-tensor cache: B from the raw V rows
  };

  __device__ Lanes lanes() const {
    Lanes l;
    constexpr int kKeyTiles = Tr::kScoreTiles == 1 ? 1 : 2;  // n8 tiles of keys per ldmatrix
    const int k_row = fragment::b_row<kKeyTiles>(lane);
#pragma unroll
    for (int j = 0; j < kStepsPerPeriod; ++j) {
      l.q[j] = RowLayout::offset(fragment::a_row(lane), 2 * j + fragment::a_chunk(lane));
      l.k[j] = RowLayout::offset(k_row, 2 * j + fragment::b_chunk(lane));
      l.v[j] = RowLayout::offset(fragment::bt_row(lane), 2 * j + fragment::bt_chunk(lane));
      l.p[j] = 2 * j < Tr::kPChunks ? PLayout::offset(fragment::a_row(lane), 2 * j + fragment::a_chunk(lane)) : 0;
    }
    l.q_slice = ptx::smem_addr(s.q) + warp_m * fragment::kM * kRowBytes;
    l.p_rows = ptx::smem_addr(s.p[0]) + o_m * Tr::kORows * PLayout::kRowBytes;
    if constexpr (kFp8Fragments) {
      l.raw_v = fp8::value_lanes(lane, o_n * Tr::kColsPerWarp);
    }
    return l;
  }

  // Tiles a piece starts with: one per stage, but with split scores, which load a tile's successor
  // kLoadStages - 1 tiles ahead (run_split), one fewer.
  static constexpr int kFirstTiles = kSplitScores ? kLoadStages - 1 : kLoadStages;

  // Resets the piece's shared state, loads its q, and starts loading its first kFirstTiles tiles.
  __device__ void begin_piece(const Piece& piece, int n_tiles, Places& places) {
    __syncthreads();  // the previous piece is done with shared memory
    if (threadIdx.x == 0) {
      s.bad_page = 0;
    }
    if (threadIdx.x < kM) {
      s.run_max[0][threadIdx.x] = -INFINITY;
    }
    __syncthreads();
    const auto first_tiles = [&] {
      fetch_places(piece.seq, piece.key_begin, piece.key_end, places);
      for (int tile = 0; tile < kFirstTiles; ++tile) {  // one cp.async group each (plain: q's copies in tile 0's)
        load_next(piece, tile, n_tiles, places);
      }
    };
    if constexpr (kFp8Fragments) {  // q through registers, its loads on their way before the tiles'
      fp8::load_q<T, kM, kWarps, RowLayout>(p, piece.seq, m_tile, kv_head, reinterpret_cast<char*>(s.q), s.q_exponent,
                                            first_tiles);
    } else {
      load_q(piece.seq);
      first_tiles();
    }
  }

  // A row sees the keys below its causal limit (all s_k keys when not causal) that the piece holds.
  __device__ ScoreRows score_rows(const Piece& piece) const {
    const int s_k = p.seqlens[piece.seq * p.seqlens_stride];
    ScoreRows r;
    for (int h = 0; h < 2; ++h) {
      r.row[h] = warp_m * fragment::kM + fragment::acc_row(lane, h);
      const int row = m_tile * kM + r.row[h];
      const int i = row < p.rows ? row / p.group : 0;
      const int visible = p.causal ? s_k - p.s_q + i + 1 : s_k;
      r.limit[h] = visible < piece.key_end ? visible : piece.key_end;
    }
    r.min_limit = min(r.limit[0], r.limit[1]);
    return r;
  }

  // Waits for tile `tile` to land in its stage; then, with early loads, starts loading tile
  // tile + kLoadStages - 1 into the stage tile - 1 left (every warp is past the barrier, so done with it).
  __device__ void wait_for_tile(const Piece& piece, int tile, int n_tiles, Places& places) {
    if (kEarlyLoads && tile > 0) {
      ptx::cp_async_wait<kLoadStages - 2>();  // the groups of the tiles after this one may be pending
    } else {
      ptx::cp_async_wait<kLoadStages - 1>();
    }
    __syncthreads();
    if (kEarlyLoads && tile > 0) {
      load_next(piece, tile + kLoadStages - 1, n_tiles, places);
    }
  }

  // The FP8 form of wait_for_tile: once tile `tile` has landed and every warp is done with the T tile,
  // the tile is converted into it, and its raw stage, free again, starts loading tile + kLoadStages.
  __device__ void wait_and_convert(const Piece& piece, int tile, int n_tiles, Places& places) {
    ptx::cp_async_wait<kLoadStages - 1>();
    __syncthreads();
    convert_tile(tile % kLoadStages);
    __syncthreads();
    load_next(piece, tile + kLoadStages, n_tiles, places);
  }

  // The A fragment of q for k16 step ks of this warp's score rows.
  __device__ void q_fragment(const Lanes& l, int ks, uint32_t (&a)[4]) const {
    const uint32_t period = (ks / kStepsPerPeriod) * RowLayout::kPeriodBytes;
    ptx::ldmatrix_x4(a, l.q_slice + period + l.q[ks % kStepsPerPeriod]);
  }

  // sc = Q K^T for this warp's 16 rows against its kKeysPerWarp keys of the T tile at sk.
  __device__ void score_products(uint32_t sk, const Lanes& l, Scores& sc) const {
    constexpr int kScoreTiles = Tr::kScoreTiles;
    const uint32_t sk_scores = sk + warp_n * Tr::kKeysPerWarp * kRowBytes;  // [kKeysPerWarp keys, kDQK]
#pragma unroll
    for (int ks = 0; ks < kRowChunks / 2; ++ks) {
      const uint32_t period = (ks / kStepsPerPeriod) * RowLayout::kPeriodBytes;
      uint32_t a[4];  // Q [16 rows, k16]
      q_fragment(l, ks, a);
      if constexpr (kScoreTiles == 1) {
        uint32_t b[2];  // K [k16, 8 keys]
        ptx::ldmatrix_x2(b, sk_scores + period + l.k[ks % kStepsPerPeriod]);
        mma<T>(sc[0], a, b[0], b[1]);
      } else {
#pragma unroll
        for (int np = 0; np < kScoreTiles / 2; ++np) {
          uint32_t b[4];  // K [k16, 16 keys]: two n8 tiles
          ptx::ldmatrix_x4(b, sk_scores + np * 2 * fragment::kN * kRowBytes + period + l.k[ks % kStepsPerPeriod]);
          mma<T>(sc[2 * np], a, b[0], b[1]);
          mma<T>(sc[2 * np + 1], a, b[2], b[3]);
        }
      }
    }
  }

  // The same on a per-tensor cache, from the raw tile at raw (fp8_fragments.cuh), in fp16.
  __device__ void score_products_fp8(uint32_t raw, const Lanes& l, Scores& sc) const {
    fp8::score_products(
        raw + warp_n * Tr::kKeysPerWarp * fp8::kRowBytes, lane, [&](int ks, uint32_t(&a)[4]) { q_fragment(l, ks, a); },
        sc);
  }

  // Split scores, phase 0 (every warp): the partial scores of its key group's kKeyGroupTiles n8 tiles over
  // its dim group's k16 steps, from the raw tile at raw, to s.partials.
  __device__ void partial_scores(uint32_t raw, const fp8::KeyLanes& kl, const QSteps& q) {
    constexpr int kTiles = Tr::kKeyGroupTiles;
    float acc[kTiles][4];  // [16 rows, 8 keys] per n8 tile
    fp8::partial_scores(raw + key_group * kTiles * fragment::kN * fp8::kRowBytes, kl, q, acc);
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      *reinterpret_cast<float4*>(s.partials.v[dim_group][key_group * kTiles + t][lane]) =
          make_float4(acc[t][0], acc[t][1], acc[t][2], acc[t][3]);
    }
  }

  // Phase 1 (score warps). sc = Q K^T for this warp's 16 rows against its kKeysPerWarp keys of the tile
  // at key0 (sk: the tile in shared memory, a T tile or a per-tensor cache's raw one; split scores: the
  // sum of the dim groups' partials, in their order), scaled to the log2 domain, keys a row does not see
  // at -inf (scale: row_scales'); each row's max over the warp's keys goes to s.row_max[warp_n] and to
  // tile_max.
  __device__ void scores(uint32_t sk, int key0, const ScoreRows& rows, const float (&scale)[2], const Lanes& l,
                         Scores& sc, float (&tile_max)[2]) {
    constexpr int kScoreTiles = Tr::kScoreTiles;
    for (int t = 0; t < kScoreTiles; ++t) {
      sc[t][0] = sc[t][1] = sc[t][2] = sc[t][3] = 0.f;
    }
    const int key_base = warp_n * Tr::kKeysPerWarp;
    if constexpr (kFp8Fragments) {
      if constexpr (kSplitScores) {
        static_assert(Tr::kScoreTiles == 1, "a score warp's 8 keys are one n8 tile of the partials");
#pragma unroll
        for (int dg = 0; dg < kScoreDimGroups; ++dg) {
          const float4 v = *reinterpret_cast<const float4*>(s.partials.v[dg][warp_n][lane]);
          sc[0][0] += v.x;
          sc[0][1] += v.y;
          sc[0][2] += v.z;
          sc[0][3] += v.w;
        }
      } else {
        score_products_fp8(sk, l, sc);
      }
    } else {
      score_products(sk, l, sc);
    }
    tile_max[0] = tile_max[1] = -INFINITY;
    // Masking only on tiles that reach past some row's last visible key (warp-uniform branch).
    const bool masked = __any_sync(fragment::kFullMask, key0 + key_base + Tr::kKeysPerWarp > rows.min_limit);
#pragma unroll
    for (int t = 0; t < kScoreTiles; ++t) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = fragment::elem_half(e);
        const int key = key0 + key_base + t * fragment::kN + fragment::acc_col(lane) + fragment::elem_col(e);
        sc[t][e] = !masked || key < rows.limit[h] ? sc[t][e] * scale[h] : -INFINITY;
        tile_max[h] = fmaxf(tile_max[h], sc[t][e]);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      tile_max[h] = fragment::quad_max(tile_max[h]);
      if (fragment::quad_leader(lane)) {
        s.row_max[warp_n][rows.row[h]] = tile_max[h];
      }
    }
  }

  // What the scores of this thread's two rows are multiplied by: softmax_scale * log2(e), times k_scale
  // for fp8_per_tensor, and times 2^q_exponent[r] for a bf16 q row r stored times 2^-q_exponent[r] (once
  // q is in shared memory).
  __device__ void row_scales(const ScoreRows& rows, float (&scale)[2]) const {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      scale[h] = Tr::kFormat == CacheFormat::fp8_per_tensor ? p.scale_log2 * k_scale : p.scale_log2;
      if constexpr (kFp8Fragments && std::is_same_v<T, __nv_bfloat16>) {
        scale[h] *= cuda::exp2i(s.q_exponent[rows.row[h]]);
      }
    }
  }

  // Row `row` (of the CTA's kM) after the tile whose partial maxima are in s.row_max: the running
  // max before it (s.run_max[parity]), the max after it, the max to subtract (0 for a row that has
  // seen no key, so exp2 gives 0 rather than NaN) and the factor rescaling what came before.
  struct RowUpdate {
    float new_max;
    float use_max;
    float scale_old;
  };
  __device__ RowUpdate row_update(int row, int parity) const {
    const float old_max = s.run_max[parity][row];
    float m = old_max;
#pragma unroll
    for (int w = 0; w < Tr::kScoreWarps; ++w) {
      m = fmaxf(m, s.row_max[w][row]);
    }
    const float use = m == -INFINITY ? 0.f : m;
    return RowUpdate{m, use, ptx::ex2(old_max - use)};
  }

  // Phase 2 (score warps). The rows' new running max (from every score warp's s.row_max) goes to
  // s.run_max[parity ^ 1] and the factor rescaling their output so far to s.row_scale; P = exp2(sc - max)
  // goes to s.p[0] (store_p), and its row sums into row_sum, this warp's share of the rows' running sums.
  __device__ void softmax_to_p(const Scores& sc, const ScoreRows& rows, int parity, float (&row_sum)[2]) {
    RowUpdate u[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      u[h] = row_update(rows.row[h], parity);
      row_sum[h] *= u[h].scale_old;
      if (warp_n == 0 && fragment::quad_leader(lane)) {
        s.run_max[parity ^ 1][rows.row[h]] = u[h].new_max;
        s.row_scale[rows.row[h]] = u[h].scale_old;
      }
    }
    store_p(sc, rows, {u[0].use_max, u[1].use_max}, 0, row_sum);
  }

  // P = exp2(sc - use_max of its row) of this score warp's keys to s.p[buffer] as Op; its row sums are
  // added to sum.
  __device__ void store_p(const Scores& sc, const ScoreRows& rows, const float (&use_max)[2], int buffer,
                          float (&sum)[2]) {
#pragma unroll
    for (int t = 0; t < Tr::kScoreTiles; ++t) {
      float pr[4];  // P, an accumulator fragment like sc[t]
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        pr[e] = ptx::ex2(sc[t][e] - use_max[fragment::elem_half(e)]);
        sum[fragment::elem_half(e)] += pr[e];
      }
      const int col = warp_n * Tr::kKeysPerWarp + t * fragment::kN + fragment::acc_col(lane);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int offset = PLayout::offset(rows.row[h], col / kChunk) + (col % kChunk) * 2;
        *reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(s.p[buffer]) + offset) =
            pack2<Op>(pr[2 * h], pr[2 * h + 1]);
      }
    }
  }

  // Phase 3. Rescales this warp's output rows by how far their max moved (s.row_scale). Once the maxima
  // settle the factors are exactly 1, and the warp skips the multiplications (a bitwise no-op).
  __device__ void rescale(Output& acc) const {
    float scale[Tr::kOMTiles][2];  // [m16 tile, half]
    bool moved = false;
#pragma unroll
    for (int mt = 0; mt < Tr::kOMTiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        scale[mt][h] = s.row_scale[output_row(mt, h)];
        moved = moved || scale[mt][h] != 1.f;
      }
    }
    if (__any_sync(fragment::kFullMask, moved)) {
#pragma unroll
      for (int mt = 0; mt < Tr::kOMTiles; ++mt) {
#pragma unroll
        for (int t = 0; t < Tr::kOutTiles; ++t) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            acc[mt][t][e] *= scale[mt][fragment::elem_half(e)];
          }
        }
      }
    }
  }

  // The A fragments of P (buffer `buffer`) for k16 step kk of this warp's output rows.
  __device__ void p_fragments(const Lanes& l, int buffer, int kk, uint32_t (&a)[Tr::kOMTiles][4]) const {
    const uint32_t rows = l.p_rows + buffer * static_cast<uint32_t>(sizeof(s.p[0]));
#pragma unroll
    for (int mt = 0; mt < Tr::kOMTiles; ++mt) {
      ptx::ldmatrix_x4(a[mt], rows + mt * fragment::kM * PLayout::kRowBytes + l.p[kk]);
    }
  }

  // Phase 4 on a per-tensor cache: acc += P (buffer `buffer`) V from the raw tile at raw, in fp16; the
  // warp's accumulator columns in fp8_fragments' order (fp8::output_dim); after(kk) runs once k16 step kk's
  // products are issued (kk a std::integral_constant).
  template <typename After>
  __device__ void accumulate_pv_fp8(const uint8_t* raw, const Lanes& l, int buffer, Output& acc, After&& after) const {
    static_assert(Tr::kOutTiles == fp8::kOutTiles, "a warp's 64 output columns");
    fp8::accumulate<kKeys>(
        raw, l.raw_v, [&](int kk, uint32_t(&a)[Tr::kOMTiles][4]) { p_fragments(l, buffer, kk, a); }, acc, after);
  }

  // Phase 4. acc += P [kORows rows, kKeys] . V [kKeys, this warp's kColsPerWarp columns] (sk: the tile).
  __device__ void accumulate_pv(uint32_t sk, const Lanes& l, Output& acc) const {
    const uint32_t sv = sk + o_n * Tr::kColsPerWarp * 2;  // V [kKeys, kColsPerWarp] within [kKeys, kDQK]
#pragma unroll
    for (int kk = 0; kk < kKeys / fragment::kK; ++kk) {
      uint32_t a[Tr::kOMTiles][4];  // P [kORows rows, k16 keys]
      p_fragments(l, 0, kk, a);
#pragma unroll
      for (int np = 0; np < Tr::kOutTiles / 2; ++np) {
        uint32_t b[4];  // V [k16 keys, 16 columns]: two n8 tiles
        const uint32_t period = (np / kStepsPerPeriod) * RowLayout::kPeriodBytes;
        ptx::ldmatrix_x4_trans(b, sv + kk * fragment::kK * kRowBytes + period + l.v[np % kStepsPerPeriod]);
#pragma unroll
        for (int mt = 0; mt < Tr::kOMTiles; ++mt) {
          mma<T>(acc[mt][2 * np], a[mt], b[0], b[1]);
          mma<T>(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }

  // Phase 5. The rows' sums meet in shared memory (over the quad, then over the score warps of the
  // slice); a piece with a bad length or page records its offence; every output row is written, with
  // the max its P was taken against: row_max(mt, h) for half h of output m16 tile mt.
  template <typename RowMax>
  __device__ void finish_rows(const Piece& piece, const ScoreRows& rows, float (&row_sum)[2], const Output& acc,
                              RowMax&& row_max) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      row_sum[h] = fragment::quad_sum(row_sum[h]);
      if (has_scores && fragment::quad_leader(lane)) {
        s.row_sum[warp_n][rows.row[h]] = row_sum[h];
      }
    }
    __syncthreads();
    const bool bad = cuda::report_piece(piece, s.bad_page, [&] { return cuda::status_word(p); });
#pragma unroll
    for (int mt = 0; mt < Tr::kOMTiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = output_row(mt, h);
        float total = 0.f;
#pragma unroll
        for (int w = 0; w < Tr::kScoreWarps; ++w) {
          total += s.row_sum[w][row];
        }
        write_row(piece, bad, row, o_n == 0 && fragment::quad_leader(lane), row_max(mt, h), total, acc[mt], h);
      }
    }
  }

  // acc = 0.
  __device__ static void zero(Output& acc) {
#pragma unroll
    for (int mt = 0; mt < Tr::kOMTiles; ++mt) {
#pragma unroll
      for (int t = 0; t < Tr::kOutTiles; ++t) {
        acc[mt][t][0] = acc[mt][t][1] = acc[mt][t][2] = acc[mt][t][3] = 0.f;
      }
    }
  }

  __device__ void run(const Piece& piece) {
    if constexpr (kSplitScores) {
      run_split(piece);
    } else {
      run_tiles(piece);
    }
  }

  // The tile loop of every instance but split scores' (run_split).
  __device__ void run_tiles(const Piece& piece) {
    const int n_tiles = (piece.key_end - piece.key_begin + kKeys - 1) / kKeys;
    Places places;  // where the rows of the next tile to load lie
    begin_piece(piece, n_tiles, places);
    const ScoreRows rows = score_rows(piece);
    float row_sum[2] = {0.f, 0.f};  // this warp's share of the running sums of its score rows
    Output acc;
    zero(acc);
    const Lanes l = lanes();
    for (int tile = 0; tile < n_tiles; ++tile) {
      const int parity = tile % 2;
      if constexpr (kConverts) {
        wait_and_convert(piece, tile, n_tiles, places);
      } else {
        wait_for_tile(piece, tile, n_tiles, places);
      }
      const uint8_t* raw = nullptr;  // per tensor: the raw tile [kKeys, 576] (fp8::raw_slot)
      uint32_t sk = 0;               // the tile the products read: [kKeys, kDQK] RowLayout, or raw
      if constexpr (kFp8Fragments) {
        raw = s.raw[tile % kLoadStages];
        sk = ptx::smem_addr(raw);
      } else {
        sk = ptx::smem_addr(s.tiles.k[tile % Tr::kTileStages]);
      }
      Scores sc;
      float tile_max[2];
      if (has_scores) {
        float scale[2];
        row_scales(rows, scale);
        scores(sk, piece.key_begin + tile * kKeys, rows, scale, l, sc, tile_max);
      }
      row_group_sync();
      if (has_scores) {
        softmax_to_p(sc, rows, parity, row_sum);
      }
      row_group_sync();
      rescale(acc);
      if constexpr (kFp8Fragments) {
        accumulate_pv_fp8(raw, l, 0, acc, [](auto) {});
      } else {
        accumulate_pv(sk, l, acc);
      }
      if constexpr (!kEarlyLoads && !kConverts) {
        __syncthreads();
        load_next(piece, tile + kLoadStages, n_tiles, places);
      }
    }
    ptx::cp_async_wait<0>();
    finish_rows(piece, rows, row_sum, acc, [&](int mt, int h) { return s.run_max[n_tiles % 2][output_row(mt, h)]; });
  }

  // Split scores (16 rows, per-tensor cache): the tile loop. The threads of key group g load the tile's
  // rows of that group's keys (load_raw: thread x loads row x / kLoadThreadsPerRow), and only the group's
  // warps read them in phase 0 and sum their partials, so the two groups meet at one CTA barrier a tile,
  // where P is complete:
  //   A (group): the group's rows of tile t have landed;  phase 0: partial scores
  //   B (group): the group's partials are stored;        phases 1-2: scores, P of the group's keys
  //   C (CTA):   P is stored and every warp is done with tile t - 1, whose stage starts loading tile
  //              t + kLoadStages - 1;                     phase 4: O += P V
  // The softmax needs no CTA-wide max (a lazy base): each row keeps the base its P is taken against until
  // a score of the row exceeds it by more than 2^kBaseSlack (P <= 2^8 in fp16). C tells every warp
  // whether one did (__syncthreads_or); then, and only then (a piece's first tile, and where the scores
  // rise), rebase raises the bases to the rows' max, rescales what came before and stores P again.
  static constexpr float kBaseSlack = 8.f;

  __device__ void key_group_sync() const {
    static_assert(kBarrierKeyGroup1 == kBarrierKeyGroup0 + 1 && Tr::kKeyGroups == 2);
    static_assert(kThreads / Tr::kKeyGroups / kLoadThreadsPerRow == Tr::kKeyGroupTiles * fragment::kN,
                  "a key group's threads load its keys' rows");
    ptx::named_barrier(kBarrierKeyGroup0 + key_group, kThreads / Tr::kKeyGroups);
  }

  // What a row's P is taken against: its base, or 0 while it has seen no key (exp2 then gives 0, not NaN).
  __device__ static float use_base(float base) { return base == -INFINITY ? 0.f : base; }

  // After C, when some score exceeded its row's base by more than the slack: every row's base becomes its
  // max so far (the bases and every score warp's s.row_max), the output and the sums so far are rescaled,
  // and this tile's P is stored again (and tile_sum taken again) against the new bases.
  __device__ void rebase(const Scores& sc, const ScoreRows& rows, int buffer, float (&base)[2], float (&row_sum)[2],
                         float (&tile_sum)[2], Output& acc) {
    static_assert(Tr::kOMTiles == 1 && kM == fragment::kM, "a thread's score rows are its output rows");
    float factor[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float m = base[h];
#pragma unroll
      for (int w = 0; w < Tr::kScoreWarps; ++w) {
        m = fmaxf(m, s.row_max[w][rows.row[h]]);
      }
      factor[h] = ptx::ex2(base[h] - use_base(m));
      base[h] = m;
      row_sum[h] *= factor[h];
      tile_sum[h] = 0.f;
    }
#pragma unroll
    for (int t = 0; t < Tr::kOutTiles; ++t) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc[0][t][e] *= factor[fragment::elem_half(e)];
      }
    }
    if (has_scores) {
      store_p(sc, rows, {use_base(base[0]), use_base(base[1])}, buffer, tile_sum);
    }
    __syncthreads();  // P is stored again
  }

  __device__ void run_split(const Piece& piece) {
    const int n_tiles = (piece.key_end - piece.key_begin + kKeys - 1) / kKeys;
    Places places;  // where the rows of the next tile to load lie
    begin_piece(piece, n_tiles, places);
    const ScoreRows rows = score_rows(piece);
    float row_sum[2] = {0.f, 0.f};           // this warp's share of the running sums of its rows
    float base[2] = {-INFINITY, -INFINITY};  // the rows' bases (log2 domain), the same in every warp
    Output acc;
    zero(acc);
    const Lanes l = lanes();
    __syncthreads();  // q is in shared memory
    QSteps q;         // the warp's q steps, for the whole piece (addressed as they are: the steps of
                      // l.q are a period's, and a run-time index into them would put l in local memory)
#pragma unroll
    for (int i = 0; i < fp8::kDimSteps; ++i) {
      const int ks = dim_group * fp8::kDimSteps + i;
      ptx::ldmatrix_x4(q[i], l.q_slice + RowLayout::offset(fragment::a_row(lane), 2 * ks + fragment::a_chunk(lane)));
    }
    const fp8::KeyLanes kl = fp8::key_lanes(lane, dim_group);  // lane offsets into the raw tiles
    bool bad_rows = false;                                     // some row this thread loaded had a block out of range
    float scale[2];                                            // of the rows' scores, for the whole piece
    row_scales(rows, scale);
    int stage = 0;                     // tile % kLoadStages, counted (a modulo by 3 costs a multiply a tile)
    int next_stage = kLoadStages - 1;  // (tile + kLoadStages - 1) % kLoadStages
    for (int tile = 0; tile < n_tiles; ++tile) {
      const int buffer = tile % 2;        // of P
      const uint8_t* raw = s.raw[stage];  // [kKeys, 576] (fp8::raw_slot)
      const uint32_t sk = ptx::smem_addr(raw);
      ptx::cp_async_wait<kLoadStages - 2>();  // the groups of the tiles after this one may be pending
      key_group_sync();                       // A
      // Tile tile + kLoadStages - 1 goes to the stage tile - 1 leaves at C. Its addresses are found here,
      // without branches, so that ptxas can interleave them with phase 0's products; its copies are spread
      // over the k16 steps of phase 4 (issued at once, they queue before the phase's shared-memory loads);
      // past the piece's end they copy nothing (zero fill). The places of the tile after it are read a tile
      // ahead.
      const int next = tile + kLoadStages - 1;
      const RawCopy copy = raw_copy(piece.key_begin + next * kKeys, piece.key_end, next_stage, places, bad_rows);
      partial_scores(sk, kl, q);
      if (next + 1 < n_tiles) {
        fetch_places(piece.seq, piece.key_begin + (next + 1) * kKeys, piece.key_end, places);
      }
      key_group_sync();  // B
      Scores sc;
      float tile_max[2];
      float tile_sum[2] = {0.f, 0.f};
      bool raise = false;
      if (has_scores) {
        scores(sk, piece.key_begin + tile * kKeys, rows, scale, l, sc, tile_max);
        raise = tile_max[0] > base[0] + kBaseSlack || tile_max[1] > base[1] + kBaseSlack;
        store_p(sc, rows, {use_base(base[0]), use_base(base[1])}, buffer, tile_sum);
      }
      const bool rebases = __syncthreads_or(raise);  // C
      if (rebases) {
        rebase(sc, rows, buffer, base, row_sum, tile_sum, acc);
      }
      row_sum[0] += tile_sum[0];
      row_sum[1] += tile_sum[1];
      accumulate_pv_fp8(raw, l, buffer, acc, [&](auto kk) {
        constexpr int kSteps = kKeys / fragment::kK;
        copy.template issue<decltype(kk)::value * kRawCopies / kSteps,
                            (decltype(kk)::value + 1) * kRawCopies / kSteps>();
      });
      ptx::cp_async_commit();
      next_stage = stage;
      stage = stage + 1 == kLoadStages ? 0 : stage + 1;
    }
    ptx::cp_async_wait<0>();
    if (bad_rows) {
      s.bad_page = 1;  // before finish_rows' barrier
    }
    finish_rows(piece, rows, row_sum, acc, [&](int, int h) { return base[h]; });
  }

  // Row `row` of the CTA (this thread's half h of an m16 tile): out = acc / sum, lse = max * ln 2 + ln(sum)
  // (the max is in the log2 domain); a row with no key: out 0 and lse +inf (final) or -inf (partial); a bad
  // sequence: NaN. `writes_lse`: this thread writes the row's lse.
  template <int kOutTiles>
  __device__ void write_row(const Piece& piece, bool bad, int row, bool writes_lse, float row_max, float total,
                            const float (&acc)[kOutTiles][4], int h) {
    const int packed = m_tile * kM + row;
    if (packed >= p.rows) {
      return;
    }
    const int col_base = o_n * Tr::kColsPerWarp;
    const int i = packed / p.group;
    const int head = kv_head * p.group + packed % p.group;
    const bool empty = total == 0.f;
    // v = fp8 * k_scale: the scale of fp8_per_tensor values comes in here, in fp32.
    const float inv = bad ? NAN : (empty ? 0.f : (Tr::kFormat == CacheFormat::fp8_per_tensor ? k_scale : 1.f) / total);
    const float lse =
        bad ? NAN
            : (empty ? (piece.slot < 0 ? INFINITY : -INFINITY) : row_max * std::numbers::ln2_v<float> + logf(total));
    if constexpr (kFp8Fragments) {
      write_row_fp8(piece, i, head, writes_lse, inv, lse, acc, h);
      return;
    }
    if (piece.slot < 0) {
      auto* out =
          static_cast<T*>(p.out) + piece.seq * p.out_stride_b + i * p.out_stride_s + head * p.out_stride_h;  // [kDV]
#pragma unroll
      for (int t = 0; t < kOutTiles; ++t) {
        const int col = col_base + t * fragment::kN + fragment::acc_col(lane);
        *reinterpret_cast<uint32_t*>(out + col) = pack2<T>(acc[t][2 * h] * inv, acc[t][2 * h + 1] * inv);
      }
      if (writes_lse) {
        p.lse[piece.seq * p.lse_stride_b + head * p.lse_stride_h + i * p.lse_stride_s] = lse;
      }
    } else {
      const int64_t slot_row = (piece.slot * p.s_q + i) * p.h_q + head;
      float* out = p.partial_out + slot_row * cuda::kDV;  // [kDV]
#pragma unroll
      for (int t = 0; t < kOutTiles; ++t) {
        const int col = col_base + t * fragment::kN + fragment::acc_col(lane);
        *reinterpret_cast<float2*>(out + col) = make_float2(acc[t][2 * h] * inv, acc[t][2 * h + 1] * inv);
      }
      if (writes_lse) {
        p.partial_lse[slot_row] = lse;
      }
    }
  }

  // write_row's stores on a per-tensor cache, whose accumulators hold dims in fp8_fragments' order:
  // this thread's 16 values of the row are the contiguous dims col_base + fp8::output_dim(lane, 0, 0)
  // on, written 8 (out) or 16 (partial) bytes at a time.
  template <int kOutTiles>
  __device__ void write_row_fp8(const Piece& piece, int i, int head, bool writes_lse, float inv, float lse,
                                const float (&acc)[kOutTiles][4], int h) const {
    const int dim0 = o_n * Tr::kColsPerWarp + fp8::output_dim(lane, 0, 0);
    float v[2 * kOutTiles];  // v[8 j + t]: dim dim0 + 8 j + t
#pragma unroll
    for (int t = 0; t < kOutTiles; ++t) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        v[kOutTiles * j + t] = acc[t][2 * h + j] * inv;
      }
    }
    if (piece.slot < 0) {
      auto* out = static_cast<T*>(p.out) + piece.seq * p.out_stride_b + i * p.out_stride_s + head * p.out_stride_h +
                  dim0;  // [16] of the row's kDV
#pragma unroll
      for (int q4 = 0; q4 < kOutTiles / 2; ++q4) {  // out rows are 8-byte aligned
        *reinterpret_cast<uint2*>(out + 4 * q4) =
            make_uint2(pack2<T>(v[4 * q4], v[4 * q4 + 1]), pack2<T>(v[4 * q4 + 2], v[4 * q4 + 3]));
      }
      if (writes_lse) {
        p.lse[piece.seq * p.lse_stride_b + head * p.lse_stride_h + i * p.lse_stride_s] = lse;
      }
    } else {
      const int64_t slot_row = (piece.slot * p.s_q + i) * p.h_q + head;
      float* out = p.partial_out + slot_row * cuda::kDV + dim0;  // [16] of the row's kDV
#pragma unroll
      for (int q4 = 0; q4 < kOutTiles / 2; ++q4) {
        *reinterpret_cast<float4*>(out + 4 * q4) = make_float4(v[4 * q4], v[4 * q4 + 1], v[4 * q4 + 2], v[4 * q4 + 3]);
      }
      if (writes_lse) {
        p.partial_lse[slot_row] = lse;
      }
    }
  }
};
template <class Tr>
__global__ void __launch_bounds__(kThreads, 1) decode_kernel(const __grid_constant__ cuda::DecodeParams p) {
  extern __shared__ __align__(128) char smem[];
  auto& s = *reinterpret_cast<typename Tr::Shared*>(smem);

  Cta<Tr> cta{p, s, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.z)};
  cuda::for_each_piece(p, blockIdx.y, [&](const Piece& piece) { cta.run(piece); });
  ptx::launch_dependents();  // the combine kernel may start launching
}

}  // namespace openmla::portable
