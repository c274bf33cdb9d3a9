// The Hopper kernels for fp16 q and cache.
#include "../instance.cuh"

namespace openmla::sm90 {

template void launch_asymmetric<__half>(const cuda::DecodeParams&, const CUtensorMap&, const CUtensorMap&, dim3,
                                        cudaStream_t);
template void launch_narrow<__half, 16, CacheFormat::plain>(const cuda::DecodeParams&, const CUtensorMap&, dim3,
                                                            cudaStream_t);
template void launch_narrow<__half, kNarrowMaxRows, CacheFormat::plain>(const cuda::DecodeParams&, const CUtensorMap&,
                                                                        dim3, cudaStream_t);
template void launch_seesaw<__half>(const cuda::DecodeParams&, const CUtensorMap&, dim3, cudaStream_t);

}  // namespace openmla::sm90
