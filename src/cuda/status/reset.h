#pragma once
// The reset of a decode's status word (core/status.h) at the start of every decode, on the device.

#include <cuda_runtime.h>

#include <cstdint>

namespace openmla::cuda {

// Sets *status to status::kOkWord with a one-thread kernel, launched after every earlier kernel on the
// stream, that lets the next kernel launch as soon as it has written the word. A decode kernel
// launched with programmatic dependence on it must wait for it (record_status,
// common/status_word.cuh) before recording an offence.
void launch_status_reset(int32_t* status, cudaStream_t stream);

}  // namespace openmla::cuda
