// The Hopper kernels for bf16 q and cache.
#include "../instance.cuh"

namespace openmla::sm90 {

template void launch_asymmetric<__nv_bfloat16>(const cuda::DecodeParams&, const CUtensorMap&, const CUtensorMap&, dim3,
                                               cudaStream_t);
template void launch_narrow<__nv_bfloat16, 16, CacheFormat::plain>(const cuda::DecodeParams&, const CUtensorMap&, dim3,
                                                                   cudaStream_t);
template void launch_narrow<__nv_bfloat16, kNarrowMaxRows, CacheFormat::plain>(const cuda::DecodeParams&,
                                                                               const CUtensorMap&, dim3, cudaStream_t);
template void launch_seesaw<__nv_bfloat16>(const cuda::DecodeParams&, const CUtensorMap&, dim3, cudaStream_t);

}  // namespace openmla::sm90
