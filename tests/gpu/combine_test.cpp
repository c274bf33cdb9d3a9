// The combine kernel's split of a row over warps (combine::warps_per_row) and decodes whose combine
// takes each of its forms: 1, 2, 4 and 8 warps per query row, against the float64 reference.

#include <gtest/gtest.h>

#include <string>

#include "check.h"
#include "cuda/combine/launch.h"
#include "device.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

TEST(CombineWarpsPerRow, GrowsWithSplitsPerSequenceUpToEightWarps) {
  // (batch, rows, num_parts): splits per sequence at most (batch + num_parts - 1) / batch.
  EXPECT_EQ(combine::warps_per_row(1, 128, 66), 8);    // b=1 h_q=128: 66 splits
  EXPECT_EQ(combine::warps_per_row(8, 16, 132), 8);    // 17 splits
  EXPECT_EQ(combine::warps_per_row(32, 16, 132), 4);   // 5 splits
  EXPECT_EQ(combine::warps_per_row(128, 16, 132), 2);  // 2 splits
  EXPECT_EQ(combine::warps_per_row(128, 128, 66), 1);  // 1.5 splits
  EXPECT_EQ(combine::warps_per_row(4, 64, 1), 1);      // no split
}

TEST(CombineWarpsPerRow, KeepsTheWarpCountBounded) {
  // At most 4,096 warps: 16 sequences of 128 rows with 9 splits each get 2 warps per row, not 4.
  EXPECT_EQ(combine::warps_per_row(16, 128, 132), 2);
  EXPECT_EQ(combine::warps_per_row(32, 128, 66), 1);  // 3 splits, but 2 warps per row would make 8,192
  EXPECT_EQ(combine::warps_per_row(1, 8192, 132), 1);
}

struct CombineCase {
  ProblemSpec spec;
  int64_t num_parts;
  int warps_per_row;
};

TEST(GpuCombine, MatchesTheReferenceWithEveryWarpSplit) {
  OPENMLA_REQUIRE_GPU();
  const CombineCase cases[] = {
      {{.b = 1, .h_q = 128, .s_k = 8192, .seed = 901}, 66, 8},
      {{.b = 3, .s_q = 2, .h_q = 16, .s_k = 3000, .varlen = true, .causal = true, .seed = 902, .zero_length_every = 3},
       200, 8},
      {{.b = 32, .h_q = 16, .s_k = 1024, .seed = 903}, 132, 4},
      {{.b = 128, .h_q = 16, .s_k = 1024, .varlen = true, .seed = 904}, 132, 2},
      {{.b = 20, .s_q = 3, .h_q = 16, .s_k = 900, .varlen = true, .causal = true, .seed = 905}, 9, 1},
  };
  for (const CombineCase& c : cases) {
    SCOPED_TRACE("b " + std::to_string(c.spec.b) + " h_q " + std::to_string(c.spec.h_q) + " num_parts " +
                 std::to_string(c.num_parts));
    EXPECT_EQ(combine::warps_per_row(c.spec.b, c.spec.s_q * c.spec.h_q, c.num_parts), c.warps_per_row);
    const Problem problem = make_problem(c.spec);
    const DeviceProblem device = upload(problem);
    const GpuRun run = gpu_decode(problem, device, c.num_parts);
    EXPECT_EQ(run.status.code, StatusCode::ok);
    EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
  }
}

}  // namespace
}  // namespace openmla::test
