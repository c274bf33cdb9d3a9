#pragma once
// The transposed schedule of the Hopper kernel on an FP8 cache with more than kFp8Rows packed query rows
// per KV head (OPENMLA_SM90_FP8_WIDE=transposed; docs/hopper-kernel.md). Both products are the narrow
// schedule's, transposed, with the m-tile's 64 query rows as wgmma's N, and take the cache operand from
// registers, converted from the raw e4m3 bytes TMA copied (fp8_fragments.cuh, transposed_fragments.cuh):
//   S^T [64 keys, 64 rows]  = K [64 keys, 576] . Q^T           36 wgmma m64n64k16, K from registers
//   O^T [256 dims, 64 rows] += V^T [256 dims, 64 keys] . P^T   4 m64 blocks x 4 k16 steps per warpgroup
// so no 16-bit copy of a tile is written or read, and no converter warpgroup is needed.
//
// Tile t of a piece is scored by warpgroup t % 2 (its scorer), and each warpgroup computes its half of
// the output dims for every tile, in order. Tile n of the CTA (over all its pieces) lies in stage n % 3;
// each warpgroup's first thread issues its own tiles' loads, tile t + 2 once every warp is done with
// tile t - 1 (the stage's empty barrier), and asks L2 for tile t + 4. Warpgroup w, per own tile t:
//   wait full; S^T (t)
//   the other warpgroup's tile t - 1: wait kStoredP; O^T *= its factors (only if a base moved); O^T += V^T P^T
//   scale, mask; each row's exponent base (a lazy one: moved only when a score exceeds it by more than
//     kRescaleThreshold, then to the tile's max; the warps' flags meet at the warpgroup's barrier)
//   P^T (t) stored, the row sums rescaled and added; arrive kStoredP (P, the bases, the factors)
//   issue tile t + 2; O^T *= factors (only if moved); O^T += V^T P^T (t)
// The other warpgroup reads the bases after tile t only after kStoredP of tile t, and its reads of the
// earlier ones come before its own kStoredP that this warpgroup waits for before writing them again, so
// one buffer per scorer holds P, the bases and the factors. At the end of a piece each warpgroup writes
// its 256 dims of every row from registers (no exchange), with the row sums of both.

#include <cuda.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../common/ptx/barrier.cuh"
#include "../common/ptx/fence.cuh"
#include "../common/ptx/mbarrier.cuh"
#include "../common/ptx/tma.cuh"
#include "../common/row_result.cuh"
#include "../common/walk.cuh"
#include "fp8_fragments.cuh"
#include "layout.cuh"
#include "openmla/decode.h"
#include "piece.cuh"
#include "traits.h"
#include "transposed_fragments.cuh"

namespace openmla::sm90 {

template <typename T, CacheFormat kFormat>
struct TransposedCta {
  static_assert(kFormat != CacheFormat::plain, "the transposed schedule reads FP8 caches");
  static constexpr bool kScaled = kFormat == CacheFormat::fp8_656;
  static constexpr int kBytes = fp8::kTokenBytes<kFormat>;
  static constexpr int kStageBytes = kBlockN * kBytes;
  using Shared = typename Traits<T>::template TransposedShared<kStageBytes>;
  static constexpr int kRegs = kBlockM / 2;  // fp32 of one m64n64 accumulator per thread
  static constexpr int kCols = kBlockM / 4;  // query rows (accumulator columns) of a thread
  static constexpr int kBlocks = fp8::kHalfBlocks;
  static constexpr int kQBatchRows = 4;  // q rows a warp loads at once (fp8::load_q_fp8)
  static constexpr int kWarpsHere = kWarpgroupThreads / 32;

  const cuda::DecodeParams& p;
  const CUtensorMap* cache_map;  // boxes of 64 raw tokens (sm90/launch.h make_fp8_cache_map)
  Shared& s;
  int m_tile;
  int kv_head;
  int warpgroup = static_cast<int>(threadIdx.x) / kWarpgroupThreads;
  int wg_thread = static_cast<int>(threadIdx.x) % kWarpgroupThreads;
  int warp = wg_thread / 32;  // within the warpgroup
  int lane = static_cast<int>(threadIdx.x) % 32;
  uint32_t tiles_done = 0;  // tiles computed in earlier pieces
  float score_scale = 0.f;  // scores to the log2 domain: softmax scale (x k_scale per tensor)
  float out_scale = 1.f;    // of the output rows: k_scale per tensor, else 1
  // State of the issuing threads (each warpgroup's first) only.
  uint64_t policy = 0;     // L2 evict-first: the cache is streamed once
  int32_t next_block = 0;  // cache block of the warpgroup's next tile to issue
  int32_t after_next = 0;  // ... of its tile after that, asked of L2 when the next one is prepared
  int32_t fetched = 0;     // ... of the tile after that, read when the next one is prepared
  int next_token = 0;      // the page slot of the next tile's first key (its TMA token coordinate)

  // Query row (accumulator column) of the thread's column slot c, and the register of slot c in key
  // half h (layout.cuh slot_col, slot_reg).
  __device__ int col_of(int c) const { return slot_col(wg_thread, c); }
  static constexpr int reg(int c, int h) { return slot_reg(c, h); }

  __device__ void init() {
    fp8::log2_scales<kFormat == CacheFormat::fp8_per_tensor>(p, score_scale, out_scale);
    if (threadIdx.x == 0) {
      for (int stage = 0; stage < kTransposedStages; ++stage) {
        ptx::mbarrier_init(ptx::smem_addr(&s.full[stage]), 1);
        ptx::mbarrier_init(ptx::smem_addr(&s.empty[stage]), kStageReaders);
      }
      ptx::fence_mbarrier_init();
    }
    if (wg_thread == 0) {
      ptx::prefetch_tensormap(cache_map);
      policy = ptx::create_policy_evict_first();
    }
    __syncthreads();
  }

  // ---- issuing threads --------------------------------------------------------------------------------

  __device__ uint32_t stage_of(int t) const { return (tiles_done + t) % kTransposedStages; }
  __device__ uint32_t phase_of(int t) const { return (tiles_done + t) / kTransposedStages % 2; }
  __device__ const uint8_t* stage_data(uint32_t stage) const { return &s.kv[stage][0]; }

  __device__ int32_t fetch_block(const Piece& piece, int t) const {
    return cache_block(p, piece, piece.key_begin + t * kBlockN);
  }

  // Loads tile t of the piece (cache block `block`) into its stage (load_tile: a bad block marks the
  // warpgroup's bad_page instead).
  __device__ void issue(const Piece& piece, int t, int32_t block) {
    const uint32_t stage = stage_of(t);
    load_tile<kStageBytes, 4>(p, cache_map, ptx::smem_addr(&s.kv[stage][0]), ptx::smem_addr(&s.full[stage]),
                              piece.key_begin + t * kBlockN, kv_head, block, policy, s.bad_page[warpgroup]);
  }

  // Asks L2 for tile t's raw bytes (nothing for a block out of range), two of the warpgroup's tiles
  // before its load: a load can start only once the stage three tiles back is free, too late for a DRAM
  // round trip before its scores.
  __device__ void prefetch(const Piece& piece, int t, int32_t block) const {
    if (block >= 0 && block < p.num_blocks) {
      ptx::tma_prefetch_l2_4d(cache_map, 0, page_token(p, piece.key_begin + t * kBlockN), kv_head, block);
    }
  }

  // The first loads of a piece: tiles 0 and 2 (warpgroup 0) and 1 (warpgroup 1), their blocks and those
  // of the warpgroup's next two tiles read together; the next one is asked of L2.
  __device__ void issue_first(const Piece& piece, int n_tiles) {
    if (wg_thread != 0) {
      return;
    }
    s.bad_page[warpgroup] = 0;
    const int count = warpgroup == 0 ? 2 : 1;  // tiles issued now
    int32_t blocks[4];                         // of tiles warpgroup + 2 k
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int t = warpgroup + 2 * k;
      blocks[k] = t < n_tiles ? fetch_block(piece, t) : 0;
    }
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int t = warpgroup + 2 * k;
      if (k < count && t < n_tiles) {
        issue(piece, t, blocks[k]);
      }
    }
    const int next = warpgroup + 2 * count;
    next_block = count == 2 ? blocks[2] : blocks[1];
    after_next = count == 2 ? blocks[3] : blocks[2];
    if (next < n_tiles) {
      prefetch(piece, next, next_block);
    }
  }

  // In own tile t's step (t >= 1), while its score products retire: tile t + 4 asked of L2, the block of
  // tile t + 6 read, the token coordinate of tile t + 2 found, so that issue_ahead has only the load left.
  __device__ void prepare_ahead(const Piece& piece, int t, int n_tiles) {
    const int u = t + 2;
    if (wg_thread != 0 || t < 1 || u >= n_tiles) {
      return;
    }
    if (u + 2 < n_tiles) {
      prefetch(piece, u + 2, after_next);
    }
    fetched = u + 4 < n_tiles ? fetch_block(piece, u + 4) : 0;
    next_token = page_token(p, piece.key_begin + u * kBlockN);
  }

  // Then tile t + 2 into the stage of tile t - 1, once every warp released it (load_tile_at: a bad block
  // marks the warpgroup's bad_page instead).
  __device__ void issue_ahead(int t, int n_tiles) {
    const int u = t + 2;
    if (wg_thread != 0 || t < 1 || u >= n_tiles) {
      return;
    }
    const uint32_t stage = stage_of(u);  // that of tile t - 1
    ptx::mbarrier_wait(ptx::smem_addr(&s.empty[stage]), phase_of(t - 1));
    load_tile_at<kStageBytes, 4>(
        p, cache_map, ptx::smem_addr(&s.kv[stage][0]), ptx::smem_addr(&s.full[stage]), [&] { return next_token; },
        kv_head, next_block, policy, s.bad_page[warpgroup]);
    next_block = after_next;
    after_next = fetched;
  }

  // ---- a warpgroup's steps ------------------------------------------------------------------------------

  // The barrier of this warpgroup's 128 threads.
  __device__ void sync_warpgroup() const { ptx::bar_sync(kLocal0 + warpgroup, kWarpgroupThreads); }

  // Zeroes tokens [valid, 64) of the stage (values and 656-byte scales): slots past the sequence's end may
  // hold NaN bytes, and P = 0 times NaN would still reach the output. After the scorer's barrier that
  // follows its score products; its P store's proxy fence orders these writes before the stage's next
  // load, its kStoredP arrival before the other warpgroup's reads.
  __device__ void zero_tail(uint32_t stage, int valid) {
    uint8_t* kv = &s.kv[stage][0];
    for (int x = valid * kBytes / 16 + wg_thread; x < kBlockN * kBytes / 16; x += kWarpgroupThreads) {
      *reinterpret_cast<uint4*>(kv + x * 16) = make_uint4(0, 0, 0, 0);
    }
  }

  // Tile u's output product for this warpgroup's dims. `moved`: some row's base moved at tile u (the
  // factors are in s.factor[u % 2]). The other warpgroup's tile is waited for first (kStoredP).
  __device__ void product(int u, bool own, bool moved, float (&o)[kBlocks][kRegs], int& value_exponent) {
    const int scorer = u % 2;
    if (!own) {
      ptx::bar_sync(kStoredP0 + scorer, kThreads);
      moved = s.moved[scorer] != 0;
    }
    if (moved) {
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        const float f = s.factor[scorer][col_of(c)];
#pragma unroll
        for (int mb = 0; mb < kBlocks; ++mb) {
          o[mb][reg(c, 0)] *= f;
          o[mb][reg(c, 1)] *= f;
        }
      }
    }
    const uint32_t stage = stage_of(u);
    fp8::accumulate_half<kFormat>(stage_data(stage), ptx::smem_addr(&s.p[scorer][0]), warpgroup, warp, lane / 4,
                                  lane % 4, o, value_exponent);
    if (lane == 0) {
      ptx::mbarrier_arrive(ptx::smem_addr(&s.empty[stage]));
    }
  }

  // Own tile t after its scores sc: masks and scales them, moves the rows' bases where needed (the warps'
  // flags meet at the warpgroup's barrier), stores P^T, rescales and adds to the thread's row sums, and
  // hands P, the bases and the factors to the other warpgroup. Returns whether a base moved.
  __device__ bool softmax(const Piece& piece, int t, int mask_from, float (&sc)[kRegs], float (&sum)[2]) {
    const int w = warpgroup;
    const int key0 = piece.key_begin + t * kBlockN;
    const int key_row = fragment_row(wg_thread);
    if (key0 + kBlockN > piece.key_end) {
      sync_warpgroup();  // every warp's score products retired
      zero_tail(stage_of(t), piece.key_end - key0);
    }
    const bool masked = key0 + kBlockN > mask_from;
    // Every shared-memory value below is loaded whatever the flags, and chosen by a select: a load under a
    // branch waits out its latency slot by slot.
    bool flag = false;
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int r = col_of(c);
      const float scale = s.row_scale[r];
      const int limit = s.limit[r];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float v = sc[reg(c, h)] * scale;
        sc[reg(c, h)] = masked && key0 + key_row + 8 * h >= limit ? -INFINITY : v;  // a masked NaN never counts
      }
      const float before = ptx::select(t == 0, -INFINITY, s.base[1 - w][r]);            // -inf: the row has seen no key
      flag = flag || fmaxf(sc[reg(c, 0)], sc[reg(c, 1)]) > before + kRescaleThreshold;  // NaN: never
    }
    flag = __any_sync(0xffffffffu, flag);
    const int parity = t / 2 % 2;
    if (lane == 0) {
      s.rescale[w][parity][warp] = flag ? 1 : 0;
    }
    sync_warpgroup();  // the flags (and a tail's zeroed tokens) are stored
    const int4 flags = *reinterpret_cast<const int4*>(&s.rescale[w][parity][0]);
    const bool moved = (flags.x | flags.y | flags.z | flags.w) != 0;
    if (moved) {  // a piece's first tile, then rarely: the bases go to the rows' max so far
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        float max = fmaxf(sc[reg(c, 0)], sc[reg(c, 1)]);
#pragma unroll
        for (int offset = 4; offset < 32; offset *= 2) {
          max = fmaxf(max, __shfl_xor_sync(0xffffffffu, max, offset));
        }
        if (lane < 4) {
          s.red[w][warp][col_of(c)] = max;
        }
      }
      sync_warpgroup();  // the warps' row maxes are stored
      if (wg_thread < kBlockM) {
        const int r = wg_thread;
        const float before = t == 0 ? -INFINITY : s.base[1 - w][r];
        float max = before;
#pragma unroll
        for (int k = 0; k < kWarpsHere; ++k) {
          max = fmaxf(max, s.red[w][k][r]);
        }
        s.base[w][r] = max;
        s.factor[w][r] = ptx::ex2(before - (max == -INFINITY ? 0.f : max));  // 0 from a base of -inf
      }
      sync_warpgroup();  // the new bases and factors are stored
    } else if (wg_thread < kBlockM) {
      s.base[w][wg_thread] = t == 0 ? -INFINITY : s.base[1 - w][wg_thread];
    }
    if (wg_thread == 0) {
      s.moved[w] = moved ? 1 : 0;
    }
    char* sp = reinterpret_cast<char*>(&s.p[w][0]);
    const int position = 16 * warp + 2 * (lane / 4);  // keys key_row and key_row + 8 (half_key_position)
    // The rows' bases after this tile: while the other warpgroup waits for this one's kStoredP, the bases
    // before it still stand where it left them; none yet on a piece's first tile that moved none.
    // All of them are loaded before the first store of P, which the compiler cannot tell apart from them.
    const float* bases = moved ? &s.base[w][0] : &s.base[1 - w][0];
    const bool none = t == 0 && !moved;
    float part[kCols];  // the rows' bases, then the thread's sum of each row's P: its two keys
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      part[c] = bases[col_of(c)];
    }
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const float base = ptx::select(none, -INFINITY, part[c]);
      const float use = base == -INFINITY ? 0.f : base;  // a row that has seen no key: 2^-inf = 0
      const float p0 = ptx::ex2(sc[reg(c, 0)] - use);
      const float p1 = ptx::ex2(sc[reg(c, 1)] - use);
      part[c] = p0 + p1;
      // Rows 8 apart share the swizzle: 2 addresses and offsets of 1,024 bytes, not one per slot.
      *reinterpret_cast<uint32_t*>(sp + swizzled_offset(col_of(c % 2), position) + 1024 * (c / 2)) =
          pack2<__half>(p0, p1);
    }
    ptx::fence_proxy_async_shared();
    ptx::bar_arrive(kStoredP0 + w, kThreads);
    add_sums(t, moved, part, sum);
    return moved;
  }

  // The two query rows whose sums the thread keeps (column slots sum_slot() and + 1), after add_sums'
  // reduction over the 8 lanes of its quad column: slot bits 3, 2, 1 are the lane's bits 4, 3, 2.
  __device__ int sum_slot() const { return 8 * (lane >> 4 & 1) + 4 * (lane >> 3 & 1) + 2 * (lane >> 2 & 1); }

  // One step of add_sums' reduction: of slots [0, 2 kHalf), the lane keeps [kHalf, 2 kHalf) when its bit
  // log2(2 kHalf) is set, else [0, kHalf) (in part[0, kHalf)), adding its partner's values of them.
  template <int kHalf>
  __device__ __forceinline__ void halve_sums(float (&part)[kCols]) const {
    const bool upper = (lane & 2 * kHalf) != 0;
#pragma unroll
    for (int k = 0; k < kHalf; ++k) {
      const float send = ptx::select(upper, part[k], part[k + kHalf]);
      const float keep = ptx::select(upper, part[k + kHalf], part[k]);
      part[k] = keep + __shfl_xor_sync(0xffffffffu, send, 2 * kHalf);
    }
  }

  // Adds the warp's share of own tile t's P row sums (part: the thread's, per column slot) to the
  // thread's two rows' sums, which hold this warpgroup's tiles up to t - 2 against the bases before tile
  // t - 1: the factors of tiles t - 1 (the other warpgroup's, published with its P) and t (`moved`)
  // bring them to the bases after t first. A reduction over the 8 lanes that share a quad column leaves
  // each lane two of their 16 rows (sum_slot): 14 shuffles, where keeping all 16 rows' sums would hold 14
  // registers more through the tile loop.
  __device__ __forceinline__ void add_sums(int t, bool moved, float (&part)[kCols], float (&sum)[2]) const {
    halve_sums<8>(part);
    halve_sums<4>(part);
    halve_sums<2>(part);
    const int w = warpgroup;
    const bool before_moved = t >= 1 && s.moved[1 - w] != 0;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int r = col_of(sum_slot() + k);
      float f = 1.f;
      if (before_moved) {
        f *= s.factor[1 - w][r];
      }
      if (moved) {
        f *= s.factor[w][r];
      }
      sum[k] = sum[k] * f + part[k];
    }
  }

  // The warpgroup's steps of the piece: its own tiles t = w, w + 2, ... and the other warpgroup's output
  // products, every tile's in order.
  __device__ void tiles(const Piece& piece, int n_tiles, int mask_from, float (&sum)[2], float (&o)[kBlocks][kRegs],
                        int& value_exponent) {
    const uint32_t sq = ptx::smem_addr(&s.q[0][0]);
    for (int t = warpgroup; t <= n_tiles; t += kWarpgroups) {
      const bool own = t < n_tiles;
      float sc[kRegs];
      if (own) {
        ptx::mbarrier_wait(ptx::smem_addr(&s.full[stage_of(t)]), phase_of(t));
        fp8::scores<T, kFormat, kBlockM>(stage_data(stage_of(t)), sq, fragment_row(wg_thread), wg_thread % 4, sc,
                                         [&] { prepare_ahead(piece, t, n_tiles); });
      }
      if (t >= 1) {
        product(t - 1, false, false, o, value_exponent);
      }
      if (!own) {
        break;
      }
      const bool moved = softmax(piece, t, mask_from, sc, sum);
      issue_ahead(t, n_tiles);
      product(t, true, moved, o, value_exponent);
    }
  }

  // ---- the end of a piece -----------------------------------------------------------------------------

  // Writes the thread's 8 dims [dim0, +8) of query row r (v[2 mb + h]): the final out row, or a split
  // piece's normalized partial in the workspace; lanes 0-3 of warpgroup 0's first warp (one thread per
  // row) also its lse.
  __device__ void write_row(const Piece& piece, int r, int dim0, const float (&v)[2 * kBlocks], float lse) const {
    const int packed = m_tile * kBlockM + r;
    if (packed >= p.rows) {
      return;
    }
    const int i = packed / p.group;
    const int head = kv_head * p.group + packed % p.group;
    const bool lse_writer = threadIdx.x < 4;
    if (piece.slot >= 0) {
      const int64_t slot_row = (piece.slot * p.s_q + i) * p.h_q + head;
      float* dst = p.partial_out + slot_row * cuda::kDV + dim0;  // [8] from the thread's first dim
      *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
      *reinterpret_cast<float4*>(dst + 4) = make_float4(v[4], v[5], v[6], v[7]);
      if (lse_writer) {
        p.partial_lse[slot_row] = lse;
      }
      return;
    }
    T* dst = static_cast<T*>(p.out) + piece.seq * p.out_stride_b + i * p.out_stride_s + head * p.out_stride_h +
             dim0;  // [8] from the thread's first dim; out rows are 8-byte aligned
    *reinterpret_cast<uint2*>(dst) = make_uint2(pack2<T>(v[0], v[1]), pack2<T>(v[2], v[3]));
    *reinterpret_cast<uint2*>(dst + 4) = make_uint2(pack2<T>(v[4], v[5]), pack2<T>(v[6], v[7]));
    if (lse_writer) {
      p.lse[piece.seq * p.lse_stride_b + head * p.lse_stride_h + i * p.lse_stride_s] = lse;
    }
  }

  __device__ void finish(const Piece& piece, int n_tiles, float (&sum)[2], const float (&o)[kBlocks][kRegs],
                         int value_exponent) {
    const int last = n_tiles - 1;
    // The warpgroup that did not score the last tile brings its sums to the bases after it.
    const bool last_moved = n_tiles > 0 && last % 2 != warpgroup && s.moved[last % 2] != 0;
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int r = col_of(sum_slot() + k);
      s.red[warpgroup][warp][r] = last_moved ? sum[k] * s.factor[last % 2][r] : sum[k];  // one lane per row
    }
    __syncthreads();  // both warpgroups' tiles are done and their row sums stored
    const bool bad = cuda::report_piece(piece, s.bad_page[0] | s.bad_page[1], [&] { return s.walk.status; });
    const float up = kScaled ? fp8::value_up(value_exponent) : 1.f;
    const int dim0 = fp8::half_dim(warpgroup, 0, fragment_row(wg_thread));
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int r = col_of(c);
      const float max = n_tiles > 0 ? s.base[last % 2][r] : -INFINITY;
      float total = 0.f;
#pragma unroll
      for (int g = 0; g < kWarpgroups; ++g) {
#pragma unroll
        for (int k = 0; k < kWarpsHere; ++k) {
          total += s.red[g][k][r];
        }
      }
      const cuda::RowResult result = cuda::row_result(bad, piece.slot >= 0, max == -INFINITY ? 0.f : max, total);
      const float inv = result.inv * out_scale * up;
      float v[2 * kBlocks];  // v[2 mb + h]: dim dim0 + 2 mb + h
#pragma unroll
      for (int mb = 0; mb < kBlocks; ++mb) {
        v[2 * mb] = o[mb][reg(c, 0)] * inv;
        v[2 * mb + 1] = o[mb][reg(c, 1)] * inv;
      }
      write_row(piece, r, dim0, v, result.lse);
    }
  }

  // ---- one piece ------------------------------------------------------------------------------------

  __device__ void run(const Piece& piece) {
    const int n_tiles = (piece.key_end - piece.key_begin + kBlockN - 1) / kBlockN;
    __syncthreads();  // every thread is done with the previous piece's shared memory
    const int s_k = p.seqlens[piece.seq * p.seqlens_stride];  // read first: its round trip overlaps q's
    prefetch_next_q<T, kBlockM, kThreads>(p, s.walk.walk, piece, m_tile, kv_head);  // into L2, for the next piece
    fp8::load_q_fp8<T, __half, kBlockM, true, kQBatchRows, kScaled>(p, piece.seq, m_tile, kv_head, s.q, s.q_exponent,
                                                                    [&] { issue_first(piece, n_tiles); });
    __syncthreads();  // q and its row exponents are in shared memory, q visible to the async proxy
    if (threadIdx.x < kBlockM) {
      const int r = static_cast<int>(threadIdx.x);
      s.limit[r] = key_limit(p, s_k, m_tile * kBlockM + r, piece.key_end);
      s.row_scale[r] = score_scale * fp8::exp2i(s.q_exponent[r]);
    }
    // Tiles from which some row's limit may fall within them: row 0's limit is the least.
    const int first_limit = p.causal ? s_k - p.s_q + 1 : s_k;
    const int mask_from = first_limit < piece.key_end ? first_limit : piece.key_end;
    __syncthreads();            // the rows' limits and scales
    float sum[2] = {0.f, 0.f};  // its warp's share of two rows' sums (sum_slot): its keys of its warpgroup's tiles
    float o[kBlocks][kRegs];    // [256 dims, 64 rows] the warpgroup's half of O^T, m64 block by block
#pragma unroll
    for (int mb = 0; mb < kBlocks; ++mb) {
#pragma unroll
      for (int i = 0; i < kRegs; ++i) {
        o[mb][i] = 0.f;
      }
    }
    int value_exponent = fp8::kNoExponent;  // 656-byte tokens: the warp's rows of O^T hold O^T times 2^-it
    tiles(piece, n_tiles, mask_from, sum, o, value_exponent);
    tiles_done += n_tiles;
    finish(piece, n_tiles, sum, o, value_exponent);
  }
};

}  // namespace openmla::sm90
