// The GPU decode on the cases around the grid: zero-length sequences, page sizes, fp16, long s_q,
// custom scales, explicit part counts, a cache over 4 GiB, bitwise determinism, and the small grid
// that compute-sanitizer runs (tests named *Sanitize*). Each runs the automatic kernel choice (the
// Hopper kernel where it serves the case) and checks which kernel ran.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "check.h"
#include "device.h"
#include "openmla/error.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

void expect_matches_reference(const ProblemSpec& spec, int64_t num_parts = 0) {
  const Problem problem = make_problem(spec);
  const DeviceProblem device = upload(problem);
  const GpuRun run = gpu_decode(problem, device, num_parts);
  EXPECT_EQ(run.kernel, expected_automatic_kernel(problem)) << kernel_name(run.kernel) << " ran";
  EXPECT_EQ(run.status.code, StatusCode::ok);
  EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
}

TEST(GpuCases, ZeroLengthSequences) {
  OPENMLA_REQUIRE_GPU();
  expect_matches_reference(
      {.b = 9, .s_q = 2, .h_q = 16, .s_k = 300, .varlen = true, .causal = true, .seed = 11, .zero_length_every = 2});
  expect_matches_reference({.b = 4, .h_q = 128, .s_k = 0, .seed = 12});
}

TEST(GpuCases, CausalWithFewerKeysThanQueries) {
  OPENMLA_REQUIRE_GPU();
  expect_matches_reference({.b = 3, .s_q = 8, .h_q = 16, .causal = true, .seed = 13, .lengths = {3, 8, 1}});
}

// Powers of two take the kernel's shift path, the others its division path.
TEST(GpuCases, PageSizes) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t page : {1, 2, 4, 8, 16, 32, 64, 128, 256, 3, 48, 100}) {
    SCOPED_TRACE("page_size " + std::to_string(page));
    expect_matches_reference({.b = 5,
                              .s_q = 2,
                              .h_q = 32,
                              .h_kv = 2,
                              .s_k = 700,
                              .varlen = true,
                              .causal = true,
                              .page_size = page,
                              .seed = static_cast<uint64_t>(100 + page)});
  }
}

TEST(GpuCases, Fp16) {
  OPENMLA_REQUIRE_GPU();
  expect_matches_reference(
      {.b = 6, .s_q = 2, .h_q = 128, .s_k = 1500, .varlen = true, .causal = true, .dtype = DType::fp16, .seed = 21});
  expect_matches_reference({.b = 6, .h_q = 16, .s_k = 1500, .varlen = true, .dtype = DType::fp16, .seed = 22});
}

TEST(GpuCases, LongQueryRuns) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t s_q : {3, 8, 16}) {
    SCOPED_TRACE("s_q " + std::to_string(s_q));
    expect_matches_reference({.b = 4,
                              .s_q = s_q,
                              .h_q = 16,
                              .s_k = 900,
                              .varlen = true,
                              .causal = true,
                              .seed = static_cast<uint64_t>(30 + s_q)});
  }
}

TEST(GpuCases, SoftmaxScales) {
  OPENMLA_REQUIRE_GPU();
  for (float scale : {0.3f, 0.01f, -0.05f}) {
    SCOPED_TRACE("softmax_scale " + std::to_string(scale));
    expect_matches_reference({.b = 3, .h_q = 64, .s_k = 600, .varlen = true, .softmax_scale = scale, .seed = 40});
  }
}

TEST(GpuCases, ExplicitPartCounts) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t parts : {1, 2, 7, 64, 500}) {
    SCOPED_TRACE("num_parts " + std::to_string(parts));
    expect_matches_reference({.b = 7,
                              .s_q = 2,
                              .h_q = 32,
                              .s_k = 2000,
                              .varlen = true,
                              .causal = true,
                              .seed = static_cast<uint64_t>(50 + parts),
                              .zero_length_every = 3},
                             parts);
  }
}

TEST(GpuCases, CacheOver4GiB) {
  OPENMLA_REQUIRE_GPU();
  // 60,000 untouched pages of 64 x 576 elements before the used ones: offsets past 2^31 elements.
  expect_matches_reference({.b = 2, .h_q = 16, .s_k = 500, .seed = 60, .leading_pages = 60000});
}

TEST(GpuCases, PointerQueries) {
  // Decode asks the runtime where each pointer lives and refuses host memory, unless the caller vouches
  // for its pointers (skip_pointer_queries): then the same problem decodes without the queries, and the
  // checks of the views' devices still hold.
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem({.b = 3, .h_q = 16, .s_k = 300, .seed = 71});
  const DeviceProblem device = upload(problem);
  std::vector<int32_t> host_table = problem.block_table;
  try {
    gpu_decode(problem, device, 0, Kernel::automatic,
               [&](DecodeArgs& args) { args.block_table.data = host_table.data(); });
    ADD_FAILURE() << "decode accepted a block table in host memory";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "openmla: block_table: expected memory of cuda:0, given host memory");
  }
  for (const Kernel kernel : kernels_here()) {
    SCOPED_TRACE(kernel_name(kernel));
    const GpuRun run =
        gpu_decode(problem, device, 0, kernel, [](DecodeArgs& args) { args.skip_pointer_queries = true; });
    EXPECT_EQ(run.status.code, StatusCode::ok);
    EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
  }
  EXPECT_THROW(gpu_decode(problem, device, 0, Kernel::automatic,
                          [](DecodeArgs& args) {
                            args.skip_pointer_queries = true;
                            args.lse.device = Device{};
                          }),
               Error);
}

TEST(GpuCases, RepeatedRunsAreBitwiseIdentical) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem =
      make_problem({.b = 16, .s_q = 2, .h_q = 128, .s_k = 3000, .varlen = true, .causal = true, .seed = 70});
  const DeviceProblem device = upload(problem);
  const GpuRun first = gpu_decode(problem, device);
  for (int repeat = 0; repeat < 3; ++repeat) {
    EXPECT_TRUE(bitwise_equal(first.output, gpu_decode(problem, device).output));
  }
}

TEST(GpuSanitize, SmallGrid) {
  OPENMLA_REQUIRE_GPU();
  uint64_t seed = 80;
  for (int64_t h_q : {1, 16, 64, 128}) {
    for (int64_t page : {1, 64}) {
      expect_matches_reference({.b = 3,
                                .s_q = 2,
                                .h_q = h_q,
                                .s_k = 150,
                                .varlen = true,
                                .causal = true,
                                .page_size = page,
                                .seed = seed++,
                                .zero_length_every = 3});
    }
  }
}

}  // namespace
}  // namespace openmla::test
