// The CUDA merge entry points of a build without the CUDA backend: src/api/merge.cpp refuses every
// CUDA request before reaching them (cuda::available() is false).

#include "check.h"
#include "merge_backends.h"

namespace openmla::cuda {

namespace {

[[noreturn]] void refuse() { detail::fail_no_cuda("device", "cuda"); }

}  // namespace

void check_merge_args(const MergeArgs&) { refuse(); }
void merge(const MergeArgs&) { refuse(); }

}  // namespace openmla::cuda
