#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../common/params.h"
#include "openmla/tensor.h"

namespace openmla::combine {

// How many warps share one query row of the combine (1, 2, 4 or 8): more where sequences have many
// splits and few rows, so that no row waits for its splits one after another.
int warps_per_row(int64_t batch, int64_t rows, int64_t num_parts);

void launch_combine(const cuda::DecodeParams& params, DType dtype, bool dependent_launch, cudaStream_t stream);

}  // namespace openmla::combine
