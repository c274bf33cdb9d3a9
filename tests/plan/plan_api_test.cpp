// openmla::plan through the public API: the CPU plan is the host schedule, and plan() checks its input.

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <limits>
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
  schedule::build_on_host(seqlens.data(), 5, 9, schedule::kDefaultCharge, expected.data());
  EXPECT_EQ(std::memcmp(buffer.data(), expected.data(), static_cast<size_t>(bytes)), 0);
  EXPECT_EQ(p.config.num_parts, 9);
  EXPECT_EQ(p.buffer.data, buffer.data());
}

TEST(PlanApi, DefaultNumPartsIsResolved) {
  const PlanConfig resolved = resolve_plan_config({.batch = 3, .h_q = 8});
  EXPECT_GE(resolved.num_parts, 1);
  EXPECT_EQ(resolved.batch, 3);
}

TEST(PlanApi, KernelOfACpuPlanIsTheCpu) {
  EXPECT_EQ(resolve_plan_config({.batch = 3, .h_q = 8}).kernel, Kernel::cpu);
  EXPECT_EQ(resolve_plan_config({.batch = 3, .h_q = 8, .kernel = Kernel::cpu}).kernel, Kernel::cpu);
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
  expect_plan_error({.batch = -1, .h_q = 8}, 32768, "batch: expected >= 0, given -1");
  expect_plan_error({.batch = 2, .s_q = 0, .h_q = 8}, 32768, "s_q: expected >= 1, given 0");
  expect_plan_error({.batch = 2, .h_q = 8, .h_kv = 3}, 32768, "h_q: expected a multiple of h_kv = 3, given 8");
  expect_plan_error({.batch = 2, .h_q = 8, .page_size = 0}, 32768, "page_size: expected >= 1, given 0");
  expect_plan_error({.batch = 2, .h_q = 8, .num_parts = -1}, 32768, "num_parts: expected >= 0");
  expect_plan_error({.batch = 2, .h_q = 8, .num_parts = 4}, 8, "plan buffer: expected >= ");
  expect_plan_error({.batch = 2, .h_q = 8, .kernel = Kernel::portable}, 32768,
                    "kernel: expected automatic or cpu for a plan on the CPU, given portable");
  expect_plan_error({.batch = 2, .h_q = 8, .kernel = Kernel::sm90}, 32768,
                    "kernel: expected automatic or cpu for a plan on the CPU, given sm90");
  expect_plan_error({.batch = 2, .h_q = 8, .kernel = static_cast<Kernel>(7)}, 32768,
                    "kernel: expected automatic or cpu for a plan on the CPU, given an unknown kernel value");
  expect_plan_error({.batch = 2, .h_q = 8, .cache_format = static_cast<CacheFormat>(7)}, 32768,
                    "cache_format: expected plain, fp8_per_tensor or fp8_656, given 7");
}

// A plan serves any cache format: one made for another format (which only balances it) is the same plan
// on the CPU, whose charge does not depend on it.
TEST(PlanApi, CacheFormatOnlyBalances) {
  std::vector<int32_t> seqlens{100, 0, 3000};  // [b]
  std::vector<std::vector<int64_t>> buffers;
  for (const CacheFormat format : {CacheFormat::plain, CacheFormat::fp8_per_tensor, CacheFormat::fp8_656}) {
    const PlanConfig config{.batch = 3, .h_q = 16, .num_parts = 4, .cache_format = format};
    std::vector<int64_t> buffer(static_cast<size_t>(plan_buffer_size(config) / 8), 0);
    const Plan made =
        plan(config, make_view(seqlens.data(), DType::int32, {3}), {buffer.data(), plan_buffer_size(config)});
    EXPECT_EQ(made.config.cache_format, format);
    buffers.push_back(buffer);
  }
  EXPECT_EQ(buffers[0], buffers[1]);
  EXPECT_EQ(buffers[0], buffers[2]);
}

// Sizes are computed with checked arithmetic: counts past the documented limits (plan.h) and products
// that would overflow int64 throw rather than wrap.
void expect_size_error(const std::function<int64_t()>& size, const std::string& what) {
  try {
    const int64_t bytes = size();
    ADD_FAILURE() << "returned " << bytes << "; expected an error mentioning \"" << what << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(PlanApi, SizesOfHugeCountsThrow) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (int64_t huge : {int64_t{1} << 61, int64_t{1} << 62, kMax}) {
    SCOPED_TRACE(huge);
    const std::string given = ", given " + std::to_string(huge);
    expect_size_error([&] { return plan_buffer_size({.batch = 1, .h_q = 8, .num_parts = huge}); },
                      "num_parts: expected <= 16777216" + given);
    expect_size_error([&] { return plan_buffer_size({.batch = huge, .h_q = 8, .num_parts = 4}); },
                      "batch: expected <= 134217728" + given);
    expect_size_error([&] { return workspace_size({.batch = 1, .h_q = huge, .num_parts = 4}, 512); },
                      "h_q: expected <= 2147483647" + given);
    expect_size_error([&] { return workspace_size({.batch = 1, .s_q = huge, .h_q = 8, .num_parts = 4}, 512); },
                      "s_q: expected <= 2147483647" + given);
    expect_size_error([&] { return workspace_size({.batch = 1, .h_q = 8, .num_parts = 4}, huge); },
                      "d_v: expected <= 2147483647" + given);
    expect_size_error([&] { return plan_buffer_size({.batch = 1, .h_q = 8, .h_kv = huge, .num_parts = 4}); },
                      "h_kv: expected <= 2147483647" + given);
    expect_size_error([&] { return plan_buffer_size({.batch = 1, .h_q = 8, .page_size = huge, .num_parts = 4}); },
                      "page_size: expected <= 2147483647" + given);
    std::vector<int32_t> seqlens{10};
    std::vector<int64_t> buffer(4096);
    expect_size_error(
        [&] {
          plan({.batch = 1, .h_q = 8, .num_parts = huge}, make_view(seqlens.data(), DType::int32, {1}),
               {buffer.data(), 32768});
          return int64_t{0};
        },
        "num_parts: expected <= 16777216" + given);
  }
}

TEST(PlanApi, WorkspaceSizeThatOverflowsThrows) {
  // Every count within its limit, their product past 2^63 bytes.
  expect_size_error(
      [] { return workspace_size({.batch = 1 << 27, .s_q = 1, .h_q = 1 << 30, .num_parts = 1 << 24}, 1 << 30); },
      "workspace: expected a size below 2^63 bytes");
  expect_size_error([] { return workspace_size({.batch = 1, .s_q = 1 << 16, .h_q = 1 << 16, .num_parts = 4}, 512); },
                    "s_q * h_q: expected <= 2147483647");
}

TEST(PlanApi, SizesOfAnEmptyBatchAreSmall) {
  const PlanConfig config{.batch = 0, .h_q = 128, .num_parts = 132};
  EXPECT_EQ(plan_buffer_size(config), schedule::layout(0, 132).bytes);
  EXPECT_EQ(workspace_size(config, 512), 256);
}

TEST(PlanApi, RejectsABufferOverTheLengths) {
  std::vector<int64_t> memory(4096);
  auto* seqlens = reinterpret_cast<int32_t*>(memory.data() + 8);
  seqlens[0] = 10;
  seqlens[1] = 20;
  try {
    plan({.batch = 2, .h_q = 8, .num_parts = 4}, make_view(seqlens, DType::int32, {2}), {memory.data(), 32768});
    ADD_FAILURE() << "plan accepted a buffer that holds cache_seqlens";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("plan buffer: expected memory that no input shares, given memory "
                                         "overlapping cache_seqlens"),
              std::string::npos)
        << e.what();
  }
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
