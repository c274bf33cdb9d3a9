// The Hopper kernel for fp16 q on the two FP8 caches (the narrow schedule up to 16 rows, the
// asymmetric one with a converter warpgroup or the transposed one beyond).
#include "../instance.cuh"

namespace openmla::sm90 {

template void launch_narrow<__half, kFp8Rows, CacheFormat::fp8_per_tensor>(const cuda::DecodeParams&,
                                                                           const CUtensorMap&, dim3, cudaStream_t);
template void launch_narrow<__half, kFp8Rows, CacheFormat::fp8_656>(const cuda::DecodeParams&, const CUtensorMap&, dim3,
                                                                    cudaStream_t);

template void launch_asymmetric_fp8<__half, CacheFormat::fp8_per_tensor>(const cuda::DecodeParams&, const CUtensorMap&,
                                                                         const Fp8PartMaps&, dim3, cudaStream_t);
template void launch_asymmetric_fp8<__half, CacheFormat::fp8_656>(const cuda::DecodeParams&, const CUtensorMap&,
                                                                  const Fp8PartMaps&, dim3, cudaStream_t);

template void launch_transposed<__half, CacheFormat::fp8_per_tensor>(const cuda::DecodeParams&, const CUtensorMap&,
                                                                     dim3, cudaStream_t);
template void launch_transposed<__half, CacheFormat::fp8_656>(const cuda::DecodeParams&, const CUtensorMap&, dim3,
                                                              cudaStream_t);

}  // namespace openmla::sm90
