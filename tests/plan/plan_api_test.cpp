// openmla::plan through the public API: the CPU plan is the host schedule, and plan() checks its input.

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/host_planner.h"
#include "core/schedule.h"
#include "openmla/openmla.h"

namespace openmla {
namespace {

TEST(PlanApi, CpuPlanIsTheHostSchedule) {
  std::vector<int32_t> seqlens{5, 0, 4096, 700, 1};
  const PlanConfig config{.batch = 5, .s_q = 2, .h_q = 16, .h_kv = 1, .page_size = 64, .num_parts = 9};
  const int64_t bytes = plan_buffer_size(config);
  ASSERT_EQ(bytes, schedule::layout(5, 9).bytes);
  std::vector<int64_t> buffer(static_cast<size_t>(bytes / 8));
  std::vector<int64_t> expected(buffer.size());
  const Plan p = plan(config, make_view(seqlens.data(), DType::int32, {5}), {buffer.data(), bytes});
  schedule::build_on_host(seqlens.data(), 5, 9, expected.data());
  EXPECT_EQ(std::memcmp(buffer.data(), expected.data(), static_cast<size_t>(bytes)), 0);
  EXPECT_EQ(p.config.num_parts, 9);
  EXPECT_EQ(p.buffer.data, buffer.data());
}

TEST(PlanApi, DefaultNumPartsIsResolved) {
  const PlanConfig resolved = resolve_plan_config({.batch = 3, .h_q = 8});
  EXPECT_GE(resolved.num_parts, 1);
  EXPECT_EQ(resolved.batch, 3);
}

void expect_plan_error(const PlanConfig& config, int64_t buffer_bytes, const std::string& what) {
  std::vector<int32_t> seqlens(static_cast<size_t>(std::max<int64_t>(config.batch, 1)), 10);
  std::vector<int64_t> buffer(4096);
  try {
    plan(config, make_view(seqlens.data(), DType::int32, {config.batch}), {buffer.data(), buffer_bytes});
    ADD_FAILURE() << "plan accepted a bad config; expected an error mentioning \"" << what << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(PlanApi, RejectsBadConfigs) {
  expect_plan_error({.batch = 0, .h_q = 8}, 32768, "batch: expected >= 1, given 0");
  expect_plan_error({.batch = 2, .s_q = 0, .h_q = 8}, 32768, "s_q: expected >= 1, given 0");
  expect_plan_error({.batch = 2, .h_q = 8, .h_kv = 3}, 32768, "h_q: expected a multiple of h_kv = 3, given 8");
  expect_plan_error({.batch = 2, .h_q = 8, .page_size = 0}, 32768, "page_size: expected >= 1, given 0");
  expect_plan_error({.batch = 2, .h_q = 8, .num_parts = -1}, 32768, "num_parts: expected >= 0");
  expect_plan_error({.batch = 2, .h_q = 8, .num_parts = 4}, 8, "plan buffer: expected >= ");
}

TEST(PlanApi, RejectsSeqlensOfAnotherBatch) {
  std::vector<int32_t> seqlens{1, 2, 3};
  std::vector<int64_t> buffer(4096);
  try {
    plan({.batch = 2, .h_q = 8}, make_view(seqlens.data(), DType::int32, {3}), {buffer.data(), 32768});
    ADD_FAILURE() << "plan accepted cache_seqlens of 3 for a batch of 2";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cache_seqlens.size(0): expected 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace openmla
