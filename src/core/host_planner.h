#pragma once
// The schedule computed on the host: the CPU backend's planner and the tests' reference for the device
// planner. Same formulas as the device (schedule.h), so the two agree bit for bit.

#include <cstdint>

namespace openmla::schedule {

// seqlens: [batch] int32 host memory; buffer: layout(batch, num_parts).bytes host memory.
void build_on_host(const int32_t* seqlens, int64_t batch, int64_t num_parts, void* buffer);

}  // namespace openmla::schedule
