#include <algorithm>

#include "../common/launch_ex.h"
#include "kernel.cuh"
#include "launch.h"

namespace openmla::lse_merge {

namespace {

inline constexpr int64_t kMaxBlocks = 65536;  // the grid-stride loop covers rows beyond this

template <typename TIn, typename TOut>
void launch_typed(const MergeParams& p, bool vectorized, cudaStream_t stream) {
  const int64_t rows = p.b * p.s_q * p.h_q;
  const dim3 grid(static_cast<unsigned>(std::min((rows + kWarps - 1) / kWarps, kMaxBlocks)));
  if (vectorized) {
    cuda::launch_kernel(&merge_kernel<TIn, TOut, 4>, grid, dim3(kThreads), 0, stream, false, p);
  } else {
    cuda::launch_kernel(&merge_kernel<TIn, TOut, 1>, grid, dim3(kThreads), 0, stream, false, p);
  }
}

template <typename TIn>
void launch_for_out(const MergeParams& p, DType out, bool vectorized, cudaStream_t stream) {
  switch (out) {
    case DType::bf16:
      return launch_typed<TIn, __nv_bfloat16>(p, vectorized, stream);
    case DType::fp16:
      return launch_typed<TIn, __half>(p, vectorized, stream);
    default:
      return launch_typed<TIn, float>(p, vectorized, stream);
  }
}

}  // namespace

void launch_merge(const MergeParams& params, DType in, DType out, bool vectorized, cudaStream_t stream) {
  switch (in) {
    case DType::bf16:
      return launch_for_out<__nv_bfloat16>(params, out, vectorized, stream);
    case DType::fp16:
      return launch_for_out<__half>(params, out, vectorized, stream);
    default:
      return launch_for_out<float>(params, out, vectorized, stream);
  }
}

}  // namespace openmla::lse_merge
