#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace openmla::schedule {

// seqlens: [batch] int32 device memory; buffer: layout(batch, num_parts).bytes device memory.
void launch_planner(const int32_t* seqlens, int64_t seqlens_stride, int64_t batch, int64_t num_parts, void* buffer,
                    bool dependent_launch, cudaStream_t stream);

}  // namespace openmla::schedule
