#pragma once
// What this build and this machine offer, and where a plan buffer keeps the array that bindings hand
// out as FlashMLA's num_splits. For callers that size buffers or pick a backend themselves (the Python
// bindings use nothing else).

#include <cstdint>

namespace openmla {

// Whether this build of openmla has its CUDA backend (configured with OPENMLA_CUDA on).
bool cuda_built();

// The CUDA devices this process can use: 0 when the build has no CUDA backend or no device can be
// reached (no driver, a driver that sees no device). Never throws.
int32_t cuda_device_count();

// cuda_built() && cuda_device_count() > 0: a decode with Device{DeviceType::cuda, 0} can run.
bool cuda_available();

// Byte ranges of a plan buffer made for `batch` sequences cut into `num_parts` parts (a resolved
// PlanConfig's batch and num_parts). The rest of the buffer is the library's own business: it can
// change between versions, so always ask this function, never hard-code an offset.
struct PlanLayout {
  int64_t bytes;              // the whole buffer: plan_buffer_size(config) for this batch and num_parts
  int64_t num_splits_offset;  // where num_splits starts: int32 [b + 1], the exclusive prefix sum of the
                              // number of splits of each sequence; 4-byte aligned
  int64_t num_splits_bytes;   // (b + 1) * 4
};

// Throws openmla::Error for batch outside [0, kMaxBatch] or num_parts outside [1, kMaxParts] (plan.h).
PlanLayout plan_layout(int64_t batch, int64_t num_parts);

}  // namespace openmla
