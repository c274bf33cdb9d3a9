// The Hopper kernel for bf16 q on the two FP8 caches (the narrow schedule, 16 rows).
#include "../instance.cuh"

namespace openmla::sm90 {

template void launch_narrow<__nv_bfloat16, kFp8Rows, CacheFormat::fp8_per_tensor>(const cuda::DecodeParams&,
                                                                                  const CUtensorMap&, dim3,
                                                                                  cudaStream_t);
template void launch_narrow<__nv_bfloat16, kFp8Rows, CacheFormat::fp8_656>(const cuda::DecodeParams&,
                                                                           const CUtensorMap&, dim3, cudaStream_t);

}  // namespace openmla::sm90
