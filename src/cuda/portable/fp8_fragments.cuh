#pragma once
// The portable kernel's operands on a per-tensor FP8 cache (docs/fp8.md). A tile stays in shared memory
// as cp.async wrote it, 576 e4m3 bytes a key, and each warp converts the values its products need
// straight into mma.sync B fragments (e4m3 -> fp16 exactly), so no 16-bit copy of a tile exists and both
// products run in fp16:
//   S = Q K^T    B = K^T [k16 dims, 8 keys]: ldmatrix of the raw key rows, 4 k16 steps at once
//   O += P V     B = V [k16 keys, 8 dims]: 8-byte loads of 4 key rows, bytes paired across keys
//
// A fragment fixes which (k, n) values a lane holds (fragment.cuh); two orders make them whole words of
// the tile:
// - Scores: k16 step s is the 16 bytes of 16-byte chunk s of a key row. ldmatrix gives lane l bytes
//   [4 (l % 4), +4) of its key's chunk, so k-index k of step s is dim 16 s + 4 (k % 8 / 2) + 2 (k / 8)
//   + k % 2; q is stored in that order (load_q), its k-order being the products' only concern.
// - Output: n8 tile t, column n of a warp's 64 output columns is dim 8 n + t of them, so a lane's
//   B values of a key are 8 contiguous bytes, and its accumulator columns 2 c + j of tile t are dims
//   16 c + 8 j + t: 16 contiguous dims per row (output_dim).
// A raw row's 16-byte chunk c lies at slot c ^ (row / 2 % 4) (raw_slot), so that neither the ldmatrix
// of 8 key rows nor the 8-byte loads of 4 key rows meet a shared-memory bank twice more than needed.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "../common/fp16_rows.cuh"
#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../common/ptx/cvt.cuh"
#include "config.h"
#include "fragment.cuh"

namespace openmla::portable::fp8 {

inline constexpr int kRowBytes = cuda::kDQK;                // 576: a per-tensor key row
inline constexpr int kRowChunks = kRowBytes / 16;           // 36 chunks = 36 k16 steps of the score product
inline constexpr int kStepsPerLoad = 4;                     // k16 steps of one ldmatrix.x4 (chunks 4 g .. 4 g + 3)
inline constexpr int kGroups = kRowChunks / kStepsPerLoad;  // 9
inline constexpr int kOutTiles = 8;                         // n8 tiles of a warp's 64 output columns
static_assert(kRowChunks % kStepsPerLoad == 0);

// The 16-byte slot of a raw tile row that holds its chunk c (c < 36, a multiple of 4 chunks a row).
__device__ __forceinline__ int raw_slot(int row, int c) { return c ^ ((row >> 1) & 3); }

// Two e4m3 values (bytes 0 and 1 of `word`, or 2 and 3 when kHigh; the lower byte first) as an exact fp16
// pair: one instruction from sm_89 on, a short bit sequence before.
template <bool kHigh>
__device__ __forceinline__ uint32_t half2_bits(uint32_t word) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  return ptx::cvt_f16x2_e4m3x2<kHigh>(word);
#else
  const __half2_raw h =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(kHigh ? word >> 16 : word & 0xffffu), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | static_cast<uint32_t>(h.y) << 16;
#endif
}

// The byte offset, within a raw tile, of the row lane l addresses in an ldmatrix.x4 of 8 key rows and
// chunks 4 g .. 4 g + 3 (g = 0, the rows from a multiple of 8): row l % 8, chunk l / 8 (raw_slot).
__device__ __forceinline__ uint32_t key_lane_offset(int lane) {
  const int row = lane % 8;
  return static_cast<uint32_t>(row * kRowBytes + raw_slot(row, lane / 8) * 16);
}

// The score product's B fragments of k16 step s from the 32-bit word ldmatrix gave for chunk s: b0, b1.
__device__ __forceinline__ void key_fragment(uint32_t word, uint32_t (&b)[2]) {
  b[0] = half2_bits<false>(word);
  b[1] = half2_bits<true>(word);
}

// The score product's B fragments of one n8 tile of keys for the k16 steps 4 g .. 4 g + 3: b[i] for step
// 4 g + i. `addr`: the raw tile + the tile's first key row * kRowBytes + 64 g + key_lane_offset.
__device__ __forceinline__ void key_fragments(uint32_t addr, uint32_t (&b)[kStepsPerLoad][2]) {
  uint32_t r[kStepsPerLoad];
  ptx::ldmatrix_x4(r, addr);
#pragma unroll
  for (int i = 0; i < kStepsPerLoad; ++i) {
    key_fragment(r[i], b[i]);
  }
}

// sc[t] += Q K^T over all 36 k16 steps for kTiles n8 tiles of keys, the first at `rows` (the raw tile +
// that key row * kRowBytes, a multiple of 8 rows); q_step(ks, a) loads q's A fragment of step ks.
template <int kTiles, typename QStep>
__device__ __forceinline__ void score_products(uint32_t rows, int lane, QStep&& q_step, float (&sc)[kTiles][4]) {
  const uint32_t keys = rows + key_lane_offset(lane);
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    uint32_t b[kTiles][kStepsPerLoad][2];  // K [k16, 8 keys] of 4 steps, per n8 tile
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      key_fragments(keys + t * fragment::kN * kRowBytes + g * kStepsPerLoad * 16, b[t]);
    }
#pragma unroll
    for (int i = 0; i < kStepsPerLoad; ++i) {
      uint32_t a[4];  // Q [16 rows, k16]
      q_step(g * kStepsPerLoad + i, a);
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        fragment::mma<__half>(sc[t], a, b[t][i][0], b[t][i][1]);
      }
    }
  }
}

// Split scores (16 query rows, the kernel's kMSlices = 1 instances): the 8 warps are kKeyGroups groups
// of keys by kDimGroups groups of dims. Warp (key group kg, dim group dg) holds q's A fragments of the
// k16 steps [kDimSteps dg, +kDimSteps) in registers for the whole piece and computes, per tile, its keys'
// partial scores over those dims; the partial sums meet in shared memory.
inline constexpr int kDimGroups = kScoreDimGroups;
inline constexpr int kDimSteps = kRowChunks / kDimGroups;  // 9
static_assert(kRowChunks % kDimGroups == 0);

// A lane's ldmatrix row offsets, within a raw tile from a multiple of 8 key rows, for the chunks of dim
// group dg: two .x4 (chunks 9 dg + [0, 4) and + [4, 8)) and one .x1 (chunk 9 dg + 8, lanes 0-7).
struct KeyLanes {
  uint32_t offset[3];
};

__device__ __forceinline__ KeyLanes key_lanes(int lane, int dg) {
  const int row = lane % 8;
  KeyLanes k;
#pragma unroll
  for (int j = 0; j < 3; ++j) {
    const int chunk = kDimSteps * dg + 4 * j + (j < 2 ? lane / 8 : 0);
    k.offset[j] = static_cast<uint32_t>(row * kRowBytes + raw_slot(row, chunk) * 16);
  }
  return k;
}

// The 32-bit words ldmatrix gives a lane for the kDimSteps chunks of its dim group, of the n8 tile of
// keys whose first row is at `rows` (the raw tile + that row * kRowBytes): word i for step 9 dg + i.
__device__ __forceinline__ void key_words(uint32_t rows, const KeyLanes& k, uint32_t (&w)[kDimSteps]) {
  uint32_t r[4];
  ptx::ldmatrix_x4(r, rows + k.offset[0]);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    w[i] = r[i];
  }
  ptx::ldmatrix_x4(r, rows + k.offset[1]);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    w[4 + i] = r[i];
  }
  w[8] = ptx::ldmatrix_x1(rows + k.offset[2]);
}

// acc = Q K^T of kTiles n8 tiles of keys, the first at `rows` (a multiple of 8 rows), over one dim
// group's k16 steps: q[i] is q's A fragment of the group's step i.
template <int kTiles>
__device__ __forceinline__ void partial_scores(uint32_t rows, const KeyLanes& k, const uint32_t (&q)[kDimSteps][4],
                                               float (&acc)[kTiles][4]) {
  uint32_t words[kTiles][kDimSteps];  // K [k16, 8 keys] per n8 tile and step, as e4m3
#pragma unroll
  for (int t = 0; t < kTiles; ++t) {
    key_words(rows + t * fragment::kN * kRowBytes, k, words[t]);
  }
#pragma unroll
  for (int t = 0; t < kTiles; ++t) {
    acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;
  }
#pragma unroll
  for (int i = 0; i < kDimSteps; ++i) {
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      uint32_t b[2];
      key_fragment(words[t][i], b);
      fragment::mma<__half>(acc[t], q[i], b[0], b[1]);
    }
  }
}

// A lane's reads of V for the output product. In k16 step kk it needs keys 16 kk + 2 c + e + 8 h
// (c = lane % 4; e, h in {0, 1}), bytes [8 n, +8) of its warp's 64 columns (n = lane / 4). The 4 lanes of a
// quad read rows of both parities at once (even lanes key e = 0 first, odd ones e = 1), so that each
// 8-byte load of a warp touches two rows in each half of the banks: two wavefronts.
struct ValueLanes {
  uint32_t first;   // byte offset in a raw tile of the lane's first row of step 0, its columns
  uint32_t second;  // ... of its other row
  uint32_t lo_sel;  // __byte_perm selectors pairing key 2 c's byte with key 2 c + 1's: bytes 0, 1
  uint32_t hi_sel;  // bytes 2, 3
};

// col0: the warp's first output column (a multiple of 64).
__device__ __forceinline__ ValueLanes value_lanes(int lane, int col0) {
  const int c = lane % 4;
  const int n = lane / 4;
  const int odd = c & 1;
  // Rows 16 kk + 2 c + e + 8 h all have row / 2 % 4 == c.
  const uint32_t columns = static_cast<uint32_t>(((col0 / 16 + n / 2) ^ c) * 16 + 8 * (n % 2));
  ValueLanes v;
  v.first = static_cast<uint32_t>((2 * c + odd) * kRowBytes) + columns;
  v.second = static_cast<uint32_t>((2 * c + 1 - odd) * kRowBytes) + columns;
  v.lo_sel = odd ? 0x1504u : 0x5140u;
  v.hi_sel = odd ? 0x3726u : 0x7362u;
  return v;
}

// The output product's B fragments of k16 step kk: b[h][t] for n8 tile t, keys 16 kk + 8 h + 2 c + {0, 1}
// (fragment.cuh: b0 and b1 of the mma are b[0][t] and b[1][t]). `raw`: the raw tile.
__device__ __forceinline__ void value_fragments(const uint8_t* raw, const ValueLanes& v, int kk,
                                                uint32_t (&b)[2][kOutTiles]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int rows = (16 * kk + 8 * h) * kRowBytes;
    const uint2 x = *reinterpret_cast<const uint2*>(raw + v.first + rows);
    const uint2 y = *reinterpret_cast<const uint2*>(raw + v.second + rows);
#pragma unroll
    for (int w = 0; w < 2; ++w) {
      const uint32_t lo = __byte_perm(w == 0 ? x.x : x.y, w == 0 ? y.x : y.y, v.lo_sel);
      const uint32_t hi = __byte_perm(w == 0 ? x.x : x.y, w == 0 ? y.x : y.y, v.hi_sel);
      b[h][4 * w] = half2_bits<false>(lo);
      b[h][4 * w + 1] = half2_bits<true>(lo);
      b[h][4 * w + 2] = half2_bits<false>(hi);
      b[h][4 * w + 3] = half2_bits<true>(hi);
    }
  }
}

// acc[mt][t] += P V over the k16 step kk of the raw tile at raw (this lane's reads: v), in fp16: n8 tile t
// of the warp's 64 output columns in output_dim's order; p_step(kk, a) loads P's A fragments of step kk for
// each m16 tile mt.
template <int kOMTiles, typename PStep>
__device__ __forceinline__ void accumulate_step(const uint8_t* raw, const ValueLanes& v, int kk, PStep&& p_step,
                                                float (&acc)[kOMTiles][kOutTiles][4]) {
  uint32_t a[kOMTiles][4];  // P [16 kOMTiles rows, k16 keys]
  p_step(kk, a);
  uint32_t b[2][kOutTiles];  // V [k16 keys, 8 columns] per n8 tile: b0, b1
  value_fragments(raw, v, kk, b);
#pragma unroll
  for (int mt = 0; mt < kOMTiles; ++mt) {
#pragma unroll
    for (int t = 0; t < kOutTiles; ++t) {
      fragment::mma<__half>(acc[mt][t], a[mt], b[0][t], b[1][t]);
    }
  }
}

// The same over all kKeys / 16 steps; after(std::integral_constant<int, kk>{}) runs once step kk's products
// are issued.
template <int kKeys, int kOMTiles, typename PStep, typename After>
__device__ __forceinline__ void accumulate(const uint8_t* raw, const ValueLanes& v, PStep&& p_step,
                                           float (&acc)[kOMTiles][kOutTiles][4], After&& after) {
  [&]<int... kk>(std::integer_sequence<int, kk...>) {
    ((accumulate_step(raw, v, kk, p_step, acc), after(std::integral_constant<int, kk>{})), ...);
  }
  (std::make_integer_sequence<int, kKeys / fragment::kK>{});
}

// The output column (of the warp's 64) that accumulator element 2 h + j of n8 tile t holds in lane `lane`.
__device__ __forceinline__ int output_dim(int lane, int t, int j) { return 16 * (lane % 4) + 8 * j + t; }

// Rows [m_tile * kM, +kM) of q for `seq` as fp16 into `sq` (Layout: rows of 72 16-byte units) in the score
// product's k order: unit 2 s + h, position j holds dim 16 s + 4 (j / 2) + 2 h + j % 2. A bf16 row is
// stored times 2^-exponent[r] (cuda::q_row_exponent of its largest |value|, a warp reduction); an fp16
// row as it is (exponent 0). Rows past p.rows are zero. Warp w takes rows w, w + kWarps, ...; lane l units
// l, l + 32, l + 64. `between()` runs once every load of the thread is on its way.
template <typename T, int kM, int kWarps, class Layout, typename Between>
__device__ void load_q(const cuda::DecodeParams& p, int seq, int m_tile, int kv_head, char* sq, int* exponent,
                       Between&& between) {
  constexpr int kUnits = cuda::kDQK / 8;
  constexpr int kUnitsPerLane = (kUnits + 31) / 32;
  constexpr int kRowsPerWarp = kM / kWarps;
  static_assert(kM % kWarps == 0);
  const auto* q = static_cast<const T*>(p.q);  // [b, s_q, h_q, kDQK]
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  uint4 v[kRowsPerWarp][kUnitsPerLane];  // [row warp + kWarps j][unit lane + 32 k]: 4 words (T pairs)
#pragma unroll
  for (int j = 0; j < kRowsPerWarp; ++j) {
    const int packed = m_tile * kM + warp + kWarps * j;
    const int i = packed < p.rows ? packed / p.group : 0;
    const int head = kv_head * p.group + (packed < p.rows ? packed % p.group : 0);
    const auto* row = reinterpret_cast<const uint32_t*>(q + seq * p.q_stride_b + i * p.q_stride_s +
                                                        head * p.q_stride_h);  // [kDQK / 2] pairs
#pragma unroll
    for (int k = 0; k < kUnitsPerLane; ++k) {
      const int u = lane + 32 * k;
      v[j][k] = make_uint4(0, 0, 0, 0);
      if (packed < p.rows && u < kUnits) {
        const uint32_t* src = row + 8 * (u / 2) + u % 2;  // pairs 4 dims apart
        v[j][k] = make_uint4(src[0], src[2], src[4], src[6]);
      }
    }
  }
  between();
#pragma unroll
  for (int j = 0; j < kRowsPerWarp; ++j) {
    const int r = warp + kWarps * j;
    int e = 0;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      e = cuda::warp_row_exponent(v[j]);
    }
    const float down = cuda::exp2i(-e);
#pragma unroll
    for (int k = 0; k < kUnitsPerLane; ++k) {
      const int u = lane + 32 * k;
      if (u < kUnits) {
        uint4 w = v[j][k];
        if constexpr (std::is_same_v<T, __nv_bfloat16>) {
          uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
          for (int x = 0; x < 4; ++x) {
            const float2 f = cuda::bf16_pair(words[x]);
            words[x] = fragment::pack2<__half>(f.x * down, f.y * down);
          }
          w = make_uint4(words[0], words[1], words[2], words[3]);
        }
        *reinterpret_cast<uint4*>(sq + Layout::offset(r, u)) = w;
      }
    }
    if (lane == 0) {
      exponent[r] = e;
    }
  }
}

}  // namespace openmla::portable::fp8
