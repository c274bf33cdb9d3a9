#include <algorithm>

#include "../common/launch_ex.h"
#include "fp8_kernel.cuh"
#include "launch.h"

namespace openmla::cache_write {

namespace {

inline constexpr int64_t kMaxBlocks = 65536;  // the grid-stride loop covers tokens beyond this

template <typename T>
void launch_fp8(const WriteParams& p, CacheFormat format, bool vectorized, dim3 grid, cudaStream_t stream) {
  if (format == CacheFormat::fp8_per_tensor) {
    if (vectorized) {
      cuda::launch_kernel(&write_per_tensor_kernel<T, 8>, grid, dim3(kThreads), 0, stream, false, p);
    } else {
      cuda::launch_kernel(&write_per_tensor_kernel<T, 1>, grid, dim3(kThreads), 0, stream, false, p);
    }
  } else if (vectorized) {
    cuda::launch_kernel(&write_656_kernel<T, true>, grid, dim3(kThreads), 0, stream, false, p);
  } else {
    cuda::launch_kernel(&write_656_kernel<T, false>, grid, dim3(kThreads), 0, stream, false, p);
  }
}

}  // namespace

void launch_write_cache(const WriteParams& p, CacheFormat format, DType dtype, bool vectorized, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(std::min((p.tokens + kWarps - 1) / kWarps, kMaxBlocks)));
  if (format == CacheFormat::plain) {
    if (vectorized) {
      cuda::launch_kernel(&write_cache_kernel<8>, grid, dim3(kThreads), 0, stream, false, p);
    } else {
      cuda::launch_kernel(&write_cache_kernel<1>, grid, dim3(kThreads), 0, stream, false, p);
    }
  } else if (dtype == DType::bf16) {
    launch_fp8<__nv_bfloat16>(p, format, vectorized, grid, stream);
  } else {
    launch_fp8<__half>(p, format, vectorized, grid, stream);
  }
}

}  // namespace openmla::cache_write
