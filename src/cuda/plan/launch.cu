#include "../common/launch_ex.h"
#include "launch.h"
#include "planner.cuh"

namespace openmla::schedule {

void launch_planner(const int32_t* seqlens, int64_t seqlens_stride, int64_t batch, int64_t num_parts, int64_t charge,
                    void* buffer, bool dependent_launch, cudaStream_t stream) {
  cuda::launch_kernel(&planner_kernel, dim3(1), dim3(kPlannerThreads), 0, stream, dependent_launch, seqlens,
                      seqlens_stride, batch, num_parts, charge, buffer);
}

}  // namespace openmla::schedule
