#pragma once
// What src/api asks of each backend. Arguments reach these already checked.

#include <cstdint>

#include "openmla/decode.h"
#include "openmla/plan.h"

namespace openmla::cpu {

int64_t default_num_parts();
void plan(const PlanConfig& config, const TensorView& cache_seqlens, void* buffer);
// Checks the values of cache_seqlens and block_table, then the plan buffer against the plan of those
// lengths (throwing before anything is written).
void check_values(const DecodeArgs& args);
void decode(const DecodeArgs& args, float scale);

}  // namespace openmla::cpu

namespace openmla::cuda {

bool available();
int32_t device_count();  // 0 when no device can be reached (no driver, no device); never throws
// The CUDA kernel a plan of config is balanced for (portable or sm90); throws when config.kernel names
// one that cannot serve it.
Kernel plan_kernel(const PlanConfig& config);
// config.kernel resolved (plan_kernel).
int64_t default_num_parts(const PlanConfig& config);
void check_args(const DecodeArgs& args);  // what the CUDA kernels need beyond the common checks
// The CUDA kernel that serves args (portable or sm90); throws when args.kernel names one that cannot.
Kernel select_kernel(const DecodeArgs& args);
// config resolved (resolve_plan_config).
void plan(const PlanConfig& config, const TensorView& cache_seqlens, void* buffer, void* stream);
void decode(const DecodeArgs& args, float scale);
// Copies words [first, first + n) of a device buffer to `words`, then synchronizes `stream`.
void read_words(const Buffer& buffer, int64_t first, int64_t n, int32_t* words, void* stream);

}  // namespace openmla::cuda
