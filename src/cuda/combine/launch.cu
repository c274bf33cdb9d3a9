#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../common/launch_ex.h"
#include "kernel.cuh"
#include "launch.h"

namespace openmla::combine {

int warps_per_row(int64_t batch, int64_t rows, int64_t num_parts) {
  // Splits per sequence on average (a plan of num_parts parts has at most batch + num_parts - 1), and no
  // more warps than an H100 or H200 holds at once (kCtasPerSm CTAs of kWarps warps on each of 132 SMs).
  constexpr int64_t kMaxWarps = 4096;
  const int64_t splits = (batch + num_parts - 1) / batch;
  int ways = 1;
  while (ways < kWarps && 2 * ways <= splits && batch * rows * 2 * ways <= kMaxWarps) {
    ways *= 2;
  }
  return ways;
}

namespace {

template <typename T>
void launch_with_ways(const cuda::DecodeParams& params, int ways, dim3 grid, bool dependent_launch,
                      cudaStream_t stream) {
  switch (ways) {
    case 1:
      cuda::launch_kernel(&combine_kernel<T, 1>, grid, dim3(kThreads), 0, stream, dependent_launch, params);
      break;
    case 2:
      cuda::launch_kernel(&combine_kernel<T, 2>, grid, dim3(kThreads), 0, stream, dependent_launch, params);
      break;
    case 4:
      cuda::launch_kernel(&combine_kernel<T, 4>, grid, dim3(kThreads), 0, stream, dependent_launch, params);
      break;
    default:
      cuda::launch_kernel(&combine_kernel<T, 8>, grid, dim3(kThreads), 0, stream, dependent_launch, params);
      break;
  }
}

}  // namespace

void launch_combine(const cuda::DecodeParams& params, DType dtype, bool dependent_launch, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(params.s_q) * params.h_q;
  const int ways = warps_per_row(params.batch, rows, params.num_parts);
  const int64_t rows_per_cta = kWarps / ways;
  const int64_t row_groups = (rows + rows_per_cta - 1) / rows_per_cta;
  const int64_t grid_y = row_groups < cuda::kMaxGridYZ ? row_groups : cuda::kMaxGridYZ;
  const dim3 grid(static_cast<unsigned>(params.batch), static_cast<unsigned>(grid_y));
  if (dtype == DType::bf16) {
    launch_with_ways<__nv_bfloat16>(params, ways, grid, dependent_launch, stream);
  } else {
    launch_with_ways<__half>(params, ways, grid, dependent_launch, stream);
  }
}

}  // namespace openmla::combine
