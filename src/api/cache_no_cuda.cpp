// The CUDA cache-write entry points of a build without the CUDA backend: src/api/cache.cpp refuses
// every CUDA request before reaching them (cuda::available() is false).

#include "cache_backends.h"
#include "check.h"

namespace openmla::cuda {

namespace {

[[noreturn]] void refuse() { detail::fail_no_cuda("device", "cuda"); }

}  // namespace

void check_write_cache_args(const WriteCacheArgs&) { refuse(); }
void write_cache(const WriteCacheArgs&) { refuse(); }
void reset_status_word(const Buffer&, void*) { refuse(); }

}  // namespace openmla::cuda
