#pragma once
// e4m3 -> the query dtype, eight values (one 16-byte chunk of a T tile) at a time. Every e4m3 value is
// exact in fp16 and in bf16 (3 mantissa bits, exponents 2^-9 .. 2^8), so an unscaled conversion is exact;
// a scaled one (the 656-byte token's per-128 scales) is rounded once, from fp32, to T.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

#include "fragment.cuh"

namespace openmla::portable::dequant {

// Two e4m3 values (the low byte first) as fp16x2, exactly (cvt on sm_89+, a short bit sequence before).
__device__ __forceinline__ __half2 e4m3x2_to_half2(uint32_t two) {
  const __half2_raw raw = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two), __NV_E4M3);
  return __half2(raw);
}

// Eight e4m3 values (bytes of `v`, lowest first) as eight T, each times `scale` when kScaled.
template <typename T, bool kScaled>
__device__ __forceinline__ uint4 e4m3x8(uint2 v, float scale) {
  uint32_t out[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint32_t word = i < 2 ? v.x : v.y;
    const __half2 h = e4m3x2_to_half2(i % 2 == 0 ? word & 0xffffu : word >> 16);
    if constexpr (std::is_same_v<T, __half> && !kScaled) {
      out[i] = *reinterpret_cast<const uint32_t*>(&h);
    } else {
      const float2 f = __half22float2(h);
      out[i] = kScaled ? fragment::pack2<T>(f.x * scale, f.y * scale) : fragment::pack2<T>(f.x, f.y);
    }
  }
  return make_uint4(out[0], out[1], out[2], out[3]);
}

}  // namespace openmla::portable::dequant
