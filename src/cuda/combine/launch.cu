#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../common/launch_ex.h"
#include "kernel.cuh"
#include "launch.h"

namespace openmla::combine {

void launch_combine(const cuda::DecodeParams& params, DType dtype, bool dependent_launch, cudaStream_t stream) {
  const int64_t row_blocks = (static_cast<int64_t>(params.s_q) * params.h_q + kWarps - 1) / kWarps;
  const int64_t grid_y = row_blocks < cuda::kMaxGridYZ ? row_blocks : cuda::kMaxGridYZ;
  const dim3 grid(static_cast<unsigned>(params.batch), static_cast<unsigned>(grid_y));
  if (dtype == DType::bf16) {
    cuda::launch_kernel(&combine_kernel<__nv_bfloat16>, grid, dim3(kThreads), 0, stream, dependent_launch, params);
  } else {
    cuda::launch_kernel(&combine_kernel<__half>, grid, dim3(kThreads), 0, stream, dependent_launch, params);
  }
}

}  // namespace openmla::combine
