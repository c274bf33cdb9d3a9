// The build and machine queries of openmla/info.h agree with how the library was built and with the
// CUDA runtime itself.

#include <gtest/gtest.h>

#include "openmla/openmla.h"
#ifdef OPENMLA_WITH_CUDA
#include "cuda_error.h"
#endif

namespace openmla {
namespace {

TEST(Info, CudaBuiltMatchesTheBuild) {
#ifdef OPENMLA_WITH_CUDA
  EXPECT_TRUE(cuda_built());
#else
  EXPECT_FALSE(cuda_built());
  EXPECT_EQ(cuda_device_count(), 0);
#endif
}

TEST(Info, DeviceCountMatchesTheRuntime) {
#ifdef OPENMLA_WITH_CUDA
  EXPECT_EQ(cuda_device_count(), support::cuda_device_count());
#endif
  EXPECT_GE(cuda_device_count(), 0);
  EXPECT_EQ(cuda_available(), cuda_built() && cuda_device_count() > 0);
}

}  // namespace
}  // namespace openmla
