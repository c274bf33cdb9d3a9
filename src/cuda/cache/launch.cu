#include <algorithm>

#include "../common/launch_ex.h"
#include "kernel.cuh"
#include "launch.h"

namespace openmla::cache_write {

namespace {

inline constexpr int64_t kMaxBlocks = 65536;  // the grid-stride loop covers tokens beyond this

}  // namespace

void launch_write_cache(const WriteParams& p, bool vectorized, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(std::min((p.tokens + kWarps - 1) / kWarps, kMaxBlocks)));
  if (vectorized) {
    cuda::launch_kernel(&write_cache_kernel<8>, grid, dim3(kThreads), 0, stream, false, p);
  } else {
    cuda::launch_kernel(&write_cache_kernel<1>, grid, dim3(kThreads), 0, stream, false, p);
  }
}

}  // namespace openmla::cache_write
