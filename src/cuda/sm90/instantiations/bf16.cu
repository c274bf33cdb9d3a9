// The Hopper kernel for bf16 q and cache.
#include "../instance.cuh"

namespace openmla::sm90 {

template void launch_instance<__nv_bfloat16>(const cuda::DecodeParams&, const CUtensorMap&, dim3, cudaStream_t);

}  // namespace openmla::sm90
