// The build and machine queries of openmla/info.h agree with how the library was built and with the
// CUDA runtime itself.

#include <gtest/gtest.h>

#ifdef OPENMLA_WITH_CUDA
#include <cuda_runtime.h>
#endif

#include "openmla/openmla.h"

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
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    count = 0;
  }
  EXPECT_EQ(cuda_device_count(), count);
#endif
  EXPECT_GE(cuda_device_count(), 0);
  EXPECT_EQ(cuda_available(), cuda_built() && cuda_device_count() > 0);
}

}  // namespace
}  // namespace openmla
