// The GPU decode against the float64 reference over the test grid (tests/support/grid.h), on the
// automatic kernel choice (the Hopper kernel on a compute capability 9.0 GPU) and on the portable
// kernel forced through DecodeArgs::kernel.

#include "grid.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "check.h"
#include "device.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

// Host-side data generation bounds the grid: cases with more than kLargeCacheRows cache rows
// (b * s_k * h_kv) keep h_kv <= 2 and h_q in {1, 64, 128}.
constexpr int64_t kLargeCacheRows = 64 * 1024;

bool keep(const ProblemSpec& s) {
  const bool large = s.b * s.s_k * s.h_kv > kLargeCacheRows;
  return !large || (s.h_kv <= 2 && (s.h_q == 1 || s.h_q == 64 || s.h_q == 128));
}

using GridCase = std::tuple<ProblemSpec, Kernel>;

class GpuGrid : public ::testing::TestWithParam<GridCase> {};

TEST_P(GpuGrid, MatchesFloat64Reference) {
  OPENMLA_REQUIRE_GPU();
  const auto& [spec, kernel] = GetParam();
  const Problem problem = make_problem(spec);
  const Kernel expected = kernel == Kernel::automatic ? expected_automatic_kernel(problem) : kernel;
  if (kernel == Kernel::portable && expected_automatic_kernel(problem) == Kernel::portable) {
    GTEST_SKIP() << "the automatic case of this spec already runs the portable kernel here";
  }
  const DeviceProblem device = upload(problem);
  const GpuRun run = gpu_decode(problem, device, 0, kernel);
  EXPECT_EQ(run.kernel, expected) << kernel_name(run.kernel) << " ran, " << kernel_name(expected) << " expected";
  EXPECT_EQ(run.status.code, StatusCode::ok);
  EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
}

INSTANTIATE_TEST_SUITE_P(Grid, GpuGrid,
                         ::testing::Combine(::testing::ValuesIn(design_grid(keep)),
                                            ::testing::Values(Kernel::automatic, Kernel::portable)),
                         [](const auto& param_info) {
                           return spec_name(std::get<0>(param_info.param)) + "_" +
                                  kernel_name(std::get<1>(param_info.param));
                         });

}  // namespace
}  // namespace openmla::test
