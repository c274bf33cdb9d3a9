#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace openmla::schedule {

// seqlens: [batch] int32 device memory; buffer: layout(batch, num_parts).bytes device memory; charge:
// what a piece costs the kernel besides its tiles, in [1, kMaxFixedCost] (core/line_choice.h).
void launch_planner(const int32_t* seqlens, int64_t seqlens_stride, int64_t batch, int64_t num_parts, int64_t charge,
                    void* buffer, bool dependent_launch, cudaStream_t stream);

}  // namespace openmla::schedule
