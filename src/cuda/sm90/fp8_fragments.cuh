#pragma once
// The narrow schedule's operands on an FP8 cache, and the transposed schedule's scores (64 rows as N;
// its output product: transposed_fragments.cuh) (docs/fp8.md, docs/hopper-kernel.md). A tile stays in
// shared memory as TMA wrote it: 64 tokens of 576 (fp8_per_tensor) or 656 (fp8_656) bytes, unswizzled.
// Each warpgroup converts the values its products need straight into fp16 wgmma A fragments (e4m3 ->
// fp16 exactly; the 656-byte token's values times their scale brought into a power-of-two range, below),
// so both products take A from registers and no 16-bit copy of a tile exists:
//   S^T [64 keys, 16] = K [64 keys, 576] . Q^T       36 wgmma m64n16k16 RS, Q^T from shared memory
//   O^T [512, 16]    += V^T [512, 64 keys] . P^T     8 m64 blocks x 4 k16 steps RS, P^T from shared memory
//
// A fragment fixes which (row, k) values a thread holds (layout.cuh); two orders make them contiguous
// bytes of the tile, so that each thread reads whole 16-byte pieces:
// - Scores: in k16 step i of 64-dim chunk j, k-index kk is dim 64 j + 16 (kk % 8 / 2) + 4 i + 2 (kk / 8)
//   + kk % 2. Thread c of a quad then holds dims [64 j + 16 c, +16) of its two keys for the chunk's four
//   steps: word i of those 16 bytes is its step-i fragment. q is stored in the same order (load_q_fp8).
// - Output: row m = 16 w + g + 8 h of m64 block mb is dim 128 w + 16 g + 2 mb + h (warp w, quad g: a
//   thread's 16 rows are 16 contiguous dims), and k-index 2 c + e + 8 hi of k16 step kk is key
//   16 kk + 4 (2 hi + e) + c (the four threads of a quad read four consecutive keys, whose rows alternate
//   between the two halves of the 128-byte bank line: a 16-byte load conflicts 2-way, not 4-way as with
//   keys 16 apart). P^T is stored with its keys in that order (pv_key_position) and the rows are put
//   back in place when written (pv_dim).
//
// The 656-byte token's scales (one fp32 per 128 values) are applied as fp16 factors within a range that
// keeps every scaled value finite in fp16, whatever the scales' own range:
// - Scores: key k's four scales are divided by 2^g_k, g_k = floor(log2) of the largest, so each factor is
//   below 2 and a value times it at most 896; the key's row of S^T is multiplied by 2^g_k after the
//   product. Its RoPE part, stored in q's dtype, goes through a product of its own in that dtype.
// - Output: warp w's rows of O^T are dims [128 w, +128), one scale block, so the warp keeps one exponent
//   g (raise_value_exponent): its rows of O^T hold the output times 2^-g, each value's factor is its scale
//   times 2^-g, and a tile with a scale of 2^(g + 7) or more first raises g to that scale's exponent
//   and rescales the rows (rarely after a piece's first tile); a factor below 2^7 keeps a value times
//   it at most 57,344.
// With power-of-two scales every factor and product is exact; otherwise a value is rounded twice in
// fp16 (its factor, then the product), within fp16's precision of the exact value.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../common/fp16_rows.cuh"
#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../common/ptx/cvt.cuh"
#include "../common/ptx/fence.cuh"
#include "../common/ptx/wgmma.cuh"
#include "layout.cuh"
#include "openmla/decode.h"

namespace openmla::sm90::fp8 {

// Bytes of one token of a tile, and where the 656-byte token keeps its scales and its RoPE part.
template <CacheFormat kFormat>
inline constexpr int kTokenBytes = kFormat == CacheFormat::fp8_656 ? 656 : cuda::kDQK;
inline constexpr int kScaleOffset = 512;           // 4 fp32 scales, one per 128 values
inline constexpr int kRopeOffset = 528;            // 64 RoPE values in q's dtype
inline constexpr int kStepsPerChunk = 4;           // k16 steps in a chunk of 64 dims
inline constexpr int kOutBlocks = cuda::kDV / 64;  // m64 blocks of O^T

// The key position (k-index) of key `key` of a tile in P^T, the B operand of the output product.
__device__ __forceinline__ int pv_key_position(int key) {
  const int slot = key % 16 / 4;  // 2 hi + e
  return 16 * (key / 16) + 2 * (key % 4) + 8 * (slot / 2) + slot % 2;
}

// The dim of row `row` (0..63: the accumulator fragment row, + 8 for its second half) of m64 block mb of
// the output product.
__device__ __forceinline__ int pv_dim(int mb, int row) {
  return 128 * (row / 16) + 16 * (row % 8) + 2 * mb + row % 16 / 8;
}

// Two e4m3 values (bytes 0 and 1 of `word`, or bytes 2 and 3 when kHigh, the lower byte first) as an
// Op pair, times lo_scale / hi_scale when kScaled (rounded once, from fp32): the converter warpgroup's.
template <typename Op, bool kScaled, bool kHigh = false>
__device__ __forceinline__ uint32_t e4m3_pair(uint32_t word, float lo_scale, float hi_scale) {
  const uint32_t halves = ptx::cvt_f16x2_e4m3x2<kHigh>(word);  // fp16 pair, exact
  if constexpr (std::is_same_v<Op, __half> && !kScaled) {
    return halves;
  } else {
    const float2 f = unpack2<__half>(halves);
    return kScaled ? pack2<Op>(f.x * lo_scale, f.y * hi_scale) : pack2<Op>(f.x, f.y);
  }
}

// Two e4m3 values as in e4m3_pair, as an fp16 pair times the fp16 pair `factors` (rounded once).
template <bool kHigh = false>
__device__ __forceinline__ uint32_t e4m3_pair_times(uint32_t word, uint32_t factors) {
  const uint32_t halves = ptx::cvt_f16x2_e4m3x2<kHigh>(word);
  __half2 a;
  __half2 b;
  memcpy(&a, &halves, sizeof(a));
  memcpy(&b, &factors, sizeof(b));
  const __half2 product = __hmul2(a, b);
  uint32_t bits;
  memcpy(&bits, &product, sizeof(bits));
  return bits;
}

using cuda::exp2i;

// floor(log2 |x|) for a normal x, clamped to [-126, 126] so that 2^e and 2^-e are normal floats (exp2i):
// 0 and subnormals give -126, inf and NaN 126.
__device__ __forceinline__ int exponent_of(float x) {
  const int e = static_cast<int>(__float_as_uint(x) >> 23 & 0xffu) - 127;
  return e < -126 ? -126 : (e > 126 ? 126 : e);
}

// Whether the asymmetric schedule's converter (fp8_convert.cuh) stores a 656-byte tile's values times
// fp16 factors, their scales over 2^G for an exponent G of the tile's largest scales: with a bf16 q. An
// fp16 q's RoPE values could leave fp16's range times 2^-G, so its values are scaled in fp32 and rounded
// once to fp16 instead.
template <typename T, CacheFormat kFormat>
inline constexpr bool kTileExponent = (kFormat == CacheFormat::fp8_656) && std::is_same_v<T, __nv_bfloat16>;

// The factor that brings scores to the log2 domain (the softmax scale, times k_scale per tensor) and the
// one the output rows are multiplied by when written (k_scale per tensor, else 1).
template <bool kPerTensor>
__device__ __forceinline__ void log2_scales(const cuda::DecodeParams& p, float& score_scale, float& out_scale) {
  score_scale = p.scale_log2;
  out_scale = 1.f;
  if constexpr (kPerTensor) {
    out_scale = *p.k_scale;
    score_scale *= out_scale;
  }
}

// What a product runs once its last wgmma is issued: nothing, unless its caller gives work to overlap.
struct NoHook {
  __device__ void operator()() const {}
};

// No value exponent yet (a piece's start): its first tile sets it.
inline constexpr int kNoExponent = -1000;

// The 16-bit type of the asymmetric schedule's operands on an FP8 cache (its converter warpgroup,
// fp8_convert.cuh; the narrow schedule's are fp16 on both formats). Per-tensor values need no scale, and
// e4m3 converts to fp16 exactly in one instruction (to bf16 it takes four, through fp32), so those
// products run in fp16 whatever q's dtype: a bf16 q row is stored in fp16 times a power of two that
// brings its largest |value| into [2^14, 2^15) (load_q_fp8). So do the 656-byte token's with a bf16 q
// (kTileExponent; its RoPE product in bf16); with an fp16 q they are scaled in fp32 and rounded once to
// fp16.
template <typename T, CacheFormat kFormat>
using Operand = std::conditional_t<kFormat == CacheFormat::fp8_per_tensor || kTileExponent<T, kFormat>, __half, T>;

// Packed rows [kRows m_tile, +kRows) of q for `seq` into `sq` as Op (Operand), by the kThreads threads
// of the consumer warpgroups; rows past p.rows are zero. kScoreOrder: each chunk's dims in the narrow
// score product's k order (above), each 16-byte unit gathering four 4-byte pairs 32 bytes apart; else
// in their own order, the asymmetric schedule's swizzled chunks. Warp w stores rows w, w + 8, ...,
// kBatchRows at a time (their loads issued together): lane l the 16-byte units l, l + 32 and l + 64 of
// the row's 72. A bf16 row in fp16 is scaled by 2^-exponent[r] (cuda::q_row_exponent of the row's largest
// |value|, a warp reduction); otherwise exponent[r] is 0. kRopeInT: the RoPE chunk (the last) stays in
// T, scaled the same way (exactly: a power of two), for the 656-byte token's RoPE product. `between()`
// runs once, when every thread's loads of its first batch are on their way (a caller's own loads then
// share their round trip).
template <typename T, typename Op, int kRows = kFp8Rows, bool kScoreOrder = true, int kBatchRows = 1,
          bool kRopeInT = false, typename Between = void (*)()>
__device__ void load_q_fp8(
    const cuda::DecodeParams& p, int seq, int m_tile, int kv_head, Op (&sq)[kChunks][kRows * kChunkCols],
    int (&exponent)[kRows], Between&& between = [] {}) {
  const auto* q = static_cast<const T*>(p.q);  // [b, s_q, h_q, kDQK]
  constexpr int kUnitsPerRow = kChunks * kChunkCols / 8;
  constexpr int kUnitsPerLane = (kUnitsPerRow + 31) / 32;
  constexpr int kWarpsHere = kThreads / 32;
  static_assert(kRows % (kWarpsHere * kBatchRows) == 0, "whole batches of rows per warp");
  const int thread = ptx::thread_index_here();  // its offsets computed here, not held across a kernel's loop
  const int warp = thread / 32;
  const int lane = thread % 32;
#pragma unroll 1
  for (int r0 = warp; r0 < kRows; r0 += kWarpsHere * kBatchRows) {
    // Every load of the batch's rows first, so that they wait for one round trip together.
    uint4 v[kBatchRows][kUnitsPerLane];  // [row j: r0 + 8 j][unit k: lane + 32 k]
#pragma unroll
    for (int j = 0; j < kBatchRows; ++j) {
      const int packed = m_tile * kRows + r0 + kWarpsHere * j;
#pragma unroll
      for (int k = 0; k < kUnitsPerLane; ++k) {
        const int x = lane + 32 * k;
        v[j][k] = make_uint4(0, 0, 0, 0);
        if (packed < p.rows && x < kUnitsPerRow) {
          const int chunk = x / 8;
          const int unit = x % 8;
          const int i = packed / p.group;
          const int head = kv_head * p.group + packed % p.group;
          const T* row = q + seq * p.q_stride_b + i * p.q_stride_s + head * p.q_stride_h + chunk * kChunkCols;
          if constexpr (kScoreOrder) {  // k positions [8 unit, +8): step unit / 2, k-index half unit % 2
            const auto* src =
                reinterpret_cast<const uint32_t*>(row + 4 * (unit / 2) + 2 * (unit % 2));  // pairs 8 apart
            v[j][k] = make_uint4(src[0], src[8], src[16], src[24]);
          } else {
            v[j][k] = *reinterpret_cast<const uint4*>(row + 8 * unit);
          }
        }
      }
    }
    if (r0 == warp) {
      between();
    }
#pragma unroll
    for (int j = 0; j < kBatchRows; ++j) {
      const int r = r0 + kWarpsHere * j;
      int e = 0;
      if constexpr (!std::is_same_v<T, Op>) {  // a bf16 row
        e = cuda::warp_row_exponent(v[j]);
      }
      const float down = exp2i(-e);
#pragma unroll
      for (int k = 0; k < kUnitsPerLane; ++k) {
        const int x = lane + 32 * k;
        if (x < kUnitsPerRow) {
          uint4 u = v[j][k];
          if constexpr (!std::is_same_v<T, Op>) {
            const float2 a = unpack2<T>(u.x);
            const float2 b = unpack2<T>(u.y);
            const float2 c = unpack2<T>(u.z);
            const float2 d = unpack2<T>(u.w);
            if (kRopeInT && x / 8 == kChunks - 1) {
              u = make_uint4(pack2<T>(a.x * down, a.y * down), pack2<T>(b.x * down, b.y * down),
                             pack2<T>(c.x * down, c.y * down), pack2<T>(d.x * down, d.y * down));
            } else {
              u = make_uint4(pack2<Op>(a.x * down, a.y * down), pack2<Op>(b.x * down, b.y * down),
                             pack2<Op>(c.x * down, c.y * down), pack2<Op>(d.x * down, d.y * down));
            }
          }
          *reinterpret_cast<uint4*>(reinterpret_cast<char*>(&sq[x / 8][0]) + swizzled_offset(r, 8 * (x % 8))) = u;
        }
      }
      if (lane == 0) {
        exponent[r] = e;
      }
    }
  }
  ptx::fence_proxy_async_shared();
}

// Words 0-3 of `w` from the 16 bytes at `at` (shared memory, 16-byte aligned), and words 4-7 from the
// 16 bytes after them when `both`.
__device__ __forceinline__ void read_words(const uint8_t* at, bool both, uint32_t (&w)[8]) {
  const uint4 lo = *reinterpret_cast<const uint4*>(at);
  w[0] = lo.x;
  w[1] = lo.y;
  w[2] = lo.z;
  w[3] = lo.w;
  if (both) {
    const uint4 hi = *reinterpret_cast<const uint4*>(at + 16);
    w[4] = hi.x;
    w[5] = hi.y;
    w[6] = hi.z;
    w[7] = hi.w;
  }
}

// A 656-byte key's four scales as fp16 factor pairs (f[b]: the factor of block b twice), divided by 2^g
// for g = floor(log2) of the largest (exponent_of), and 2^g (`up`), which its scores are multiplied by.
// A NaN scale stays NaN in its factor (fmaxf leaves it out of the largest).
__device__ __forceinline__ void key_factors(const uint8_t* token, uint32_t (&f)[4], float& up) {
  const float4 s = *reinterpret_cast<const float4*>(token + kScaleOffset);
  const int g = exponent_of(fmaxf(fmaxf(fabsf(s.x), fabsf(s.y)), fmaxf(fabsf(s.z), fabsf(s.w))));
  const float down = exp2i(-g);
  f[0] = pack2<__half>(s.x * down, s.x * down);
  f[1] = pack2<__half>(s.y * down, s.y * down);
  f[2] = pack2<__half>(s.z * down, s.z * down);
  f[3] = pack2<__half>(s.w * down, s.w * down);
  up = exp2i(g);
}

// sc = S^T of the tile at `tile` against q's kRows rows in `sq` (load_q_fp8's order), in fp16 products:
// chunk by chunk, thread c of a quad converts dims [64 j + 16 c, +16) of keys `key` and `key` + 8 into
// the chunk's four A fragments while the wgmma of the chunk before run (two fragment sets, so
// wait_group 1 before reusing one). A chunk's bytes are read as soon as the chunk before is converted,
// before its products are issued, so that their latency passes while those issue and the products of the
// chunk before that retire. On a 656-byte token the values are taken times their key's factors
// (key_factors) and the RoPE chunk, already in T (q's dtype), goes through a product in T: at 16 rows
// into an accumulator of its own, the key's scores then 2^g times the first plus the second; at 64 rows
// (kRopeFirst: no registers for a second accumulator) first, into sc, whose key rows are then
// multiplied by 2^-g (exact) before the e4m3 chunks add to them and by 2^g after. `after_issue` runs once
// the last products are issued, while they retire.
template <typename T, CacheFormat kFormat, int kRows = kFp8Rows, typename Hook = NoHook>
__device__ __forceinline__ void scores(const uint8_t* tile, uint32_t sq, int key, int quad_col, float (&sc)[kRows / 2],
                                       Hook&& after_issue = Hook{}) {
  constexpr int kBytes = kTokenBytes<kFormat>;
  constexpr bool kScaled = kFormat == CacheFormat::fp8_656;
  constexpr bool kRopeFirst = kScaled && kRows > kFp8Rows;
  const uint8_t* k0 = tile + key * kBytes;  // [kBytes] key `key`
  const uint8_t* k1 = k0 + 8 * kBytes;      // [kBytes] key `key` + 8
  const uint64_t q_desc = uniform_k_major_desc(sq);
  uint32_t f0[4];  // key `key`'s factor pairs, per block of 128 dims (656-byte tokens)
  uint32_t f1[4];  // key `key` + 8's
  float up0 = 1.f;
  float up1 = 1.f;
  if constexpr (kScaled) {
    key_factors(k0, f0, up0);
    key_factors(k1, f1, up1);
  }
  float rope[kRopeFirst ? 1 : kRows / 2];  // the RoPE chunk's S^T (656-byte tokens, 16 rows)
  uint32_t a[2][kStepsPerChunk][4];
  uint32_t w0[8];  // the chunk's bytes of key `key`: 16 dims of e4m3 (words 0-3), or on the RoPE part of a
                   // 656-byte token 16 dims already in T (dims 16 c + 2 m, +1 in word m)
  uint32_t w1[8];  // ... of key `key` + 8
  const auto chunk_of = [](int jj) { return kRopeFirst ? (jj + kChunks - 1) % kChunks : jj; };
  const auto read = [&](int jj) {
    const bool in_rope = kScaled && chunk_of(jj) == kChunks - 1;
    const int offset = in_rope ? kRopeOffset + 32 * quad_col : chunk_of(jj) * kChunkCols + 16 * quad_col;
    read_words(k0 + offset, in_rope, w0);
    read_words(k1 + offset, in_rope, w1);
  };
  read(0);
#pragma unroll
  for (int jj = 0; jj < kChunks; ++jj) {
    const int j = chunk_of(jj);  // the chunk of step jj
    uint32_t(&frag)[kStepsPerChunk][4] = a[jj % 2];
    const bool in_rope = kScaled && j == kChunks - 1;
    if constexpr (kRopeFirst) {
      if (jj == 1) {
        ptx::wgmma_wait<0>();  // the RoPE product: its key rows to the e4m3 chunks' scale
        ptx::pin_registers(sc);
        const float down0 = __frcp_rn(up0);
        const float down1 = __frcp_rn(up1);
#pragma unroll
        for (int i = 0; i < kRows / 2; ++i) {  // register i: key `key` + 8 (i % 4 / 2)
          sc[i] *= i % 4 < 2 ? down0 : down1;
        }
      }
    }
    if (jj >= 2) {
      ptx::wgmma_wait<1>();  // step jj - 2's products, which read frag, retired
    }
    if (in_rope) {
#pragma unroll
      for (int i = 0; i < kStepsPerChunk; ++i) {
        frag[i][0] = w0[2 * i];
        frag[i][1] = w1[2 * i];
        frag[i][2] = w0[2 * i + 1];
        frag[i][3] = w1[2 * i + 1];
      }
    } else if (kScaled) {
#pragma unroll
      for (int i = 0; i < kStepsPerChunk; ++i) {
        frag[i][0] = e4m3_pair_times(w0[i], f0[j / 2]);
        frag[i][1] = e4m3_pair_times(w1[i], f1[j / 2]);
        frag[i][2] = e4m3_pair_times<true>(w0[i], f0[j / 2]);
        frag[i][3] = e4m3_pair_times<true>(w1[i], f1[j / 2]);
      }
    } else {
#pragma unroll
      for (int i = 0; i < kStepsPerChunk; ++i) {
        frag[i][0] = ptx::cvt_f16x2_e4m3x2<false>(w0[i]);
        frag[i][1] = ptx::cvt_f16x2_e4m3x2<false>(w1[i]);
        frag[i][2] = ptx::cvt_f16x2_e4m3x2<true>(w0[i]);
        frag[i][3] = ptx::cvt_f16x2_e4m3x2<true>(w1[i]);
      }
    }
#pragma unroll
    for (int i = 0; i < kStepsPerChunk; ++i) {
      ptx::pin_registers(frag[i]);
    }
    if (jj + 1 < kChunks) {
      read(jj + 1);
    }
    ptx::wgmma_fence();
#pragma unroll
    for (int i = 0; i < kStepsPerChunk; ++i) {
      const uint64_t q_at = ptx::smem_desc_advance(q_desc, j * kRows * kRowBytes + 32 * i);
      if constexpr (kRopeFirst) {
        if (in_rope) {
          ptx::wgmma_m64nNk16_rs<T, kRows>(sc, frag[i], q_at, i > 0);
        } else {
          ptx::wgmma_m64nNk16_rs<__half, kRows>(sc, frag[i], q_at, true);
        }
      } else if (in_rope) {
        ptx::wgmma_m64nNk16_rs<T, kRows>(rope, frag[i], q_at, i > 0);
      } else {
        ptx::wgmma_m64nNk16_rs<__half, kRows>(sc, frag[i], q_at, j > 0 || i > 0);
      }
    }
    ptx::wgmma_commit();
  }
  after_issue();
  ptx::wgmma_wait<0>();
  ptx::pin_registers(sc);
  if constexpr (kRopeFirst) {
#pragma unroll
    for (int i = 0; i < kRows / 2; ++i) {
      sc[i] *= i % 4 < 2 ? up0 : up1;
    }
  } else if constexpr (kScaled) {
    ptx::pin_registers(rope);
#pragma unroll
    for (int i = 0; i < kRows / 2; ++i) {  // register i: key `key` + 8 (i % 4 / 2)
      sc[i] = sc[i] * (i % 4 < 2 ? up0 : up1) + rope[i];
    }
  }
}

// 656-byte tokens, output product: raises the value exponent g of a warp whose rows of O^T (o: kBlocks
// m64 blocks) are dims of scale block `block` (the narrow schedule: dims [128 warp, +128), block = warp)
// when a scale of that block among the tile's keys reaches 2^(g + 7), to that scale's exponent,
// rescaling the warp's rows of o; returns 2^-g. The four threads of a quad read every 4th key and meet
// by shuffles, so every quad of the warp takes the same decision. o must not be in flight.
template <int kBlocks, int kRegs>
__device__ __forceinline__ float raise_value_exponent(const uint8_t* tile, int block, int quad_col,
                                                      float (&o)[kBlocks][kRegs], int& g) {
  constexpr int kBytes = kTokenBytes<CacheFormat::fp8_656>;
  float largest = 0.f;
#pragma unroll
  for (int x = 0; x < kBlockN / 4; ++x) {
    largest = fmaxf(
        largest, fabsf(*reinterpret_cast<const float*>(tile + (4 * x + quad_col) * kBytes + kScaleOffset + 4 * block)));
  }
  largest = fmaxf(largest, __shfl_xor_sync(0xffffffffu, largest, 1));
  largest = fmaxf(largest, __shfl_xor_sync(0xffffffffu, largest, 2));
  const int e = exponent_of(largest);
  if (e >= g + 7) {
    const float factor = ptx::ex2(static_cast<float>(g - e));  // 0 from kNoExponent, when o is 0
#pragma unroll
    for (int mb = 0; mb < kBlocks; ++mb) {
#pragma unroll
      for (int i = 0; i < kRegs; ++i) {
        o[mb][i] *= factor;
      }
    }
    g = e;
  }
  return exp2i(-g);
}

// 2^g of a value exponent: what the warp's rows of o are multiplied by when written (1 while unset).
__device__ __forceinline__ float value_up(int g) { return g == kNoExponent ? 1.f : exp2i(g); }

// The output product's A fragment of m64 block mb: rows h = 0, 1 are bytes b = 2 (mb % 2) and b + 1 of
// word mb / 2 of the thread's value words, k-indices 2 c + {0, 1} those of keys w[0], w[1] and 2 c + 8 +
// {0, 1} those of keys w[2], w[3] (each key's words: w[x][word]); on 656-byte tokens times the factor
// pairs of those keys (e4m3_pair_times), else converted exactly.
template <bool kScaled, int kWords>
__device__ __forceinline__ void value_fragment(const uint32_t (&w)[4][kWords], int mb, uint32_t lo_factors,
                                               uint32_t hi_factors, uint32_t (&frag)[4]) {
  const int word = mb / 2;
  const uint32_t b = 2 * (mb % 2);  // byte of dim 2 mb (row h = 0); b + 1: dim 2 mb + 1 (h = 1)
  // Bytes b and b + 1 of keys x and x + 1, interleaved: [x's b, (x+1)'s b, x's b+1, (x+1)'s b+1].
  const uint32_t sel = b | (4 + b) << 4 | (b + 1) << 8 | (5 + b) << 12;
  const uint32_t lo_keys = __byte_perm(w[0][word], w[1][word], sel);
  const uint32_t hi_keys = __byte_perm(w[2][word], w[3][word], sel);
  if constexpr (kScaled) {
    frag[0] = e4m3_pair_times(lo_keys, lo_factors);
    frag[1] = e4m3_pair_times<true>(lo_keys, lo_factors);
    frag[2] = e4m3_pair_times(hi_keys, hi_factors);
    frag[3] = e4m3_pair_times<true>(hi_keys, hi_factors);
  } else {
    frag[0] = ptx::cvt_f16x2_e4m3x2<false>(lo_keys);
    frag[1] = ptx::cvt_f16x2_e4m3x2<true>(lo_keys);
    frag[2] = ptx::cvt_f16x2_e4m3x2<false>(hi_keys);
    frag[3] = ptx::cvt_f16x2_e4m3x2<true>(hi_keys);
  }
  ptx::pin_registers(frag);
}

// O^T += V^T P^T over the tile at `tile`, P^T in `sp` (keys in pv_key_position's order), in fp16
// products: k16 step by step, the thread (warp w, quad g, column c of the quad) converts dims
// [128 w + 16 g, +16) of keys 16 kk + 4 {0..3} + c into the step's eight A fragments (one per m64 block);
// a step's bytes are read as soon as the step before is converted, before its products are issued (as
// in scores). On 656-byte tokens each key's values are taken times its scale over 2^g, g the warp's value
// exponent (raise_value_exponent).
// A tile that ends a piece early has its tokens past the end zeroed in shared memory first (zero_tail),
// scales included.
template <CacheFormat kFormat>
__device__ __forceinline__ void accumulate(const uint8_t* tile, uint32_t sp, int warp, int quad_row, int quad_col,
                                           float (&o)[kOutBlocks][8], int& value_exponent) {
  constexpr int kBytes = kTokenBytes<kFormat>;
  constexpr bool kScaled = kFormat == CacheFormat::fp8_656;
  const uint8_t* dims = tile + 128 * warp + 16 * quad_row;  // the thread's 16 dims of key 0
  const uint64_t p_desc = uniform_k_major_desc(sp);
  float down = 1.f;
  if constexpr (kScaled) {
    down = raise_value_exponent(tile, warp, quad_col, o, value_exponent);
  }
  uint32_t a[2][kOutBlocks][4];
  uint32_t w[4][4];  // [key 16 kk + 4 e + c][word] of the step being converted
  float s[4];        // [key 16 kk + 4 e + c] its scale of the warp's block (656-byte tokens)
  const auto read = [&](int kk) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int key = 16 * kk + 4 * e + quad_col;
      const uint4 v = *reinterpret_cast<const uint4*>(dims + key * kBytes);
      w[e][0] = v.x;
      w[e][1] = v.y;
      w[e][2] = v.z;
      w[e][3] = v.w;
      s[e] = kScaled ? *reinterpret_cast<const float*>(tile + key * kBytes + kScaleOffset + 4 * warp) : 1.f;
    }
  };
  read(0);
#pragma unroll
  for (int kk = 0; kk < kBlockN / 16; ++kk) {
    uint32_t(&frag)[kOutBlocks][4] = a[kk % 2];
    if (kk >= 2) {
      ptx::wgmma_wait<1>();  // step kk - 2's products, which read frag, retired
    }
    const uint32_t lo_factors = pack2<__half>(s[0] * down, s[1] * down);  // keys e = 0, 1 (656-byte tokens)
    const uint32_t hi_factors = pack2<__half>(s[2] * down, s[3] * down);  // keys e = 2, 3
#pragma unroll
    for (int mb = 0; mb < kOutBlocks; ++mb) {
      value_fragment<kScaled>(w, mb, lo_factors, hi_factors, frag[mb]);
    }
    if (kk + 1 < kBlockN / 16) {
      read(kk + 1);  // the next step's bytes, whose latency passes while this step's products issue
    }
    ptx::wgmma_fence();
#pragma unroll
    for (int mb = 0; mb < kOutBlocks; ++mb) {
      ptx::wgmma_m64n16k16_rs<__half>(o[mb], frag[mb], ptx::smem_desc_advance(p_desc, kk * 32), true);
    }
    ptx::wgmma_commit();
  }
  ptx::wgmma_wait<0>();
#pragma unroll
  for (int mb = 0; mb < kOutBlocks; ++mb) {
    ptx::pin_registers(o[mb]);
  }
}

}  // namespace openmla::sm90::fp8
