// Values only the GPU sees: a length that needs more pages than the block-table row holds, a negative
// length, a used page index out of range. The offending sequence gets NaN in out and lse, nothing is
// read out of bounds, the other sequences are unaffected, and the status names the first offence.

#include <gtest/gtest.h>

#include <cstdint>

#include "device.h"
#include "openmla/error.h"
#include "poisoned.h"

namespace openmla::test {
namespace {

TEST(GpuStatus, PageIndexOutOfRange) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem({.b = 4, .h_q = 16, .s_k = 500, .seed = 90});
  DeviceProblem device = upload(problem);
  const int32_t bad_page = -5;
  device.block_table.upload(&bad_page, 4, static_cast<size_t>(2 * problem.max_blocks_per_seq + 1) * 4);
  const GpuRun run = gpu_decode(problem, device);
  EXPECT_EQ(run.status.code, StatusCode::page_out_of_range);
  EXPECT_EQ(run.status.batch, 2);
  EXPECT_THROW(check_status(run.status), openmla::Error);
  // The reference reads the block table too: restore it for the good sequences' reference.
  device.block_table.upload(problem.block_table.data(), problem.block_table.size() * 4);
  expect_poisoned(problem, device, run.output, {2});
}

TEST(GpuStatus, LengthBeyondBlockTable) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem({.b = 3, .h_q = 16, .s_k = 500, .seed = 91});
  DeviceProblem device = upload(problem);
  const int32_t too_long = static_cast<int32_t>(problem.max_blocks_per_seq * problem.spec.page_size + 1);
  device.seqlens.upload(&too_long, 4, 1 * 4);
  const GpuRun run = gpu_decode(problem, device);
  EXPECT_EQ(run.status.code, StatusCode::too_few_pages);
  EXPECT_EQ(run.status.batch, 1);
  device.seqlens.upload(problem.seqlens.data(), problem.seqlens.size() * 4);
  expect_poisoned(problem, device, run.output, {1});
}

TEST(GpuStatus, NegativeLengthAndFirstOffence) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem({.b = 5, .s_q = 2, .h_q = 8, .s_k = 300, .causal = true, .seed = 92});
  DeviceProblem device = upload(problem);
  const int32_t negative = -7;
  device.seqlens.upload(&negative, 4, 3 * 4);
  const int32_t bad_page = 1 << 30;
  device.block_table.upload(&bad_page, 4, static_cast<size_t>(4 * problem.max_blocks_per_seq) * 4);
  const GpuRun run = gpu_decode(problem, device);
  EXPECT_EQ(run.status.code, StatusCode::negative_seqlen);
  EXPECT_EQ(run.status.batch, 3);
}

TEST(GpuStatus, NextDecodeRewritesTheRecord) {
  // No reset between decodes: each decode's CTAs rewrite the workspace's record, so an offence is
  // reported by the decode that met it and forgotten by the next one, on every kernel and with a
  // grid smaller than the one before (words of the larger grid stay behind the record's end).
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem({.b = 4, .h_q = 128, .s_k = 700, .seed = 94});
  DeviceProblem device = upload(problem);
  const Problem narrow = make_problem({.b = 4, .h_q = 16, .s_k = 700, .seed = 94});
  DeviceProblem narrow_device = upload(narrow);
  const PlanConfig config = gpu_plan_config(problem);
  DeviceBuffer workspace(static_cast<size_t>(workspace_size(config, 512)));
  const Buffer shared_workspace{workspace.data(), static_cast<int64_t>(workspace.bytes()), {DeviceType::cuda, 0}};
  const AdjustArgs use_shared = [&](DecodeArgs& args) { args.workspace = shared_workspace; };
  for (const Kernel kernel : kernels_here()) {
    SCOPED_TRACE(kernel_name(kernel));
    const int32_t bad_page = 1 << 29;
    device.block_table.upload(&bad_page, 4, static_cast<size_t>(3 * problem.max_blocks_per_seq + 2) * 4);
    const GpuRun bad = gpu_decode(problem, device, 0, kernel, use_shared);
    EXPECT_EQ(bad.status.code, StatusCode::page_out_of_range);
    EXPECT_EQ(bad.status.batch, 3);
    device.block_table.upload(problem.block_table.data(), problem.block_table.size() * 4);
    EXPECT_EQ(gpu_decode(problem, device, 0, kernel, use_shared).status.code, StatusCode::ok);
    narrow_device.block_table.upload(&bad_page, 4, static_cast<size_t>(1 * narrow.max_blocks_per_seq) * 4);
    const GpuRun narrow_bad = gpu_decode(narrow, narrow_device, 20, kernel, use_shared);
    EXPECT_EQ(narrow_bad.status.code, StatusCode::page_out_of_range);
    EXPECT_EQ(narrow_bad.status.batch, 1);
    narrow_device.block_table.upload(narrow.block_table.data(), narrow.block_table.size() * 4);
    EXPECT_EQ(gpu_decode(narrow, narrow_device, 20, kernel, use_shared).status.code, StatusCode::ok);
    EXPECT_EQ(gpu_decode(problem, device, 0, kernel, use_shared).status.code, StatusCode::ok);
  }
}

TEST(GpuStatus, CleanRunReportsOk) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem({.b = 3, .h_q = 16, .s_k = 200, .seed = 93});
  const GpuRun run = gpu_decode(problem, upload(problem));
  EXPECT_EQ(run.status.code, StatusCode::ok);
  EXPECT_EQ(run.status.batch, -1);
  EXPECT_NO_THROW(check_status(run.status));
}

}  // namespace
}  // namespace openmla::test
