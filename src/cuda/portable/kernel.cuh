#pragma once
// The portable MLA decode kernel (sm_80+): cp.async double-buffered cache tiles gathered through the
// block table, mma.sync m16n8k16 for both products, online softmax in fp32.
//
// Grid: (m_tiles, num_parts, h_kv). CTA (m, p, g) computes query rows [m * kM, (m + 1) * kM) of KV head
// g (row r = i * group + head, i < s_q) for every sequence piece of plan part p. A piece that is the
// whole sequence writes out/lse; a piece of a split sequence writes its normalized partial result to
// the workspace for the combine kernel.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../../core/pieces.h"
#include "../../core/status.h"
#include "traits.h"

namespace openmla::portable {

// 16-byte chunk c of row `row` in a [rows, kRowChunks] tile: the low 3 bits of c are XORed with the
// row, so the 8 rows one ldmatrix reads at the same column fall in 8 different bank groups.
__device__ __forceinline__ int swizzle_row(int row, int c) { return row * kRowChunks + (c ^ (row & 7)); }

// The same for P, whose rows hold kPChunks (8 or 4) chunks.
template <int kPChunks>
__device__ __forceinline__ int swizzle_p(int row, int c) {
  if constexpr (kPChunks == 8) {
    return row * 8 + (c ^ (row & 7));
  } else {
    return row * 4 + (c ^ ((row >> 1) & 3));
  }
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

template <typename T>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    ptx::mma_bf16(d, a, b0, b1);
  } else {
    ptx::mma_fp16(d, a, b0, b1);
  }
}

using schedule::Piece;

template <class Tr>
struct Cta {
  using T = typename Tr::T;
  using Shared = typename Tr::Shared;
  static constexpr int kM = Tr::kM;
  static constexpr int kKeys = Tr::kKeys;

  const cuda::DecodeParams& p;
  Shared& s;
  int m_tile;
  int kv_head;
  int warp = threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  int warp_m = warp / Tr::kWarpsN;  // score row slice
  int warp_n = warp % Tr::kWarpsN;  // score key slice

  // Loads rows [m_tile * kM, +kM) of q for `seq` into s.q; rows past p.rows are zero.
  __device__ void load_q(int seq) {
    const auto* q = static_cast<const T*>(p.q);  // [b, s_q, h_q, kDQK]
    for (int r = threadIdx.x / kThreadsPerRow; r < kM; r += kThreads / kThreadsPerRow) {
      const int row = m_tile * kM + r;
      const bool valid = row < p.rows;
      const int i = valid ? row / p.group : 0;
      const int head = kv_head * p.group + (valid ? row % p.group : 0);
      const T* src = q + seq * p.q_stride_b + i * p.q_stride_s + head * p.q_stride_h;
      for (int c = threadIdx.x % kThreadsPerRow; c < kRowChunks; c += kThreadsPerRow) {
        ptx::cp_async_16(ptx::smem_addr(s.q) + swizzle_row(r, c) * 16, src + c * kChunk, valid ? 16 : 0);
      }
    }
  }

  static constexpr int kRowsPerPass = kThreads / kThreadsPerRow;  // cache rows the CTA loads at once
  static constexpr int kLoadRows = kKeys / kRowsPerPass;          // cache rows per thread and tile
  static_assert(kRowsPerPass % 8 == 0 && kKeys % kRowsPerPass == 0 && kRowChunks % kThreadsPerRow == 0);

  // The cache block of each of this thread's rows of the tile at key0 (unused past key_end). Read a
  // tile ahead of load_k, so the block-table latency hides behind a tile of work.
  __device__ void fetch_blocks(int seq, int key0, int key_end, int32_t (&block)[kLoadRows]) const {
    const int32_t* pages = p.block_table + seq * p.bt_stride_b;  // [max_blocks]
#pragma unroll
    for (int i = 0; i < kLoadRows; ++i) {
      const int key = key0 + threadIdx.x / kThreadsPerRow + i * kRowsPerPass;
      const int page = p.page_shift >= 0 ? key >> p.page_shift : key / p.page_size;
      block[i] = key < key_end ? pages[static_cast<int64_t>(page) * p.bt_stride_page] : 0;
    }
  }

  // Loads keys [key0, key0 + kKeys) into stage buffer `stage` from the blocks fetch_blocks read; keys
  // at or past key_end are zero (their slots may hold NaN, and 0 * NaN would reach the output). A
  // block index outside [0, num_blocks) is never dereferenced: the row is zeroed and s.bad_page set.
  __device__ void load_k(int key0, int key_end, int stage, const int32_t (&block)[kLoadRows]) {
    const auto* cache = static_cast<const T*>(p.k_cache);  // [num_blocks, page_size, h_kv, kDQK]
    const int row0 = threadIdx.x / kThreadsPerRow;
    const int chunk0 = threadIdx.x % kThreadsPerRow;
    // Chunk chunk0 + 8 j of row r lies at r * kRowChunks + (chunk0 ^ (r & 7)) + 8 j, and this
    // thread's rows (a pass apart) share r & 7: one base address, compile-time offsets.
    const uint32_t dst0 = ptx::smem_addr(s.k[stage]) + swizzle_row(row0, chunk0) * 16;
#pragma unroll
    for (int i = 0; i < kLoadRows; ++i) {
      const int key = key0 + row0 + i * kRowsPerPass;
      bool valid = key < key_end;
      const T* src = cache;
      if (valid) {
        if (block[i] < 0 || block[i] >= p.num_blocks) {
          s.bad_page = 1;
          valid = false;
        } else {
          const int slot = p.page_shift >= 0 ? key & (p.page_size - 1) : key % p.page_size;
          src = cache + block[i] * p.k_stride_block + static_cast<int64_t>(slot) * p.k_stride_token +
                kv_head * p.k_stride_head + chunk0 * kChunk;
        }
      }
      const uint32_t dst = dst0 + i * kRowsPerPass * kRowChunks * 16;
#pragma unroll
      for (int j = 0; j < kRowChunks / kThreadsPerRow; ++j) {
        ptx::cp_async_16(dst + j * kThreadsPerRow * 16, src + j * kThreadsPerRow * kChunk, valid ? 16 : 0);
      }
    }
  }

  // Between a tile's score, softmax and output phases, warps exchange data only with the warps of
  // their own query rows. When the CTA's rows form two output row groups whose warps are exactly the
  // score warps of those rows, each group (kWarps / 2 warps) waits at its own named barrier rather
  // than for the other group too; otherwise the whole CTA synchronizes.
  static constexpr bool kRowGroups = Tr::kOWarpsM == 2 && Tr::kOWarpsN == Tr::kOMTiles * Tr::kWarpsN &&
                                     Tr::kScoreWarps == Tr::kWarpsN;
  __device__ void row_group_sync() const {
    if constexpr (kRowGroups) {
      ptx::named_barrier(1 + warp / Tr::kOWarpsN, kThreads / 2);
    } else {
      __syncthreads();
    }
  }

  // Loads tile `tile` (if the piece has it) into its stage buffer from `blocks`, commits a cp.async
  // group, and fetches into `blocks` the blocks of the tile after it.
  __device__ void load_next(const Piece& piece, int tile, int n_tiles, int32_t (&blocks)[kLoadRows]) {
    if (tile < n_tiles) {
      load_k(piece.key_begin + tile * kKeys, piece.key_end, tile % kStages, blocks);
    }
    ptx::cp_async_commit();
    if (tile + 1 < n_tiles) {
      fetch_blocks(piece.seq, piece.key_begin + (tile + 1) * kKeys, piece.key_end, blocks);
    }
  }

  // When the CTA is compute-bound (the row-group instance), tile t + 1 is loaded into the free stage
  // right after the barrier that opens tile t: the copies issue among the score products, and no
  // barrier closes the tile. Otherwise tile t + 2 is loaded after a barrier that closes tile t, which
  // keeps two tiles in flight for memory-bound shapes.
  static constexpr bool kEarlyLoads = kRowGroups;

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

  __device__ void run(const Piece& piece) {
    constexpr int kScoreTiles = Tr::kScoreTiles;
    constexpr int kOMTiles = Tr::kOMTiles;
    constexpr int kOutTiles = Tr::kOutTiles;
    const bool has_scores = warp_n < Tr::kScoreWarps;
    const int o_m = warp / Tr::kOWarpsN;  // output row group
    const int o_n = warp % Tr::kOWarpsN;  // output column group
    const int n_tiles = (piece.key_end - piece.key_begin + kKeys - 1) / kKeys;

    __syncthreads();  // the previous piece is done with shared memory
    if (threadIdx.x == 0) {
      s.bad_page = 0;
    }
    if (threadIdx.x < kM) {
      s.run_max[0][threadIdx.x] = -INFINITY;
    }
    __syncthreads();
    load_q(piece.seq);
    int32_t blocks[kLoadRows];  // the blocks of the next tile to load
    fetch_blocks(piece.seq, piece.key_begin, piece.key_end, blocks);
    for (int tile = 0; tile < kStages; ++tile) {  // cp.async groups: q with tile 0, then tile 1
      load_next(piece, tile, n_tiles, blocks);
    }

    // The thread's two score rows: slice row lane / 4 and lane / 4 + 8; each sees keys below its limit.
    const int s_k = p.seqlens[piece.seq * p.seqlens_stride];
    int score_row[2];
    int limit[2];
    for (int h = 0; h < 2; ++h) {
      score_row[h] = warp_m * 16 + lane / 4 + 8 * h;
      const int row = m_tile * kM + score_row[h];
      const int i = row < p.rows ? row / p.group : 0;
      const int visible = p.causal ? s_k - p.s_q + i + 1 : s_k;
      limit[h] = visible < piece.key_end ? visible : piece.key_end;
    }

    float row_sum[2] = {0.f, 0.f};  // this warp's share of the running sum of its score rows
    float acc[kOMTiles][kOutTiles][4];  // [kORows rows, kColsPerWarp cols] of this warp
#pragma unroll
    for (int mt = 0; mt < kOMTiles; ++mt) {
#pragma unroll
      for (int t = 0; t < kOutTiles; ++t) {
        acc[mt][t][0] = acc[mt][t][1] = acc[mt][t][2] = acc[mt][t][3] = 0.f;
      }
    }

    // Per-lane parts of the ldmatrix addresses. Fragment rows start at multiples of 8 and the swizzle
    // only XORs the low 3 bits of the chunk, so it repeats every 8 chunks: 4 offsets per operand
    // (one per step mod 4) plus compile-time strides address every fragment of the unrolled loops.
    uint32_t q_off[4];  // Q rows lane % 16, chunk 2j + lane / 16
    uint32_t k_off[4];  // K rows (score keys), chunk 2j + (lane / 8) % 2
    uint32_t v_off[4];  // V rows (keys) lane % 16 in ldmatrix.trans order, chunk 2j + lane / 16
    uint32_t p_off[4];  // P rows lane % 16, chunk 2j + lane / 16
    const int k_lane = lane % 8 + (kScoreTiles == 1 ? 0 : 8 * (lane / 16));
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      q_off[j] = swizzle_row(lane % 16, 2 * j + lane / 16) * 16;
      k_off[j] = swizzle_row(k_lane, 2 * j + (lane / 8) % 2) * 16;
      v_off[j] = swizzle_row(lane % 8 + 8 * ((lane / 8) % 2), 2 * j + lane / 16) * 16;
      p_off[j] = 2 * j < Tr::kPChunks ? swizzle_p<Tr::kPChunks>(lane % 16, 2 * j + lane / 16) * 16 : 0;
    }
    constexpr uint32_t kRowBytes = kRowChunks * 16;
    const uint32_t sq = ptx::smem_addr(s.q) + warp_m * 16 * kRowBytes;
    const uint32_t sp = ptx::smem_addr(s.p) + o_m * Tr::kORows * Tr::kPChunks * 16;
    // Whether some row of this warp's score rows stops seeing keys before key `end`.
    const int min_limit = min(limit[0], limit[1]);
    for (int tile = 0; tile < n_tiles; ++tile) {
      const int stage = tile % kStages;
      const int parity = tile % 2;
      const int key0 = piece.key_begin + tile * kKeys;
      if (kEarlyLoads && tile > 0) {
        ptx::cp_async_wait<0>();
      } else {
        ptx::cp_async_wait<kStages - 1>();
      }
      __syncthreads();
      if (kEarlyLoads && tile > 0) {
        load_next(piece, tile + 1, n_tiles, blocks);
      }
      const uint32_t sk = ptx::smem_addr(s.k[stage]);

      // Scores of this warp: [16 rows, kKeysPerWarp keys], scaled to the log2 domain and masked.
      float sc[kScoreTiles][4];
      if (has_scores) {
        for (int t = 0; t < kScoreTiles; ++t) {
          sc[t][0] = sc[t][1] = sc[t][2] = sc[t][3] = 0.f;
        }
        const int key_base = warp_n * Tr::kKeysPerWarp;
        const uint32_t sk_scores = sk + key_base * kRowBytes;
#pragma unroll
        for (int ks = 0; ks < kRowChunks / 2; ++ks) {
          uint32_t a[4];
          ptx::ldmatrix_x4(a, sq + (ks / 4) * 128 + q_off[ks % 4]);
          if constexpr (kScoreTiles == 1) {
            uint32_t b[2];
            ptx::ldmatrix_x2(b, sk_scores + (ks / 4) * 128 + k_off[ks % 4]);
            mma<T>(sc[0], a, b[0], b[1]);
          } else {
#pragma unroll
            for (int np = 0; np < kScoreTiles / 2; ++np) {
              uint32_t b[4];
              ptx::ldmatrix_x4(b, sk_scores + np * 16 * kRowBytes + (ks / 4) * 128 + k_off[ks % 4]);
              mma<T>(sc[2 * np], a, b[0], b[1]);
              mma<T>(sc[2 * np + 1], a, b[2], b[3]);
            }
          }
        }
        float tile_max[2] = {-INFINITY, -INFINITY};
        // Masking only on tiles that reach past some row's last visible key (warp-uniform branch).
        const bool masked = __any_sync(0xffffffffu, key0 + key_base + Tr::kKeysPerWarp > min_limit);
#pragma unroll
        for (int t = 0; t < kScoreTiles; ++t) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = key0 + key_base + t * 8 + 2 * (lane % 4) + e % 2;
            sc[t][e] = !masked || key < limit[e / 2] ? sc[t][e] * p.scale_log2 : -INFINITY;
            tile_max[e / 2] = fmaxf(tile_max[e / 2], sc[t][e]);
          }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
          tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
          if (lane % 4 == 0) {
            s.row_max[warp_n][score_row[h]] = tile_max[h];
          }
        }
      }
      row_group_sync();

      // Probabilities of the score rows into P; the running max moves to s.run_max[parity ^ 1] and the
      // factor rescaling the rows' output to s.row_scale.
      if (has_scores) {
        RowUpdate u[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          u[h] = row_update(score_row[h], parity);
          row_sum[h] *= u[h].scale_old;
          if (warp_n == 0 && lane % 4 == 0) {
            s.run_max[parity ^ 1][score_row[h]] = u[h].new_max;
            s.row_scale[score_row[h]] = u[h].scale_old;
          }
        }
#pragma unroll
        for (int t = 0; t < kScoreTiles; ++t) {
          float pr[4];
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            pr[e] = ptx::ex2(sc[t][e] - u[e / 2].use_max);
            row_sum[e / 2] += pr[e];
          }
          const int col = warp_n * Tr::kKeysPerWarp + t * 8 + 2 * (lane % 4);
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int offset = swizzle_p<Tr::kPChunks>(score_row[h], col / kChunk) * 16 + (col % kChunk) * 2;
            *reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(s.p) + offset) =
                pack2<T>(pr[2 * h], pr[2 * h + 1]);
          }
        }
      }
      row_group_sync();

      // Rescale the output rows by how much their max moved (s.row_scale). Once the maxima settle the
      // factors are exactly 1, and the warp skips the multiplications (a bitwise no-op).
      float scale[kOMTiles][2];
      bool moved = false;
#pragma unroll
      for (int mt = 0; mt < kOMTiles; ++mt) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          scale[mt][h] = s.row_scale[o_m * Tr::kORows + mt * 16 + lane / 4 + 8 * h];
          moved = moved || scale[mt][h] != 1.f;
        }
      }
      if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
        for (int mt = 0; mt < kOMTiles; ++mt) {
#pragma unroll
          for (int t = 0; t < kOutTiles; ++t) {
            acc[mt][t][0] *= scale[mt][0];
            acc[mt][t][1] *= scale[mt][0];
            acc[mt][t][2] *= scale[mt][1];
            acc[mt][t][3] *= scale[mt][1];
          }
        }
      }

      // acc += P [kORows rows, kKeys] . V [kKeys, this warp's columns].
      const int col_base = o_n * Tr::kColsPerWarp;
      const uint32_t sv = sk + col_base * 2;
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        uint32_t a[kOMTiles][4];
#pragma unroll
        for (int mt = 0; mt < kOMTiles; ++mt) {
          ptx::ldmatrix_x4(a[mt], sp + mt * 16 * Tr::kPChunks * 16 + p_off[kk]);
        }
#pragma unroll
        for (int np = 0; np < kOutTiles / 2; ++np) {
          uint32_t b[4];
          ptx::ldmatrix_x4_trans(b, sv + kk * 16 * kRowBytes + (np / 4) * 128 + v_off[np % 4]);
#pragma unroll
          for (int mt = 0; mt < kOMTiles; ++mt) {
            mma<T>(acc[mt][2 * np], a[mt], b[0], b[1]);
            mma<T>(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
          }
        }
      }
      if constexpr (!kEarlyLoads) {
        __syncthreads();
        load_next(piece, tile + kStages, n_tiles, blocks);
      }
    }
    ptx::cp_async_wait<0>();

    // Row sums: over the quad, then over the score warps of the slice.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 1);
      row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 2);
      if (has_scores && lane % 4 == 0) {
        s.row_sum[warp_n][score_row[h]] = row_sum[h];
      }
    }
    __syncthreads();
    const bool bad = piece.status != status::kOk || s.bad_page != 0;
    if (bad && threadIdx.x == 0) {
      const int code = piece.status != status::kOk ? piece.status : status::kPageOutOfRange;
      atomicMin(p.status, status::encode(piece.seq, code));
    }
#pragma unroll
    for (int mt = 0; mt < kOMTiles; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = o_m * Tr::kORows + mt * 16 + lane / 4 + 8 * h;
        float total = 0.f;
#pragma unroll
        for (int w = 0; w < Tr::kScoreWarps; ++w) {
          total += s.row_sum[w][row];
        }
        write_row(piece, bad, row, o_n == 0 && lane % 4 == 0, s.run_max[n_tiles % 2][row], total,
                  acc[mt], h);
      }
    }
  }

  // Row `row` of the CTA (this thread's half h of an m16 tile): out = acc / sum,
  // lse = max * ln 2 + ln(sum); a row with no key: out 0 and lse +inf (final) or -inf (partial);
  // a bad sequence: NaN. `writes_lse`: this thread writes the row's lse.
  template <int kOutTiles>
  __device__ void write_row(const Piece& piece, bool bad, int row, bool writes_lse, float row_max, float total,
                            const float (&acc)[kOutTiles][4], int h) {
    const int packed = m_tile * kM + row;
    if (packed >= p.rows) {
      return;
    }
    const int col_base = (warp % Tr::kOWarpsN) * Tr::kColsPerWarp;
    const int i = packed / p.group;
    const int head = kv_head * p.group + packed % p.group;
    const bool empty = total == 0.f;
    const float inv = bad ? NAN : (empty ? 0.f : 1.f / total);
    const float lse = bad ? NAN
                          : (empty ? (piece.slot < 0 ? INFINITY : -INFINITY)
                                   : row_max * 0.69314718055994531f + logf(total));
    if (piece.slot < 0) {
      auto* out = static_cast<T*>(p.out) + piece.seq * p.out_stride_b + i * p.out_stride_s +
                  head * p.out_stride_h;  // [kDV]
#pragma unroll
      for (int t = 0; t < kOutTiles; ++t) {
        const int col = col_base + t * 8 + 2 * (lane % 4);
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
        const int col = col_base + t * 8 + 2 * (lane % 4);
        *reinterpret_cast<float2*>(out + col) = make_float2(acc[t][2 * h] * inv, acc[t][2 * h + 1] * inv);
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

  // The pieces of plan part blockIdx.y, every plan field checked as it is read (core/pieces.h). A plan
  // that cannot be trusted as a whole is recorded once per CTA, naming no sequence.
  const schedule::Walk walk = schedule::walk_part(p.plan, p.batch, p.num_parts, blockIdx.y);
  if (walk.status != status::kOk && threadIdx.x == 0) {
    atomicMin(p.status, status::encode(status::kNoSequence, walk.status));
  }
  const schedule::Lengths lengths{.seqlens = p.seqlens,
                                  .stride = p.seqlens_stride,
                                  .page_size = p.page_size,
                                  .max_blocks = p.max_blocks};
  Cta<Tr> cta{p, s, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.z)};
  for (int seq = walk.first; seq <= walk.last; seq += walk.stride) {
    cta.run(schedule::piece_of(p.plan, walk, seq, lengths));
  }
  ptx::launch_dependents();  // the combine kernel may start launching
}

}  // namespace openmla::portable
