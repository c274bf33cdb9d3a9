#include "../../core/status.h"
#include "../common/launch_ex.h"
#include "../common/ptx.cuh"
#include "reset.h"

namespace openmla::cuda {

namespace {

__global__ void reset_status_kernel(int32_t* status) {
  *status = status::kOkWord;
  ptx::launch_dependents();
}

}  // namespace

void launch_status_reset(int32_t* status, cudaStream_t stream) {
  launch_kernel(&reset_status_kernel, dim3(1), dim3(1), 0, stream, false, status);
}

}  // namespace openmla::cuda
