#pragma once
// The merge kernel: one warp per row (sequence, query token, head). Every lane computes the row's
// union LSE from the n part LSEs (a few broadcast loads), then the lanes split the d_v columns,
// kVec adjacent columns each, and sum the parts' rows weighted by exp(l_k - lse) in fp32. Rows are
// walked with a grid stride, so any b * s_q * h_q fits the grid.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../../core/merge_row.h"
#include "params.h"

namespace openmla::lse_merge {

inline constexpr int kWarps = 8;
inline constexpr int kThreads = kWarps * 32;

// kVec elements moved by one load or store (8 or 16 bytes for kVec = 4).
template <typename T, int kVec>
struct alignas(sizeof(T) * kVec) Pack {
  T v[kVec];
};

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(x);
  } else {
    return __float2bfloat16_rn(x);
  }
}

template <typename TIn, typename TOut, int kVec>
__global__ void __launch_bounds__(kThreads) merge_kernel(const __grid_constant__ MergeParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t rows = p.b * p.s_q * p.h_q;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32; r < rows; r += warps) {
    const int64_t h = r % p.h_q;
    const int64_t i = r / p.h_q % p.s_q;
    const int64_t seq = r / (p.h_q * p.s_q);
    const float* row_lse = p.lse_parts + seq * p.lp_stride_b + h * p.lp_stride_h + i * p.lp_stride_s;  // [n]
    const float lse = union_lse(row_lse, p.lp_stride_n, p.n);
    const bool some = contributes(lse);
    // A NaN row stays NaN; a row no part saw stays 0.
    const float start = is_nan(lse) ? NAN : 0.0f;
    const TIn* src = static_cast<const TIn*>(p.out_parts) + seq * p.op_stride_b + i * p.op_stride_s +
                     h * p.op_stride_h;  // [n, d_v] with stride op_stride_n
    TOut* dst = static_cast<TOut*>(p.out) + seq * p.out_stride_b + i * p.out_stride_s + h * p.out_stride_h;  // [d_v]
    for (int64_t c = static_cast<int64_t>(lane) * kVec; c < p.d_v; c += 32 * kVec) {
      float acc[kVec];
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        acc[j] = start;
      }
      for (int64_t k = 0; k < p.n; ++k) {
        const float l = row_lse[k * p.lp_stride_n];
        if (some && contributes(l)) {
          const float w = part_weight(l, lse);
          const Pack<TIn, kVec> v = *reinterpret_cast<const Pack<TIn, kVec>*>(src + k * p.op_stride_n + c);
#pragma unroll
          for (int j = 0; j < kVec; ++j) {
            acc[j] = fmaf(w, to_float(v.v[j]), acc[j]);
          }
        }
      }
      Pack<TOut, kVec> o;
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        o.v[j] = from_float<TOut>(acc[j]);
      }
      *reinterpret_cast<Pack<TOut, kVec>*>(dst + c) = o;
    }
    if (lane == 0) {
      p.lse[seq * p.lse_stride_b + h * p.lse_stride_h + i * p.lse_stride_s] = lse;
    }
  }
}

}  // namespace openmla::lse_merge
