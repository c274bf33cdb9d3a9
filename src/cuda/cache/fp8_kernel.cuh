#pragma once
// The cache-write kernels of the FP8 formats (docs/fp8.md): one warp per token, tokens walked with a
// grid stride, as the plain kernel. Each value is converted by core/e4m3.h, the function the CPU
// backend calls too, so that both write the same bytes.
//
// fp8_per_tensor: the lanes split the row [kv_c | k_pe] into kVec-value chunks (8 values: 16 bytes read,
// 8 written), kUnroll of them a pass as the plain kernel, and store e4m3(v / k_scale) for each; k_scale is read from
// device memory when the kernel runs, so that a captured graph replays with the value the caller has written there
// since.
//
// fp8_656: lane l owns latent values [16 l, 16 l + 16), so the 8 lanes of group l / 8 hold its 128
// values; they reduce max|v| with shuffles, each computes the group's power-of-two scale and stores its
// 16 bytes of e4m3(v / scale); lane 0 stores the 4 scales, and the RoPE part is copied bit for bit.
// kVectorized: 16-byte loads and stores (every row 16-byte aligned); otherwise one element at a time.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../../core/e4m3.h"
#include "kernel.cuh"
#include "params.h"
#include "slot.cuh"

namespace openmla::cache_write {

inline constexpr int kTokenValues = 512;  // latent values of a 656-byte token
inline constexpr int kTokenRopeAt = 528;  // byte of the first RoPE value: after 512 e4m3 and 4 fp32 scales
inline constexpr int kTokenRopeBytes = 128;
inline constexpr int kLaneValues = kTokenValues / 32;  // 16
inline constexpr int kGroupLanes = 128 / kLaneValues;  // 8

// The value of a bf16 or fp16 element (exact in fp32).
template <typename T>
__device__ __forceinline__ float to_float(uint16_t bits) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __uint_as_float(static_cast<uint32_t>(bits) << 16);
  } else {
    return __half2float(__ushort_as_half(bits));
  }
}

// The kVec bytes that kVec 2-byte elements (kernel.cuh: Chunk) become.
template <int kVec>
struct alignas(kVec) Bytes {
  uint8_t v[kVec];
};

template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) write_per_tensor_kernel(const __grid_constant__ WriteParams p) {
  const float scale = *p.k_scale;
  for_each_token(p, [&](int64_t t, int64_t slot, int lane) {
    auto* row = reinterpret_cast<Bytes<kVec>*>(row_of(p, slot, 1));  // [(d_v + d_rope) / kVec]
    move_row<kVec>(p, t, lane, row, [scale](const Chunk<kVec>& in) {
      Bytes<kVec> out;
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        out.v[i] = e4m3::from_float(e4m3::divide(to_float<T>(in.v[i]), scale));
      }
      return out;
    });
  });
}

// This lane's 16 latent values of a token, as fp32.
template <typename T, bool kVectorized>
__device__ __forceinline__ void load_lane_values(const uint16_t* latent, int lane, float (&f)[kLaneValues]) {
  const uint16_t* src = latent + lane * kLaneValues;
  if constexpr (kVectorized) {
    const Chunk<8> a = reinterpret_cast<const Chunk<8>*>(src)[0];
    const Chunk<8> b = reinterpret_cast<const Chunk<8>*>(src)[1];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      f[i] = to_float<T>(a.v[i]);
      f[8 + i] = to_float<T>(b.v[i]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < kLaneValues; ++i) {
      f[i] = to_float<T>(src[i]);
    }
  }
}

template <typename T, bool kVectorized>
__global__ void __launch_bounds__(kThreads) write_656_kernel(const __grid_constant__ WriteParams p) {
  for_each_token(p, [&](int64_t t, int64_t slot, int lane) {
    auto* row = reinterpret_cast<uint8_t*>(row_of(p, slot, 1));                      // [656]
    const auto* latent = static_cast<const uint16_t*>(p.kv_c) + t * p.kv_c_stride;   // [512]
    const auto* rope = static_cast<const uint8_t*>(p.k_pe) + t * p.k_pe_stride * 2;  // [64] as 128 bytes

    float f[kLaneValues];
    load_lane_values<T, kVectorized>(latent, lane, f);
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < kLaneValues; ++i) {
      amax = e4m3::nan_max(amax, fabsf(f[i]));
    }
#pragma unroll
    for (int offset = kGroupLanes / 2; offset > 0; offset /= 2) {
      amax = e4m3::nan_max(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
    }
    const float scale = e4m3::group_scale(amax);
    Bytes<kLaneValues> out;
#pragma unroll
    for (int i = 0; i < kLaneValues; ++i) {
      out.v[i] = e4m3::from_float(e4m3::divide(f[i], scale));
    }
    float scales[4];
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      scales[g] = __shfl_sync(0xffffffffu, scale, g * kGroupLanes);
    }

    if constexpr (kVectorized) {
      reinterpret_cast<Bytes<kLaneValues>*>(row)[lane] = out;
      if (lane == 0) {
        *reinterpret_cast<float4*>(row + kTokenValues) = make_float4(scales[0], scales[1], scales[2], scales[3]);
      }
      if (lane < kTokenRopeBytes / 16) {
        reinterpret_cast<uint4*>(row + kTokenRopeAt)[lane] = reinterpret_cast<const uint4*>(rope)[lane];
      }
    } else {
#pragma unroll
      for (int i = 0; i < kLaneValues; ++i) {
        row[lane * kLaneValues + i] = out.v[i];
      }
      if (lane == 0) {
#pragma unroll
        for (int g = 0; g < 4; ++g) {
          const uint32_t bits = __float_as_uint(scales[g]);
#pragma unroll
          for (int b = 0; b < 4; ++b) {
            row[kTokenValues + 4 * g + b] = static_cast<uint8_t>(bits >> (8 * b));  // little-endian
          }
        }
      }
#pragma unroll
      for (int b = lane; b < kTokenRopeBytes; b += 32) {
        row[kTokenRopeAt + b] = rope[b];
      }
    }
  });
}

}  // namespace openmla::cache_write
