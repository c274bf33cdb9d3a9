// The Hopper kernel for fp16 q and cache.
#include "../instance.cuh"

namespace openmla::sm90 {

template void launch_instance<__half>(const cuda::DecodeParams&, const CUtensorMap&, dim3, cudaStream_t);

}  // namespace openmla::sm90
