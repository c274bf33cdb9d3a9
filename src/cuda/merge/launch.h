#pragma once

#include <cuda_runtime.h>

#include "openmla/tensor.h"
#include "params.h"

namespace openmla::lse_merge {

// One launch of the merge kernel for these dtypes. `vectorized`: d_v and every pointer and stride of
// out_parts and out are multiples of 4 elements, so that each lane moves 4 columns at a time.
void launch_merge(const MergeParams& params, DType in, DType out, bool vectorized, cudaStream_t stream);

}  // namespace openmla::lse_merge
