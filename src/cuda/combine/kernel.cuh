#pragma once
// Merges the split results of each sequence by LSE: lse = log(sum_k exp(lse_k)),
// out = sum_k exp(lse_k - lse) * out_k. Grid (b, row groups), kWarps warps per CTA; kWays warps share
// one query row (a power of two <= kWarps, chosen by the host from the expected splits per sequence):
// warp w takes row (group's first row + w / kWays) and the splits k = w % kWays, w % kWays + kWays, ...,
// so that a row with many splits waits for a few L2 round trips, not one per split.
// The kWays partial sums meet in shared memory and are added in the fixed order 0, 1, ..., kWays - 1 (the
// result depends only on the shapes: bitwise deterministic). Sequences that were not split were written
// by the decode kernel, and their CTAs return at once. A NaN partial (NaN in q, or a sequence the decode
// kernel found bad) makes the row NaN: fmaxf alone would drop it.

#include <cstdint>
#include <type_traits>

#include "../../core/pieces.h"
#include "../common/params.h"
#include "../common/ptx.cuh"

namespace openmla::combine {

inline constexpr int kWarps = 8;
inline constexpr int kThreads = kWarps * 32;
inline constexpr int kCtasPerSm = 4;  // resident at once (64 registers a thread): launch.cu's warp budget counts on it
inline constexpr int kVecsPerLane = cuda::kDV / 32 / 4;  // 4 float4 per lane cover a row's 512 values

template <typename T>
__device__ __forceinline__ void store_out(T* dst, const float4& v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    reinterpret_cast<__nv_bfloat162*>(dst)[0] = __floats2bfloat162_rn(v.x, v.y);
    reinterpret_cast<__nv_bfloat162*>(dst)[1] = __floats2bfloat162_rn(v.z, v.w);
  } else {
    reinterpret_cast<__half2*>(dst)[0] = __floats2half2_rn(v.x, v.y);
    reinterpret_cast<__half2*>(dst)[1] = __floats2half2_rn(v.z, v.w);
  }
}

__device__ __forceinline__ void add_scaled(float4& acc, float w, const float4& v) {
  acc.x += w * v.x;
  acc.y += w * v.y;
  acc.z += w * v.z;
  acc.w += w * v.w;
}

// The union LSE of row r over the sequence's n splits (every lane gets it); any_nan / empty as the
// merge rule says.
struct RowLse {
  float lse;
  bool any_nan;
  bool empty;
};

__device__ __forceinline__ RowLse row_lse(const float* partial_lse, int64_t first, int n, int rows, int r, int lane) {
  // partial_lse: [max_splits, rows]; split k of row r at (first + k) * rows + r.
  float max_lse = -INFINITY;
  bool any_nan = false;
  for (int k = lane; k < n; k += 32) {
    const float v = partial_lse[(first + k) * rows + r];
    any_nan = any_nan || isnan(v);
    max_lse = fmaxf(max_lse, v);
  }
  any_nan = __any_sync(0xffffffffu, any_nan);
  for (int offset = 16; offset > 0; offset /= 2) {
    max_lse = fmaxf(max_lse, __shfl_xor_sync(0xffffffffu, max_lse, offset));
  }
  float sum = 0.f;
  if (max_lse != -INFINITY) {
    for (int k = lane; k < n; k += 32) {
      sum += expf(partial_lse[(first + k) * rows + r] - max_lse);
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  }
  const bool empty = max_lse == -INFINITY;
  return RowLse{any_nan ? NAN : (empty ? INFINITY : max_lse + logf(sum)), any_nan, empty};
}

// The lane's values of partial row `slot_row` ((first + k) * rows + r for split k of row r): its columns
// lane * 4 + 128 * j at [j * 32].
__device__ __forceinline__ const float4* lane_values(const cuda::DecodeParams& p, int64_t slot_row, int lane) {
  return reinterpret_cast<const float4*>(p.partial_out + slot_row * cuda::kDV) + lane;  // [kDV / 4]
}

// Split `way` of row r (way < n): its LSE and the lane's columns, loaded before the row's LSE is known
// so that they travel with row_lse's loads instead of one round trip after them.
struct FirstSplit {
  float lse;
  float4 out[kVecsPerLane];
};

__device__ __forceinline__ FirstSplit load_first_split(const cuda::DecodeParams& p, int64_t first, int rows, int r,
                                                       int way, int lane) {
  const int64_t slot_row = (first + way) * rows + r;
  const float4* part_out = lane_values(p, slot_row, lane);
  FirstSplit f;
  f.lse = p.partial_lse[slot_row];
#pragma unroll
  for (int j = 0; j < kVecsPerLane; ++j) {
    f.out[j] = part_out[j * 32];
  }
  return f;
}

// acc = sum over the splits k = way, way + ways, ... < n of exp(lse_k - lse) * out_k (the lane's columns
// lane * 4 + 128 * j), in increasing k; split `way` (way < n) is `split`, loaded already.
__device__ __forceinline__ void weighted_sum(const cuda::DecodeParams& p, int64_t first, int n, int rows, int r,
                                             float lse, int way, int ways, int lane, const FirstSplit& split,
                                             float4 (&acc)[kVecsPerLane]) {
  const float w0 = expf(split.lse - lse);
#pragma unroll
  for (int j = 0; j < kVecsPerLane; ++j) {
    add_scaled(acc[j], w0, split.out[j]);
  }
  const int64_t slot_row = (first + way + ways) * rows + r;
  const float* part_lse = p.partial_lse + slot_row;  // split way + ways
  const float4* part_out = lane_values(p, slot_row, lane);
  const int64_t lse_step = static_cast<int64_t>(rows) * ways;  // from split k to split k + ways
  for (int k = way + ways; k < n; k += ways) {
    const float w = expf(*part_lse - lse);
#pragma unroll
    for (int j = 0; j < kVecsPerLane; ++j) {
      add_scaled(acc[j], w, part_out[j * 32]);
    }
    part_lse += lse_step;
    part_out += lse_step * (cuda::kDV / 4);
  }
}

template <typename T, int kWays>
__global__ void __launch_bounds__(kThreads, kCtasPerSm) combine_kernel(const __grid_constant__ cuda::DecodeParams p) {
  __shared__ float4 shares[kWarps][cuda::kDV / 4];  // [warp, kDV]: each warp's sum over its splits
  // The sequence's splits as the plan holds them, checked as the decode kernel checks them
  // (core/pieces.h): where they cannot be trusted, the decode kernel wrote the rows (NaN) itself. The
  // plan is read before the wait: the decode kernel does not write it, and it lets this kernel launch
  // only from its end, after its own wait for whatever wrote the plan.
  const int seq = blockIdx.x;
  if (!schedule::header_matches(p.plan, p.batch, p.num_parts)) {
    return;
  }
  const schedule::SeqPlan splits =
      schedule::seq_plan(p.plan, p.batch, p.num_parts, schedule::line_of(p.plan, p.batch, p.num_parts), seq);
  if (!splits.ok || splits.splits <= 1) {
    return;
  }
  ptx::grid_dependency_wait();  // the partials come from the decode kernel launched just before
  const int64_t first = splits.first_split;
  const int n = splits.splits;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int way = warp % kWays;
  constexpr int kRowsPerCta = kWarps / kWays;
  const int rows = p.s_q * p.h_q;
  // Every warp of the CTA runs the same iterations, so the barriers below are uniform.
  for (int group = blockIdx.y * kRowsPerCta; group < rows; group += gridDim.y * kRowsPerCta) {
    const int r = group + warp / kWays;
    const bool active = r < rows;
    float4 acc[kVecsPerLane] = {};
    RowLse row{0.f, false, true};
    if (active) {
      const bool has_split = way < n;
      const FirstSplit split = has_split ? load_first_split(p, first, rows, r, way, lane) : FirstSplit{};
      row = row_lse(p.partial_lse, first, n, rows, r, lane);
      if (has_split && !row.any_nan && !row.empty) {
        weighted_sum(p, first, n, rows, r, row.lse, way, kWays, lane, split, acc);
      }
    }
    if constexpr (kWays > 1) {
      __syncthreads();  // the previous group's shares are read
      if (active && way != 0) {
#pragma unroll
        for (int j = 0; j < kVecsPerLane; ++j) {
          shares[warp][j * 32 + lane] = acc[j];
        }
      }
      __syncthreads();
      if (active && way == 0) {
        for (int other = 1; other < kWays; ++other) {
#pragma unroll
          for (int j = 0; j < kVecsPerLane; ++j) {
            add_scaled(acc[j], 1.f, shares[warp + other][j * 32 + lane]);
          }
        }
      }
    }
    if (!active || way != 0) {
      continue;
    }
    const int i = r / p.h_q;
    const int head = r % p.h_q;
    T* out = static_cast<T*>(p.out) + seq * p.out_stride_b + i * p.out_stride_s + head * p.out_stride_h;  // [kDV]
#pragma unroll
    for (int j = 0; j < kVecsPerLane; ++j) {
      const float4 v = row.any_nan ? make_float4(NAN, NAN, NAN, NAN) : acc[j];
      store_out(out + (j * 32 + lane) * 4, v);
    }
    if (lane == 0) {
      p.lse[seq * p.lse_stride_b + head * p.lse_stride_h + i * p.lse_stride_s] = row.lse;
    }
  }
}

}  // namespace openmla::combine
