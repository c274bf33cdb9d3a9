// The GPU float64 reference agrees with the host float64 reference (reference.cpp), so the grid
// tests that use it rest on the same ground truth.

#include <gtest/gtest.h>

#include <cmath>

#include "device.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

TEST(GpuReference, AgreesWithHostReference) {
  OPENMLA_REQUIRE_GPU();
  for (const ProblemSpec& spec :
       {ProblemSpec{.b = 3, .s_q = 2, .h_q = 6, .h_kv = 2, .s_k = 150, .varlen = true, .causal = true, .seed = 7},
        ProblemSpec{.b = 2, .s_q = 4, .h_q = 3, .h_kv = 1, .s_k = 3, .causal = true, .page_size = 1, .seed = 8},
        ProblemSpec{.b = 2, .h_q = 4, .s_k = 300, .dtype = DType::fp16, .seed = 9}}) {
    const Problem problem = make_problem(spec);
    const Reference host = reference_decode(problem);
    const Reference gpu = gpu_reference(problem, upload(problem));
    ASSERT_EQ(host.out.size(), gpu.out.size());
    ASSERT_EQ(host.lse.size(), gpu.lse.size());
    for (size_t i = 0; i < host.out.size(); ++i) {
      ASSERT_NEAR(host.out[i], gpu.out[i], 1e-12) << "out element " << i;
    }
    for (size_t i = 0; i < host.lse.size(); ++i) {
      if (std::isinf(host.lse[i])) {
        ASSERT_EQ(host.lse[i], gpu.lse[i]) << "lse row " << i;
      } else {
        ASSERT_NEAR(host.lse[i], gpu.lse[i], 1e-12) << "lse row " << i;
      }
    }
  }
}

}  // namespace
}  // namespace openmla::test
