#pragma once
// The seesaw consumer schedule of the Hopper kernel (kernel.cuh; OPENMLA_SM90_SCHEDULE=seesaw, a tuning
// switch: the asymmetric schedule is the default and measured faster on an H200): tiles in pairs (a, b),
// warpgroup 0 computes tile a's scores and warpgroup 1 tile b's, the rows' running max goes from one
// to the other through shared memory, and each warpgroup's half of the output (O_L = O[:, 0:256] in
// warpgroup 0, O_R = O[:, 256:512] in warpgroup 1) takes both tiles' P V, one P from its own registers
// and one from the other warpgroup through shared memory. Per pair, each warpgroup issues one score
// product and two half products, so one warpgroup's softmax always has the other's products queued.
//
// Per pair (stage 0 holds tile a, stage 1 tile b; S_a and S_b were computed at the end of the
// previous pair; bases are log2-domain row maxima):
//   warpgroup 0                                  warpgroup 1
//   base_a from S_a -> smem ─ kMaxA ───────────▶ base_b from base_a and S_b -> smem
//   P_a = exp2(S_a - base_a) in registers    ◀── kMaxB
//   O_L = O_L * scale_a + P_a V_a[L]  (RS)       P_b = exp2(S_b - base_b) -> p, registers ─ kPb ─┐
//   P_a * scale_b -> stage 0 chunk 8 ─ kPa ──┐   O_R = O_R * scale + P_b V_b[R]  (RS)            │
//   refill stage 0 low half                  └─▶ O_R += P_a V_a[R]  (SS)                         │
//   O_L = O_L * scale_b + P_b V_b[L]  (SS)  ◀───────────────────────────────────────────────────┘
//   refill stage 1 low half                      refill stage 1 high half, then stage 0 high half
//   S_a' of the next pair (low chunks first)     S_b' of the next pair (high chunks first)
// scale_a, scale_b and scale are the factors from the old base to the new one; they are exactly 1,
// and the rescale of O is skipped (a warp vote), unless a tile's max exceeds the base by more than
// kRescaleThreshold.
//
// Loads: each tile arrives in two halves, low (chunks 0-3) and high (chunks 4-8), one TMA box and one
// mbarrier full[stage][chunk] per chunk (1 arrival: the loader's arrive.expect_tx, plus the bytes), so
// that a score product starts on a half's first chunk while the rest lands: each chunk's wgmma are a
// commit group of their own behind the wait for it. A half is refilled with the next pair's tile by
// the warpgroup that reads it last, after every warp of that warpgroup retired its wgmma (a barrier of
// the warpgroup): warpgroup 0's first thread loads the low halves, warpgroup 1's first thread the high
// halves, so no empty barriers are needed. Stage s's loads are counted per stage: the parity of a
// load's phase is its count's (walk.h).
//
// Tiles whose keys reach past some row's limit (the piece's partial last tile, the last keys of
// causal rows) are walked first, the last tile first; the pairs after them have no mask code. With an
// odd tile count pair 0 is tile a alone (walk.h).

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../common/ptx/barrier.cuh"
#include "../common/ptx/fence.cuh"
#include "../common/ptx/mbarrier.cuh"
#include "../common/ptx/stmatrix.cuh"
#include "../common/ptx/tma.cuh"
#include "../common/ptx/wgmma.cuh"
#include "../common/walk.cuh"
#include "layout.cuh"
#include "piece.cuh"
#include "traits.h"
#include "walk.h"

namespace openmla::sm90 {

inline constexpr int kKStepsPerChunk = kChunkCols / 16;  // k16 steps of Q K^T per chunk
inline constexpr int kRopeChunk = kChunks - 1;           // the chunk of stage 0 that carries P_a

template <typename T>
struct SeesawCta {
  using Shared = typename Traits<T>::SeesawShared;

  // The running softmax state of the thread's two rows.
  struct RowState {
    float base[2] = {-INFINITY, -INFINITY};  // exponent base (log2 domain) the warpgroup's O half is scaled to
    float sum[2] = {0.f, 0.f};               // this thread's share of the row sums, at the same base
    int limit[2];                            // keys below the limit are visible to the row
  };

  const cuda::DecodeParams& p;
  const CUtensorMap* chunk_map;  // boxes of 64 tokens x 1 chunk
  Shared& s;
  int m_tile;
  int kv_head;
  int warpgroup = static_cast<int>(threadIdx.x) / kWarpgroupThreads;
  // Parities of the loads of stage 0 (bit 0) and stage 1 (bit 1) consumed in earlier pieces.
  uint32_t phases = 0;

  // The thread's index in its warpgroup and its accumulator rows (row0 and row0 + 8), from
  // fresh_thread_index() wherever they are used: the pair loop then computes what it needs from them
  // instead of holding thread-dependent indices and addresses in registers across the loop, which
  // spilled them at 255 registers.
  __device__ static int wg_thread() { return fresh_thread_index() % kWarpgroupThreads; }
  __device__ static int row0() { return fragment_row(wg_thread()); }

  __device__ void init() {
    if (threadIdx.x == 0) {
      for (int stage = 0; stage < kStages; ++stage) {
        for (int chunk = 0; chunk < kChunks; ++chunk) {
          ptx::mbarrier_init(ptx::smem_addr(&s.full[stage][chunk]), 1);
        }
      }
      ptx::fence_mbarrier_init();
    }
    if (wg_thread() == 0) {
      ptx::prefetch_tensormap(chunk_map);
    }
    __syncthreads();
  }

  // ---- loads (the first thread of each warpgroup) ----------------------------------------------------

  // Loads half kHalf (0: chunks 0-3, 1: chunks 4-8) of the tile of keys [key0, key0 + 64), in cache
  // block `block`, into `stage`, one box per chunk. A block outside [0, num_blocks) is never read: each
  // chunk's barrier gets a plain arrival (no bytes), the consumers run on over stale data, and the
  // piece is written as NaN (the low half's loader records it: both halves see the same block).
  template <int kHalf>
  __device__ void load(int stage, int key0, int32_t block) {
    constexpr int kFirst = kHalf == 0 ? 0 : kLowChunks;
    constexpr int kEnd = kHalf == 0 ? kLowChunks : kChunks;
    if (block < 0 || block >= p.num_blocks) {
      if (kHalf == 0) {
        s.bad_page = 1;
      }
#pragma unroll
      for (int chunk = kFirst; chunk < kEnd; ++chunk) {
        ptx::mbarrier_arrive(ptx::smem_addr(&s.full[stage][chunk]));
      }
      return;
    }
    const int token = page_token(p, key0);
    const uint64_t policy = ptx::create_policy_evict_first();  // the cache is streamed once
#pragma unroll
    for (int chunk = kFirst; chunk < kEnd; ++chunk) {
      const uint32_t full = ptx::smem_addr(&s.full[stage][chunk]);
      ptx::mbarrier_arrive_expect_tx(full, kChunkBytes);
      ptx::tma_load_5d(ptx::smem_addr(&s.kv[stage][chunk][0]), chunk_map, 0, token, chunk, kv_head, block, full,
                       policy);
    }
  }

  // The first loads of a piece: pair 0's tile a into stage 0 and its tile b into stage 1, or, when pair
  // 0 is a single tile, pair 1's tile b (stage 1 is not used by pair 0).
  template <int kHalf>
  __device__ void load_first(const Piece& piece, const Walk& w) {
    if (w.tiles > 0) {
      load<kHalf>(0, w.key0(0), cache_block(p, piece, w.key0(0)));
    }
    if (w.first_b() < w.tiles) {
      load<kHalf>(1, w.key0(w.first_b()), cache_block(p, piece, w.key0(w.first_b())));
    }
  }

  // Waits for chunks [kFirst, kFirst + kCount) of the tile that pair k consumes from `stage`.
  template <int kFirst, int kCount>
  __device__ void wait_full(int stage, const Walk& w, int k) const {
    const uint32_t parity = w.parity(phases, stage, k);
#pragma unroll
    for (int chunk = kFirst; chunk < kFirst + kCount; ++chunk) {
      ptx::mbarrier_wait(ptx::smem_addr(&s.full[stage][chunk]), parity);
    }
  }

  // ---- products ------------------------------------------------------------------------------------

  // Issues sc (+)= Q K^T over chunks [kFirst, kFirst + kCount) of the tile pair k consumes from
  // `stage`, each chunk's wgmma a commit group behind the wait for its bytes (a wgmma.fence after each
  // wait, or ptxas serializes the products); kFresh: the first of them overwrites sc.
  template <int kFirst, int kCount, bool kFresh>
  __device__ void issue_scores(int stage, const Walk& w, int k, float (&sc)[kScoreRegisters]) const {
    const uint64_t q_desc = k_major_desc(ptx::smem_addr(&s.q[0][0]));
    const uint64_t k_desc = k_major_desc(ptx::smem_addr(&s.kv[stage][0][0]));
    const uint32_t parity = w.parity(phases, stage, k);
#pragma unroll
    for (int chunk = kFirst; chunk < kFirst + kCount; ++chunk) {
      ptx::mbarrier_wait(ptx::smem_addr(&s.full[stage][chunk]), parity);
      ptx::wgmma_fence();
#pragma unroll
      for (int ks = chunk * kKStepsPerChunk; ks < (chunk + 1) * kKStepsPerChunk; ++ks) {
        const uint32_t offset = chunk * kChunkBytes + ks % kKStepsPerChunk * 32;
        ptx::wgmma_m64n64k16_ss<T>(sc, ptx::smem_desc_advance(q_desc, offset), ptx::smem_desc_advance(k_desc, offset),
                                   !kFresh || ks > kFirst * kKStepsPerChunk);
      }
      ptx::wgmma_commit();
    }
  }

  // Issues o += P V, P from registers and V MN-major from the 4 chunks at shared address v.
  __device__ void issue_values(float (&o)[kAccumulators], const uint32_t (&pf)[kKSteps][4], uint32_t v) const {
    const uint64_t v_desc = mn_major_desc(v);
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      ptx::wgmma_m64n256k16_rs<T, 1>(o, pf[kk], ptx::smem_desc_advance(v_desc, kk * 16 * kRowBytes));
    }
  }

  // Issues o += P V, P K-major from the swizzled chunk at sp.
  __device__ void issue_values(float (&o)[kAccumulators], uint32_t sp, uint32_t v) const {
    const uint64_t p_desc = k_major_desc(sp);
    const uint64_t v_desc = mn_major_desc(v);
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      ptx::wgmma_m64n256k16_ss<T, 1>(o, ptx::smem_desc_advance(p_desc, kk * 32),
                                     ptx::smem_desc_advance(v_desc, kk * 16 * kRowBytes));
    }
  }

  // ---- softmax -------------------------------------------------------------------------------------

  // Scales the tile's scores (keys from key0) into the log2 domain, masks them by select when
  // kMasked (a NaN score of a key past a row's limit never reaches P) and returns each row's max.
  template <bool kMasked>
  __device__ void tile_max(float (&sc)[kScoreRegisters], int key0, const int (&limit)[2], float (&max)[2]) const {
    max[0] = -INFINITY;
    max[1] = -INFINITY;
#pragma unroll
    for (int j = 0; j < kScoreRegisters / 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float v = sc[4 * j + e] * p.scale_log2;
        if constexpr (kMasked) {
          const int key = key0 + 8 * j + fragment_col(wg_thread()) + e % 2;
          v = key >= limit[e / 2] ? -INFINITY : v;
        }
        sc[4 * j + e] = v;
        max[e / 2] = fmaxf(max[e / 2], v);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      max[h] = fmaxf(max[h], __shfl_xor_sync(0xffffffffu, max[h], 1));
      max[h] = fmaxf(max[h], __shfl_xor_sync(0xffffffffu, max[h], 2));
    }
  }

  // The row's exponent base after a tile whose max is tile_max: it moves only past the threshold.
  __device__ static float next_base(float base, float tile_max) {
    return tile_max > base + kRescaleThreshold ? tile_max : base;
  }

  // The factor from base `from` to base `to` (>= from): exactly 1 when the base did not move, and 0
  // from a row without any key yet (-inf).
  __device__ static float factor(float from, float to) { return from == to ? 1.f : ptx::ex2(from - to); }

  // sc = exp2(sc - base) and the rows' sums added to sum. A row that has seen no key keeps base -inf:
  // subtract 0 so that exp2 gives 0, not NaN.
  __device__ static void exponentiate(float (&sc)[kScoreRegisters], const float (&base)[2], float (&sum)[2]) {
    float use[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      use[h] = base[h] == -INFINITY ? 0.f : base[h];
    }
#pragma unroll
    for (int j = 0; j < kScoreRegisters / 4; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        sc[4 * j + e] = ptx::ex2(sc[4 * j + e] - use[e / 2]);
        sum[e / 2] += sc[4 * j + e];
      }
    }
  }

  // P as the A fragments of P V: pf[kk] holds keys [16 kk, 16 kk + 16) (layout.cuh pack2).
  __device__ static void pack(const float (&sc)[kScoreRegisters], uint32_t (&pf)[kKSteps][4]) {
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        pf[kk][i] = pack2<T>(sc[8 * kk + 2 * i], sc[8 * kk + 2 * i + 1]);
      }
    }
  }

  // The shared address this lane gives stmatrix for k step kk of a P chunk at `chunk` (1024-byte
  // aligned): the four 8 x 8 matrices of the step are pf[kk][0..3] = (rows +0 / +8 of the warp's 16) x
  // (keys 16 kk + 0 / + 8), and lane l addresses row l % 8 of matrix l / 8. Its swizzled 16-byte unit
  // is (2 kk + matrix / 2) ^ (row % 8), i.e. the lane's unit for kk = 0 with kk * 2 xor-ed in.
  __device__ static uint32_t p_address(uint32_t chunk, int kk) {
    const uint32_t tid = static_cast<uint32_t>(wg_thread());
    const uint32_t lane = tid % 32;
    const uint32_t matrix = lane / 8;
    const uint32_t row = 16 * (tid / 32) + 8 * (matrix % 2) + lane % 8;
    const uint32_t unit0 = (matrix / 2) ^ (lane % 8);
    return (chunk + row * kRowBytes + unit0 * 16) ^ (static_cast<uint32_t>(kk) << 5);
  }

  // The other warpgroup's product reads P from the swizzled chunk at `chunk`: pf as it is.
  __device__ void store_p(uint32_t chunk, const uint32_t (&pf)[kKSteps][4]) const {
    const uint32_t base = p_address(chunk, 0);
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      ptx::stmatrix_x4(base ^ (static_cast<uint32_t>(kk) << 5), pf[kk][0], pf[kk][1], pf[kk][2], pf[kk][3]);
    }
  }

  // Multiplies the warp's rows of the P chunk at `chunk` (stored by this warp with store_p) by their
  // factors, when a row of the warp needs it. P rounds twice then (to 16 bits, then times the
  // factor), which only happens when a base moved by more than kRescaleThreshold.
  __device__ void rescale_p(uint32_t chunk, const float (&factor)[2]) const {
    if (!__any_sync(0xffffffffu, factor[0] != 1.f || factor[1] != 1.f)) {
      return;
    }
    __syncwarp();  // the warp's stmatrix stores are visible to its ldmatrix loads
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      uint32_t r[4];
      ptx::ldmatrix_x4(r, p_address(chunk, kk));
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float2 v = unpack2<T>(r[i]);
        r[i] = pack2<T>(v.x * factor[i % 2], v.y * factor[i % 2]);
      }
      ptx::stmatrix_x4(p_address(chunk, kk), r[0], r[1], r[2], r[3]);
    }
  }

  // O *= factor per row, skipped when no row of the warp moved its base (a warp-uniform vote).
  __device__ static void rescale(float (&o)[kAccumulators], const float (&factor)[2]) {
    if (__any_sync(0xffffffffu, factor[0] != 1.f || factor[1] != 1.f)) {
      scale_rows(o, factor[0], factor[1]);
    }
  }

  // Zeroes rows [valid, 64) of this warpgroup's 4 V chunks of stage 0 (tile a): slots past the
  // piece's end may hold NaN, and P = 0 times NaN would still reach the output. Whole 128-byte rows,
  // so the swizzle does not matter. The caller made sure that the scores of tile a retired.
  template <int kWarpgroup>
  __device__ void zero_tail(int valid) {
    char* v = reinterpret_cast<char*>(&s.kv[0][kWarpgroup * kVChunksPerWarpgroup][0]);
    constexpr int kUnits = kVChunksPerWarpgroup * kChunkBytes / 16;
#pragma unroll 1
    for (int x = wg_thread(); x < kUnits; x += kWarpgroupThreads) {
      if (x / 8 % kBlockN >= valid) {
        *reinterpret_cast<uint4*>(v + x * 16) = make_uint4(0, 0, 0, 0);
      }
    }
    ptx::fence_proxy_async_shared();
    ptx::bar_sync(kWarpgroup == 0 ? kLocal0 : kLocal1, kWarpgroupThreads);
  }

  // ---- pairs ----------------------------------------------------------------------------------------

  // What a warpgroup needs to know about pair k beyond the walk: whether it has a tile b and a next
  // pair, and for the next pair its position a. The loaders also ask for the cache blocks of the next
  // pair's tiles, copied into next_block[warpgroup] asynchronously (no register holds them while the
  // pair's work hides the latency; next_block reads them).
  struct Pair {
    bool has_b;
    bool next;
    int next_a;
  };

  template <bool kMasked>
  __device__ Pair pair(const Piece& piece, const Walk& w, int k) const {
    Pair pr{!kMasked || w.has_b(k), k + 1 < w.pairs(), 0};
    if (pr.next) {
      pr.next_a = w.pos_a(k + 1);
      if (wg_thread() == 0) {
        ask_block(piece, w.key0(pr.next_a), 0);
        if (pr.has_b) {
          ask_block(piece, w.key0(pr.next_a + 1), 1);
        }
      }
    }
    return pr;
  }

  // The block-table entry of `key` (cache_block's) to next_block[warpgroup][slot], asynchronously.
  __device__ void ask_block(const Piece& piece, int key, int slot) const {
    ptx::cp_async_4(ptx::smem_addr(&s.next_block[warpgroup][slot]), block_entry(p, piece, key));
  }

  // The entry ask_block copied into `slot`.
  __device__ int32_t next_block(int slot) const {
    ptx::cp_async_wait_all();
    return s.next_block[warpgroup][slot];
  }

  // ---- warpgroup 0: tile a's scores, O_L -------------------------------------------------------------

  template <bool kMasked>
  __device__ void left_pair(const Piece& piece, const Walk& w, int k, float (&o)[kAccumulators],
                            float (&sc)[kScoreRegisters], RowState& row) {
    const Pair pr = pair<kMasked>(piece, w, k);
    const int key_a = w.key0(w.pos_a(k));
    const uint32_t kv_a = ptx::smem_addr(&s.kv[0][0][0]);
    const uint32_t kv_b = ptx::smem_addr(&s.kv[1][0][0]);

    // Tile a's base, published at once: warpgroup 1's softmax of tile b starts from it.
    float tile[2];
    tile_max<kMasked>(sc, key_a, row.limit, tile);
    float base_a[2];
    float scale_a[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      base_a[h] = next_base(row.base[h], tile[h]);
      scale_a[h] = factor(row.base[h], base_a[h]);
      row.sum[h] *= scale_a[h];
    }
    if (wg_thread() % 4 == 0) {
      s.base_a[row0()] = base_a[0];
      s.base_a[row0() + 8] = base_a[1];
    }
    ptx::bar_arrive(kMaxA, kThreads);

    // P_a into registers and, for warpgroup 1, into stage 0's RoPE chunk, which only the scores of
    // tile a read: after the barrier every warp's part of them retired.
    exponentiate(sc, base_a, row.sum);
    uint32_t pf[kKSteps][4];
    pack(sc, pf);
    ptx::bar_sync(kLocal0, kWarpgroupThreads);
    store_p(kv_a + kRopeChunk * kChunkBytes, pf);
    if (kMasked && piece.key_end - key_a < kBlockN) {
      zero_tail<0>(piece.key_end - key_a);
    }

    // O_L = O_L * scale_a + P_a V_a[:, 0:256], P_a from registers.
    rescale(o, scale_a);
    ptx::pin_registers(o);
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      ptx::pin_registers(pf[kk]);
    }
    ptx::wgmma_fence();
    issue_values(o, pf, kv_a);
    ptx::wgmma_commit();

    // Tile b's base: P_a in stage 0's RoPE chunk rescaled to it goes to warpgroup 1.
    ptx::bar_sync(kMaxB, kThreads);
    float scale_b[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float base_b = s.base_b[row0() + 8 * h];
      scale_b[h] = factor(base_a[h], base_b);
      row.base[h] = base_b;
      row.sum[h] *= scale_b[h];
    }
    rescale_p(kv_a + kRopeChunk * kChunkBytes, scale_b);
    ptx::fence_proxy_async_shared();
    ptx::bar_arrive(kPa, kThreads);
    ptx::wgmma_wait<0>();
    ptx::pin_registers(o);
    if (pr.next) {  // every warp of this warpgroup retired P_a V_a: stage 0's low half is free
      ptx::bar_sync(kLocal0, kWarpgroupThreads);
      if (wg_thread() == 0) {
        load<0>(0, w.key0(pr.next_a), next_block(0));
      }
    }

    // O_L = O_L * scale_b + P_b V_b[:, 0:256], P_b from warpgroup 1.
    ptx::bar_sync(kPb, kThreads);
    if (pr.has_b) {
      rescale(o, scale_b);
      wait_full<0, kLowChunks>(1, w, k);
      ptx::pin_registers(o);
      ptx::wgmma_fence();
      issue_values(o, ptx::smem_addr(s.p), kv_b);
      ptx::wgmma_commit();
      if (pr.next) {
        // Stage 1's low half refilled as soon as P_b V_b retired in every warp (warpgroup 1's next
        // scores wait for it), then the next pair's scores of tile a.
        ptx::wgmma_wait<0>();
        ptx::pin_registers(o);
        ptx::bar_sync(kLocal0, kWarpgroupThreads);
        if (wg_thread() == 0) {
          load<0>(1, w.key0(pr.next_a + 1), next_block(1));
        }
        issue_scores<0, kChunks, true>(0, w, k + 1, sc);
      }
      ptx::wgmma_wait<0>();
    } else if (pr.next) {  // stage 1 already holds the next tile b
      next_scores_a(w, k + 1, sc);
    }
    ptx::pin_registers(o);
    ptx::pin_registers(sc);
  }

  // The scores of pair k's tile a when nothing else is in flight: stage 0, chunks in order (the low
  // half is loaded first).
  __device__ void next_scores_a(const Walk& w, int k, float (&sc)[kScoreRegisters]) {
    issue_scores<0, kChunks, true>(0, w, k, sc);
    ptx::wgmma_wait<0>();
  }

  // ---- warpgroup 1: tile b's scores, O_R -------------------------------------------------------------

  template <bool kMasked>
  __device__ void right_pair(const Piece& piece, const Walk& w, int k, float (&o)[kAccumulators],
                             float (&sc)[kScoreRegisters], RowState& row) {
    const Pair pr = pair<kMasked>(piece, w, k);
    const int key_a = w.key0(w.pos_a(k));
    const uint32_t kv_a = ptx::smem_addr(&s.kv[0][0][0]);
    const uint32_t kv_b = ptx::smem_addr(&s.kv[1][0][0]);

    // Tile b's base from tile a's, published for warpgroup 0.
    float tile[2] = {-INFINITY, -INFINITY};
    if (pr.has_b) {
      tile_max<kMasked>(sc, w.key0(w.pos_a(k) + 1), row.limit, tile);
    }
    ptx::bar_sync(kMaxA, kThreads);
    float scale[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float base_b = next_base(s.base_a[row0() + 8 * h], tile[h]);
      scale[h] = factor(row.base[h], base_b);
      row.base[h] = base_b;
      row.sum[h] *= scale[h];
    }
    if (wg_thread() % 4 == 0) {
      s.base_b[row0()] = row.base[0];
      s.base_b[row0() + 8] = row.base[1];
    }
    ptx::bar_arrive(kMaxB, kThreads);

    // A partial tile a: its rows past the piece's end zeroed in this warpgroup's V chunks. Warpgroup 0's
    // scores of tile a retired before it arrived on kMaxA.
    if (kMasked && piece.key_end - key_a < kBlockN) {
      wait_full<kLowChunks, kVChunksPerWarpgroup>(0, w, k);
      zero_tail<1>(piece.key_end - key_a);
    }

    // P_b first: to warpgroup 0 through `p`, and from registers into O_R = O_R * scale + P_b V_b[:, 256:512].
    rescale(o, scale);
    if (pr.has_b) {
      uint32_t pf[kKSteps][4];
      exponentiate(sc, row.base, row.sum);
      pack(sc, pf);
      store_p(ptx::smem_addr(s.p), pf);
      ptx::fence_proxy_async_shared();
      ptx::bar_arrive(kPb, kThreads);
      ptx::pin_registers(o);
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        ptx::pin_registers(pf[kk]);
      }
      ptx::wgmma_fence();
      issue_values(o, pf, kv_b + kLowChunks * kChunkBytes);
      ptx::wgmma_commit();
    } else {  // stage 1 already holds the next tile b
      ptx::bar_arrive(kPb, kThreads);
    }

    // O_R += P_a V_a[:, 256:512], P_a from warpgroup 0 through stage 0's RoPE chunk.
    ptx::bar_sync(kPa, kThreads);
    wait_full<kLowChunks, kVChunksPerWarpgroup>(0, w, k);
    ptx::pin_registers(o);
    ptx::wgmma_fence();
    issue_values(o, kv_a + kRopeChunk * kChunkBytes, kv_a + kLowChunks * kChunkBytes);
    ptx::wgmma_commit();

    // Refill the high halves for the next pair, each once its last product retired in every warp of
    // this warpgroup: stage 1's (read first by the next scores) after P_b V_b, stage 0's after P_a V_a.
    if (pr.has_b) {
      ptx::wgmma_wait<1>();
      if (pr.next) {
        ptx::bar_sync(kLocal1, kWarpgroupThreads);
        if (wg_thread() == 0) {
          load<1>(1, w.key0(pr.next_a + 1), next_block(1));
        }
      }
    }
    ptx::wgmma_wait<0>();
    if (pr.next) {
      ptx::bar_sync(kLocal1, kWarpgroupThreads);
      if (wg_thread() == 0) {
        load<1>(0, w.key0(pr.next_a), next_block(0));
      }
    }
    ptx::pin_registers(o);
    if (pr.next) {
      next_scores_b(w, k + 1, sc);
    }
  }

  // The scores of pair k's tile b when nothing else is in flight: stage 1, high half first.
  __device__ void next_scores_b(const Walk& w, int k, float (&sc)[kScoreRegisters]) {
    issue_scores<kLowChunks, kHighChunks, true>(1, w, k, sc);
    issue_scores<0, kLowChunks, false>(1, w, k, sc);
    ptx::wgmma_wait<0>();
    ptx::pin_registers(sc);
  }

  // ---- one piece -----------------------------------------------------------------------------------

  // The piece's walk: the smallest row limit is the m-tile's first row's (causal rows see more keys
  // as i grows).
  __device__ Walk walk(const Piece& piece, int s_k) const {
    const int i_first = m_tile * kBlockM / p.group;
    const int visible = p.causal ? s_k - p.s_q + i_first + 1 : s_k;
    return make_walk(piece.key_begin, piece.key_end, visible < piece.key_end ? visible : piece.key_end);
  }

  __device__ void run(const Piece& piece) {
    const int s_k = p.seqlens[piece.seq * p.seqlens_stride];
    const Walk w = walk(piece, s_k);
    __syncthreads();  // every thread is done with the previous piece's shared memory
    if (wg_thread() == 0) {
      if (warpgroup == 0) {
        s.bad_page = 0;
        load_first<0>(piece, w);
      } else {
        load_first<1>(piece, w);
      }
    }
    load_q<T>(p, piece.seq, m_tile, kv_head, s.q);
    __syncthreads();  // q is in shared memory, visible to the async proxy

    RowState row;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int packed = m_tile * kBlockM + row0() + 8 * h;
      const int i = packed < p.rows ? packed / p.group : p.s_q - 1;  // padding rows: no causal limit
      const int visible = p.causal ? s_k - p.s_q + i + 1 : s_k;
      row.limit[h] = visible < piece.key_end ? visible : piece.key_end;
    }
    float o[kAccumulators];  // [64 rows, 256 cols] of this warpgroup's half of the output
#pragma unroll
    for (int i = 0; i < kAccumulators; ++i) {
      o[i] = 0.f;
    }
    float sc[kScoreRegisters];  // S of the warpgroup's tile of the current pair, then its P
    int k = 0;
    // The warpgroup broadcast from lane 0: a value ptxas knows to be warp-uniform, so that the wgmma
    // descriptors below it stay on the uniform datapath.
    if (__shfl_sync(0xffffffffu, warpgroup, 0) == 0) {
      if (w.tiles > 0) {
        next_scores_a(w, 0, sc);
      }
      for (; k < w.pairs() && w.needs_mask(k); ++k) {
        left_pair<true>(piece, w, k, o, sc, row);
      }
      for (; k < w.pairs(); ++k) {
        left_pair<false>(piece, w, k, o, sc, row);
      }
    } else {
      if (w.tiles > 0 && w.has_b(0)) {
        next_scores_b(w, 0, sc);
      }
      for (; k < w.pairs() && w.needs_mask(k); ++k) {
        right_pair<true>(piece, w, k, o, sc, row);
      }
      for (; k < w.pairs(); ++k) {
        right_pair<false>(piece, w, k, o, sc, row);
      }
    }
    phases = w.phases_after(phases);

    // Row sums: the quad's shares, then warpgroup 0's plus warpgroup 1's (a fixed order); both
    // warpgroups end on the same base, the last pair's base_b.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      row.sum[h] += __shfl_xor_sync(0xffffffffu, row.sum[h], 1);
      row.sum[h] += __shfl_xor_sync(0xffffffffu, row.sum[h], 2);
      if (wg_thread() % 4 == 0) {
        s.sum[warpgroup][row0() + 8 * h] = row.sum[h];
      }
    }
    __syncthreads();  // row sums and the bad-page flag are final
    const bool bad = cuda::report_piece(piece, s.bad_page, [&] { return s.walk.status; });
    float sum[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      sum[h] = s.sum[0][row0() + 8 * h] + s.sum[1][row0() + 8 * h];
    }
    write_rows<T>(p, piece, m_tile, kv_head, bad, row.base, sum, o, fresh_thread_index());
  }
};

}  // namespace openmla::sm90
