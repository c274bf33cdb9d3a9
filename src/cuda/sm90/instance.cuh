#pragma once
// The launches of one element type's Hopper kernels; included by one file per element type
// (instantiations/).

#include "../common/cuda_check.h"
#include "../common/launch_ex.h"
#include "kernel.cuh"
#include "launch.h"

namespace openmla::sm90 {

// The decode kernels are launched with programmatic dependence (they run only on compute capability
// 9.0, which has it): a kernel may be placed on the SMs while the kernel before it on the stream
// finishes, and waits for that kernel's completion (griddepcontrol.wait, kernel.cuh) before its first
// access to global memory. It lets the combine kernel launch early in turn.
template <typename T>
void launch_asymmetric(const cuda::DecodeParams& params, const CUtensorMap& tile_map, const CUtensorMap& q_map,
                       dim3 grid, cudaStream_t stream) {
  constexpr int kBytes = sizeof(typename Traits<T>::AsymmetricShared);
  cuda::allow_shared_memory<&asymmetric_kernel<T>, kBytes>();
  cuda::launch_kernel(&asymmetric_kernel<T>, grid, dim3(kThreads), kBytes, stream, true, params, tile_map, q_map);
}

template <typename T, CacheFormat kFormat>
void launch_asymmetric_fp8(const cuda::DecodeParams& params, const CUtensorMap& raw_map, const Fp8PartMaps& part_maps,
                           dim3 grid, cudaStream_t stream) {
  constexpr int kBytes = sizeof(typename AsymmetricCta<T, kFormat>::Shared);
  cuda::allow_shared_memory<&asymmetric_fp8_kernel<T, kFormat>, kBytes>();
  cuda::launch_kernel(&asymmetric_fp8_kernel<T, kFormat>, grid, dim3(kWideFp8Threads), kBytes, stream, true, params,
                      raw_map, part_maps);
}

template <typename T, CacheFormat kFormat>
void launch_transposed(const cuda::DecodeParams& params, const CUtensorMap& raw_map, dim3 grid, cudaStream_t stream) {
  constexpr int kBytes = sizeof(typename TransposedCta<T, kFormat>::Shared);
  cuda::allow_shared_memory<&transposed_kernel<T, kFormat>, kBytes>();
  cuda::launch_kernel(&transposed_kernel<T, kFormat>, grid, dim3(kThreads), kBytes, stream, true, params, raw_map);
}

template <typename T, int kRows, CacheFormat kFormat>
void launch_narrow(const cuda::DecodeParams& params, const CUtensorMap& tile_map, dim3 grid, cudaStream_t stream) {
  constexpr int kBytes = sizeof(typename NarrowCta<T, kRows, kFormat>::Shared);
  cuda::allow_shared_memory<&narrow_kernel<T, kRows, kFormat>, kBytes>();
  cuda::launch_kernel(&narrow_kernel<T, kRows, kFormat>, grid, dim3(kThreads), kBytes, stream, true, params, tile_map);
}

template <typename T>
void launch_seesaw(const cuda::DecodeParams& params, const CUtensorMap& chunk_map, dim3 grid, cudaStream_t stream) {
  constexpr int kBytes = sizeof(typename Traits<T>::SeesawShared);
  cuda::allow_shared_memory<&seesaw_kernel<T>, kBytes>();
  cuda::launch_kernel(&seesaw_kernel<T>, grid, dim3(kThreads), kBytes, stream, true, params, chunk_map);
}

}  // namespace openmla::sm90
