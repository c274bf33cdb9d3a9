#pragma once

#include <cuda_runtime.h>

#include "../common/params.h"
#include "openmla/tensor.h"

namespace openmla::combine {

void launch_combine(const cuda::DecodeParams& params, DType dtype, bool dependent_launch, cudaStream_t stream);

}  // namespace openmla::combine
