#pragma once
// The launches of one element type's Hopper kernels; included by one file per element type
// (instantiations/).

#include "../common/cuda_check.h"
#include "../common/launch_ex.h"
#include "kernel.cuh"
#include "launch.h"

namespace openmla::sm90 {

// The decode kernel follows the status reset (a memset), so it is launched without programmatic
// dependence; it lets the combine kernel launch early instead.
template <typename T>
void launch_asymmetric(const cuda::DecodeParams& params, const CUtensorMap& tile_map, dim3 grid, cudaStream_t stream) {
  constexpr int kBytes = sizeof(typename Traits<T>::AsymmetricShared);
  cuda::allow_shared_memory<&asymmetric_kernel<T>, kBytes>();
  cuda::launch_kernel(&asymmetric_kernel<T>, grid, dim3(kThreads), kBytes, stream, false, params, tile_map);
}

template <typename T, CacheFormat kFormat>
void launch_asymmetric_fp8(const cuda::DecodeParams& params, const CUtensorMap& raw_map, dim3 grid,
                           cudaStream_t stream) {
  constexpr int kBytes = sizeof(typename AsymmetricCta<T, kFormat>::Shared);
  cuda::allow_shared_memory<&asymmetric_fp8_kernel<T, kFormat>, kBytes>();
  cuda::launch_kernel(&asymmetric_fp8_kernel<T, kFormat>, grid, dim3(kWideFp8Threads), kBytes, stream, false, params,
                      raw_map);
}

template <typename T, int kRows, CacheFormat kFormat>
void launch_narrow(const cuda::DecodeParams& params, const CUtensorMap& tile_map, dim3 grid, cudaStream_t stream) {
  constexpr int kBytes = sizeof(typename NarrowCta<T, kRows, kFormat>::Shared);
  cuda::allow_shared_memory<&narrow_kernel<T, kRows, kFormat>, kBytes>();
  cuda::launch_kernel(&narrow_kernel<T, kRows, kFormat>, grid, dim3(kThreads), kBytes, stream, false, params, tile_map);
}

template <typename T>
void launch_seesaw(const cuda::DecodeParams& params, const CUtensorMap& low_map, const CUtensorMap& high_map, dim3 grid,
                   cudaStream_t stream) {
  constexpr int kBytes = sizeof(typename Traits<T>::SeesawShared);
  cuda::allow_shared_memory<&seesaw_kernel<T>, kBytes>();
  cuda::launch_kernel(&seesaw_kernel<T>, grid, dim3(kThreads), kBytes, stream, false, params, low_map, high_map);
}

}  // namespace openmla::sm90
