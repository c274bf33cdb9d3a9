#include "launch.h"

#include <string>

#include "../common/cuda_check.h"
#include "../common/launch_ex.h"
#include "kernel.cuh"

namespace openmla::portable {

namespace {

template <typename T, int kMSlices, int kKeys>
void launch(const cuda::DecodeParams& params, dim3 grid, bool dependent_launch, cudaStream_t stream) {
  using Tr = Traits<T, kMSlices, kKeys>;
  constexpr int kSmem = sizeof(typename Tr::Shared);
  auto* kernel = &decode_kernel<Tr>;
  OPENMLA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  cuda::launch_kernel(kernel, grid, dim3(kThreads), kSmem, stream, dependent_launch, params);
}

template <int kMSlices, int kKeys>
int shared_bytes() {
  return sizeof(typename Traits<__nv_bfloat16, kMSlices, kKeys>::Shared);
}

template <int kMSlices, int kKeys>
int occupancy(int smem) {
  auto* kernel = &decode_kernel<Traits<__nv_bfloat16, kMSlices, kKeys>>;
  OPENMLA_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  int ctas = 0;
  OPENMLA_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ctas, kernel, kThreads, smem));
  return ctas;
}

template <int kKeys>
int smem_of(int m_slices) {
  return m_slices == 4 ? shared_bytes<4, kKeys>() : m_slices == 2 ? shared_bytes<2, kKeys>() : shared_bytes<1, kKeys>();
}

template <int kKeys>
int occupancy_of(int m_slices, int smem) {
  return m_slices == 4 ? occupancy<4, kKeys>(smem) : m_slices == 2 ? occupancy<2, kKeys>(smem) : occupancy<1, kKeys>(smem);
}

template <typename T, int kKeys>
void launch_keys(const cuda::DecodeParams& params, int m_slices, dim3 grid, bool dependent_launch,
                 cudaStream_t stream) {
  if (m_slices == 4) {
    launch<T, 4, kKeys>(params, grid, dependent_launch, stream);
  } else if (m_slices == 2) {
    launch<T, 2, kKeys>(params, grid, dependent_launch, stream);
  } else {
    launch<T, 1, kKeys>(params, grid, dependent_launch, stream);
  }
}

template <typename T>
void launch_dtype(const cuda::DecodeParams& params, const KernelConfig& config, dim3 grid,
                  bool dependent_launch, cudaStream_t stream) {
  if (config.keys == 64) {
    launch_keys<T, 64>(params, config.m_slices, grid, dependent_launch, stream);
  } else {
    launch_keys<T, 32>(params, config.m_slices, grid, dependent_launch, stream);
  }
}

}  // namespace

KernelConfig select_config(int64_t rows, int device) {
  int max_smem = 0;
  OPENMLA_CUDA_CHECK(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const int wanted = rows <= 16 ? 1 : rows <= 32 ? 2 : 4;
  for (int m = wanted; m >= 1; m /= 2) {
    if (const int smem = smem_of<64>(m); smem <= max_smem) {
      return KernelConfig{m, 64, smem, occupancy_of<64>(m, smem)};
    }
  }
  for (int m = wanted; m >= 1; m /= 2) {
    if (const int smem = smem_of<32>(m); smem <= max_smem) {
      return KernelConfig{m, 32, smem, occupancy_of<32>(m, smem)};
    }
  }
  throw Error("openmla: device: expected a GPU with at least " + std::to_string(smem_of<32>(1)) +
              " bytes of shared memory per block, given one with " + std::to_string(max_smem));
}

int64_t m_tiles(int64_t rows, const KernelConfig& config) {
  const int64_t m = 16 * config.m_slices;
  return (rows + m - 1) / m;
}

void launch_decode(const cuda::DecodeParams& params, DType dtype, const KernelConfig& config,
                   int64_t num_parts, int64_t h_kv, bool dependent_launch, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(m_tiles(params.rows, config)), static_cast<unsigned>(num_parts),
                  static_cast<unsigned>(h_kv));
  if (dtype == DType::bf16) {
    launch_dtype<__nv_bfloat16>(params, config, grid, dependent_launch, stream);
  } else {
    launch_dtype<__half>(params, config, grid, dependent_launch, stream);
  }
}

}  // namespace openmla::portable
