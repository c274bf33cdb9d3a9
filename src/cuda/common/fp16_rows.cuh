#pragma once
// A bf16 query row stored in fp16 for products with FP8 cache values (which convert to fp16 exactly in
// one instruction): the row times 2^-e, e chosen from its largest |value| so that fp16 keeps bf16's
// precision; its scores are multiplied by 2^e afterwards (docs/fp8.md). Used by the portable and the
// Hopper kernels alike.

#include <cuda_bf16.h>

#include <cstdint>

namespace openmla::cuda {

// 2^e as a float, for e in [-126, 127].
__device__ __forceinline__ float exp2i(int e) { return __uint_as_float(static_cast<uint32_t>(127 + e) << 23); }

// The exponent e of a q row whose largest |value| is `amax`: the row is stored times 2^-e, its largest
// value then in [2^14, 2^15), so that fp16 holds every value of the row at bf16's precision down to
// 2^-28 amax. 0 when amax is 0 (zeros, or nothing but NaN) or inf: the row is stored unscaled, its inf
// and NaN values staying what they are. Clamped to [-100, 114] so that 2^-e and the scores' factor 2^e
// stay normal floats.
__device__ __forceinline__ int q_row_exponent(float amax) {
  if (!(amax > 0.f) || isinf(amax)) {
    return 0;
  }
  const int e = static_cast<int>(__float_as_uint(amax) >> 23) - 127 - 14;  // floor(log2 amax) - 14
  return e < -100 ? -100 : (e > 114 ? 114 : e);
}

// A bf16 pair (the lower half first) as two floats.
__device__ __forceinline__ float2 bf16_pair(uint32_t word) {
  __nv_bfloat162 v;
  memcpy(&v, &word, sizeof(v));
  return __bfloat1622float2(v);
}

// The exponent (q_row_exponent) of a bf16 row that a warp holds: each lane kUnits 16-byte units of it
// (eight values each, in any order; units past the row's end zero), the largest |value| over the warp.
template <int kUnits>
__device__ __forceinline__ int warp_row_exponent(const uint4 (&units)[kUnits]) {
  float amax = 0.f;
#pragma unroll
  for (int k = 0; k < kUnits; ++k) {
    const uint32_t words[4] = {units[k].x, units[k].y, units[k].z, units[k].w};
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float2 f = bf16_pair(words[w]);
      amax = fmaxf(amax, fmaxf(fabsf(f.x), fabsf(f.y)));  // fmaxf drops NaN; a NaN stays NaN when scaled
    }
  }
#pragma unroll
  for (int offset = 1; offset < 32; offset *= 2) {
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  }
  return q_row_exponent(amax);
}

}  // namespace openmla::cuda
