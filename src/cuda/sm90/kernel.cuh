#pragma once
// The Hopper MLA decode kernels (sm_90a), one per consumer schedule (config.h: Schedule).
//
// Grid: (m_tiles, num_parts, h_kv), 256 threads = two consumer warpgroups (384 on an FP8 cache with
// more than 16 rows: a third converts the tiles), one CTA per SM (shared memory). CTA
// (m, part, g) computes query rows [64 m, 64 m + 64) (narrow: all rows, m = 0) of KV head g (row
// r = i * group + head, i < s_q) for every sequence piece of plan part `part`: a piece that is a whole
// sequence writes out/lse, a piece of a split sequence its normalized partial result and lse in the
// workspace for the combine kernel (the portable kernel's format).

#include <cuda.h>

#include "../common/params.h"
#include "../common/ptx.cuh"
#include "../common/ptx/setmaxnreg.cuh"
#include "../common/walk.cuh"
#include "arch.h"
#include "asymmetric.cuh"
#include "narrow.cuh"
#include "part_maps.h"
#include "seesaw.cuh"
#include "traits.h"
#include "transposed.cuh"

namespace openmla::sm90 {

// Every piece of plan part blockIdx.y, in order, with the schedule `cta`.
template <typename Cta>
__device__ __forceinline__ void run_part(const cuda::DecodeParams& p, Cta& cta, cuda::SharedWalk& walk) {
  ptx::grid_dependency_wait();  // every input may come from the kernel before (launched dependent: instance.cuh)
  cuda::start_status_shared(p, walk);
  cta.init();
  const auto run = [&](const Piece& piece) { cta.run(piece); };
  if constexpr (requires { cta.warm(nullptr); }) {
    cuda::for_each_piece_shared(p, static_cast<int>(blockIdx.y), walk, run,
                                [&](const int32_t* fields) { cta.warm(fields); });
  } else {
    cuda::for_each_piece_shared(p, static_cast<int>(blockIdx.y), walk, run);
  }
  if constexpr (requires { cta.end_part(); }) {
    cta.end_part();
  }
  ptx::launch_dependents();  // the combine kernel may start launching
}

// tile_map: boxes of 64 tokens x 9 chunks (sm90/launch.h make_cache_map); q_map: an m-tile's q rows in one
// box (make_q_map), read where p.q_by_tma.
template <typename T>
__global__ void __launch_bounds__(kThreads, 1)
    asymmetric_kernel(const __grid_constant__ cuda::DecodeParams p, const __grid_constant__ CUtensorMap tile_map,
                      const __grid_constant__ CUtensorMap q_map) {
#if OPENMLA_SM90_DEVICE_CODE
  extern __shared__ __align__(1024) char smem[];
  auto& s = *reinterpret_cast<typename Traits<T>::AsymmetricShared*>(smem);
  AsymmetricCta<T> cta{p, &tile_map, nullptr, s, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.z), &q_map};
  run_part(p, cta, s.walk);
#endif
}

// The asymmetric schedule on an FP8 cache: 384 threads, the third warpgroup the converter. Each role
// walks the plan part under its own register budget (config.h), compiled apart. raw_map: boxes of the
// tile's raw bytes (sm90/launch.h make_fp8_chunk_map); part_maps: on 656-byte tokens those of its
// scales and RoPE values (make_fp8_part_maps).
template <typename T, CacheFormat kFormat>
__global__ void __launch_bounds__(kWideFp8Threads, 1)
    asymmetric_fp8_kernel(const __grid_constant__ cuda::DecodeParams p, const __grid_constant__ CUtensorMap raw_map,
                          const __grid_constant__ Fp8PartMaps part_maps) {
#if OPENMLA_SM90_DEVICE_CODE
  using Cta = AsymmetricCta<T, kFormat>;
  extern __shared__ __align__(1024) char smem[];
  auto& s = *reinterpret_cast<typename Cta::Shared*>(smem);
  Cta cta{p, &raw_map, &part_maps.maps[0], s, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.z)};
  ptx::grid_dependency_wait();  // as in run_part
  cuda::start_status_shared(p, s.walk);
  cta.init();
  const int part = static_cast<int>(blockIdx.y);
  if (threadIdx.x >= kThreads) {
    ptx::setmaxnreg_dec<kConverterRegisters[Cta::kConsumersIssue]>();
    cuda::for_each_piece_shared<false, kCta>(p, part, s.walk,
                                             [&](const Piece& piece) { cta.template run<Role::converter>(piece); });
  } else {
    ptx::setmaxnreg_inc<kConsumerRegisters[Cta::kConsumersIssue]>();
    cuda::for_each_piece_shared<true, kCta>(p, part, s.walk,
                                            [&](const Piece& piece) { cta.template run<Role::consumer>(piece); });
  }
  ptx::launch_dependents();
#endif
}

// tile_map: boxes of 64 tokens x 9 chunks (a plain cache) or of 64 raw tokens (FP8); kRows (16 or 32;
// 16 on an FP8 cache) >= the decode's packed rows per KV head.
template <typename T, int kRows, CacheFormat kFormat>
__global__ void __launch_bounds__(kThreads, 1)
    narrow_kernel(const __grid_constant__ cuda::DecodeParams p, const __grid_constant__ CUtensorMap tile_map) {
#if OPENMLA_SM90_DEVICE_CODE
  using Cta = NarrowCta<T, kRows, kFormat>;
  extern __shared__ __align__(1024) char smem[];
  auto& s = *reinterpret_cast<typename Cta::Shared*>(smem);
  Cta cta{p, &tile_map, s, static_cast<int>(blockIdx.z)};
  run_part(p, cta, s.walk);
#endif
}

// The transposed schedule on an FP8 cache (more than 16 rows, OPENMLA_SM90_FP8_WIDE=transposed): 256
// threads, grid as the asymmetric schedule's. raw_map: boxes of 64 raw tokens (make_fp8_cache_map).
template <typename T, CacheFormat kFormat>
__global__ void __launch_bounds__(kThreads, 1)
    transposed_kernel(const __grid_constant__ cuda::DecodeParams p, const __grid_constant__ CUtensorMap raw_map) {
#if OPENMLA_SM90_DEVICE_CODE
  using Cta = TransposedCta<T, kFormat>;
  extern __shared__ __align__(1024) char smem[];
  auto& s = *reinterpret_cast<typename Cta::Shared*>(smem);
  Cta cta{p, &raw_map, s, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.z)};
  run_part(p, cta, s.walk);
#endif
}

// chunk_map: boxes of 64 tokens x 1 chunk (make_cache_map).
template <typename T>
__global__ void __launch_bounds__(kThreads, 1)
    seesaw_kernel(const __grid_constant__ cuda::DecodeParams p, const __grid_constant__ CUtensorMap chunk_map) {
#if OPENMLA_SM90_DEVICE_CODE
  extern __shared__ __align__(1024) char smem[];
  auto& s = *reinterpret_cast<typename Traits<T>::SeesawShared*>(smem);
  SeesawCta<T> cta{p, &chunk_map, s, static_cast<int>(blockIdx.x), static_cast<int>(blockIdx.z)};
  run_part(p, cta, s.walk);
#endif
}

}  // namespace openmla::sm90
