#pragma once
// Merges the split results of each sequence by LSE: lse = log(sum_k exp(lse_k)),
// out = sum_k exp(lse_k - lse) * out_k. Grid (b, row blocks): CTA (seq, y) merges query rows
// y * kWarps + warp (and every gridDim.y * kWarps-th after), one warp per row, so that every row's
// chain of dependent loads runs in parallel; sequences that were not split were written by the decode
// kernel, and their CTAs return at once. A NaN partial (NaN in q, or a sequence the decode kernel
// found bad) makes the row NaN: fmaxf alone would drop it.

#include <cstdint>
#include <type_traits>

#include "../../core/pieces.h"
#include "../common/params.h"
#include "../common/ptx.cuh"

namespace openmla::combine {

inline constexpr int kWarps = 8;
inline constexpr int kThreads = kWarps * 32;
inline constexpr int kColsPerLane = cuda::kDV / 32;  // 16: four float4 per lane

template <typename T>
__device__ __forceinline__ void store_out(T* dst, const float (&v)[4]) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]);
    const __nv_bfloat162 hi = __floats2bfloat162_rn(v[2], v[3]);
    reinterpret_cast<__nv_bfloat162*>(dst)[0] = lo;
    reinterpret_cast<__nv_bfloat162*>(dst)[1] = hi;
  } else {
    reinterpret_cast<__half2*>(dst)[0] = __floats2half2_rn(v[0], v[1]);
    reinterpret_cast<__half2*>(dst)[1] = __floats2half2_rn(v[2], v[3]);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) combine_kernel(const __grid_constant__ cuda::DecodeParams p) {
  ptx::grid_dependency_wait();  // the partials come from the decode kernel launched just before
  // The sequence's splits as the plan holds them, checked as the decode kernel checks them
  // (core/pieces.h): where they cannot be trusted, the decode kernel wrote the rows (NaN) itself.
  const int seq = blockIdx.x;
  if (!schedule::header_matches(p.plan, p.batch, p.num_parts)) {
    return;
  }
  const schedule::SeqPlan splits =
      schedule::seq_plan(p.plan, p.batch, p.num_parts, schedule::line_of(p.plan, p.batch, p.num_parts), seq);
  if (!splits.ok || splits.splits <= 1) {
    return;
  }
  const int first = splits.first_split;
  const int n = splits.splits;
  const int lane = threadIdx.x % 32;
  const int rows = p.s_q * p.h_q;
  for (int r = blockIdx.y * kWarps + threadIdx.x / 32; r < rows; r += gridDim.y * kWarps) {
    const int i = r / p.h_q;
    const int head = r % p.h_q;
    // partial_lse: [max_splits, s_q, h_q]; split k of this row at (first + k) * rows + r.
    float max_lse = -INFINITY;
    bool any_nan = false;
    for (int k = lane; k < n; k += 32) {
      const float v = p.partial_lse[static_cast<int64_t>(first + k) * rows + r];
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
        sum += expf(p.partial_lse[static_cast<int64_t>(first + k) * rows + r] - max_lse);
      }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
      sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    }
    const bool empty = max_lse == -INFINITY;
    const float lse = any_nan ? NAN : (empty ? INFINITY : max_lse + logf(sum));

    float acc[kColsPerLane] = {};
    if (!any_nan && !empty) {
      for (int k = 0; k < n; ++k) {
        const int64_t slot_row = static_cast<int64_t>(first + k) * rows + r;
        const float w = expf(p.partial_lse[slot_row] - lse);
        const float* src = p.partial_out + slot_row * cuda::kDV;  // [kDV]
#pragma unroll
        for (int j = 0; j < kColsPerLane / 4; ++j) {
          const float4 v = *reinterpret_cast<const float4*>(src + j * 128 + lane * 4);
          acc[4 * j + 0] += w * v.x;
          acc[4 * j + 1] += w * v.y;
          acc[4 * j + 2] += w * v.z;
          acc[4 * j + 3] += w * v.w;
        }
      }
    }
    T* out = static_cast<T*>(p.out) + seq * p.out_stride_b + i * p.out_stride_s + head * p.out_stride_h;  // [kDV]
#pragma unroll
    for (int j = 0; j < kColsPerLane / 4; ++j) {
      const float v[4] = {any_nan ? NAN : acc[4 * j], any_nan ? NAN : acc[4 * j + 1], any_nan ? NAN : acc[4 * j + 2],
                          any_nan ? NAN : acc[4 * j + 3]};
      store_out(out + j * 128 + lane * 4, v);
    }
    if (lane == 0) {
      p.lse[seq * p.lse_stride_b + head * p.lse_stride_h + i * p.lse_stride_s] = lse;
    }
  }
}

}  // namespace openmla::combine
