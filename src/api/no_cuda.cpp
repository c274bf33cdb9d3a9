// The CUDA entry points of a build without the CUDA backend: every CUDA request is refused by
// src/api before reaching these, except the queries `available` and `device_count`.

#include "../api/backends.h"
#include "check.h"

namespace openmla::cuda {

namespace {

[[noreturn]] void refuse() { detail::fail_no_cuda("device", "cuda"); }

}  // namespace

bool available() { return false; }
int32_t device_count() { return 0; }
Kernel plan_kernel(const PlanConfig&) { refuse(); }
int64_t default_num_parts(const PlanConfig&) { refuse(); }
void check_args(const DecodeArgs&) { refuse(); }
Kernel select_kernel(const DecodeArgs&) { refuse(); }
void plan(const PlanConfig&, const TensorView&, void*, void*) { refuse(); }
void decode(const DecodeArgs&, float) { refuse(); }
void read_words(const Buffer&, int64_t, int64_t, int32_t*, void*) { refuse(); }

}  // namespace openmla::cuda
