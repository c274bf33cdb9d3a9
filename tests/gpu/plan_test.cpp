// The device planner produces exactly the host planner's plan, byte for byte, with the charge of the
// kernel the plan is made for; a plan that names its kernel is balanced for it.

#include "openmla/plan.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/host_planner.h"
#include "core/schedule.h"
#include "cuda/sm90/launch.h"
#include "device.h"
#include "openmla/error.h"

namespace openmla::test {
namespace {

bool portable_forced() {
  const char* forced = std::getenv("OPENMLA_FORCE_PORTABLE");
  return forced != nullptr && std::string_view(forced) == "1";
}

// What a CUDA plan of `config` (16 query rows per KV head) charges a piece: the Hopper kernel's where
// that kernel is the automatic choice, else the portable kernel's.
int64_t expected_charge(const PlanConfig& config) {
  return !portable_forced() && sm90::plan_unsupported(config) == nullptr ? sm90::kPlanChargeFewRows
                                                                         : schedule::kDefaultCharge;
}

TEST(GpuPlanner, EqualsHostPlan) {
  OPENMLA_REQUIRE_GPU();
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 200; ++trial) {
    const int64_t b = std::uniform_int_distribution<int64_t>(1, trial % 10 == 0 ? 5000 : 300)(rng);
    const int64_t num_parts = std::uniform_int_distribution<int64_t>(1, 400)(rng);
    const int32_t max_len = trial % 3 == 0 ? 100 : (trial % 3 == 1 ? 20000 : 2000000);
    std::vector<int32_t> lengths(static_cast<size_t>(b));  // [b]
    for (auto& len : lengths) {
      len = std::uniform_int_distribution<int32_t>(0, max_len)(rng);
      if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
        len = 0;
      }
    }
    if (trial % 4 == 3) {
      // Equal lengths: a line without overhead units is tried too (core/line_choice.h).
      std::fill(lengths.begin(), lengths.end(), std::uniform_int_distribution<int32_t>(1, max_len)(rng));
    }
    // Pages of 64 tokens (the Hopper kernel's, on a Hopper GPU) and of 32 (the portable kernel's).
    const PlanConfig config{.batch = b,
                            .h_q = 16,
                            .page_size = trial % 2 == 0 ? 64 : 32,
                            .device = Device{DeviceType::cuda, 0},
                            .num_parts = num_parts};
    const int64_t bytes = plan_buffer_size(config);
    std::vector<char> expected(static_cast<size_t>(bytes), 0);
    schedule::build_on_host(lengths.data(), b, num_parts, expected_charge(config), expected.data());

    DeviceBuffer seqlens(lengths.size() * 4);
    seqlens.upload(lengths.data(), seqlens.bytes());
    DeviceBuffer buffer(static_cast<size_t>(bytes));
    SUPPORT_CUDA(cudaMemset(buffer.data(), 0, buffer.bytes()));
    TensorView view = make_view(seqlens.data(), DType::int32, {b}, Device{DeviceType::cuda, 0});
    plan(config, view, Buffer{buffer.data(), bytes, Device{DeviceType::cuda, 0}});
    std::vector<char> got(static_cast<size_t>(bytes), 0);
    buffer.download(got.data(), got.size());
    ASSERT_EQ(expected, got) << "trial " << trial << ": b " << b << ", num_parts " << num_parts;
  }
}

// The header word of the fixed units of a plan made on cuda:0 for lengths {1000, 0, 70}, whose line is
// charged per sequence (a sequence has no tile), so that the word is the plan's charge; and its
// resolved configuration.
struct Made {
  PlanConfig config;
  int32_t charge;
};

Made make_plan(PlanConfig config) {
  const std::vector<int32_t> lengths{1000, 0, 70};  // [b]
  DeviceBuffer seqlens(lengths.size() * 4);
  seqlens.upload(lengths.data(), seqlens.bytes());
  config.batch = 3;
  config.device = Device{DeviceType::cuda, 0};
  const int64_t bytes = plan_buffer_size(config);
  DeviceBuffer buffer(static_cast<size_t>(bytes));
  const Plan made = plan(config, make_view(seqlens.data(), DType::int32, {3}, config.device),
                         Buffer{buffer.data(), bytes, config.device});
  const std::vector<int32_t> header = download_vector<int32_t>(buffer, schedule::kHeaderWords);  // [kHeaderWords]
  return Made{made.config, header[3]};
}

// On a Hopper GPU an automatic plan the Hopper kernel serves charges its cost: 4 tiles up to 32
// query rows per KV head, 8 from 64, and 6 on an FP8 cache up to 16 rows; one it does not serve (pages
// of 32 tokens) charges the portable kernel's, whatever the cache format.
TEST(GpuPlanner, ChargesTheCostOfItsKernel) {
  OPENMLA_REQUIRE_HOPPER();
  struct Shape {
    int64_t s_q, h_q, h_kv, hopper_cost, hopper_fp8_cost;
  };
  for (const Shape& shape : {Shape{1, 16, 1, 4, 6}, Shape{1, 8, 1, 4, 6}, Shape{2, 16, 1, 4, 4}, Shape{1, 64, 2, 4, 4},
                             Shape{4, 16, 1, 8, 8}, Shape{1, 64, 1, 8, 8}, Shape{1, 128, 1, 8, 8}}) {
    for (const int64_t page_size : {64, 32}) {
      for (const CacheFormat format : {CacheFormat::plain, CacheFormat::fp8_per_tensor, CacheFormat::fp8_656}) {
        const Made made = make_plan(
            {.s_q = shape.s_q, .h_q = shape.h_q, .h_kv = shape.h_kv, .page_size = page_size, .cache_format = format});
        const bool hopper = page_size == 64 && !portable_forced();
        const int64_t hopper_cost = format == CacheFormat::plain ? shape.hopper_cost : shape.hopper_fp8_cost;
        const std::string what = "s_q " + std::to_string(shape.s_q) + " h_q " + std::to_string(shape.h_q) + " h_kv " +
                                 std::to_string(shape.h_kv) + " page " + std::to_string(page_size) + " " +
                                 cache_format_name(format);
        EXPECT_EQ(made.charge, hopper ? hopper_cost : schedule::kDefaultCharge) << what;
        EXPECT_EQ(made.config.kernel, hopper ? Kernel::sm90 : Kernel::portable) << what;
      }
    }
  }
}

// A plan that names its kernel is balanced for it whatever the automatic choice: the portable kernel's
// part count and charge with pages the Hopper kernel serves, the Hopper kernel's even where
// OPENMLA_FORCE_PORTABLE=1 makes the automatic choice portable.
TEST(GpuPlanner, FollowsTheKernelItNames) {
  OPENMLA_REQUIRE_HOPPER();
  const Made portable = make_plan({.h_q = 128, .page_size = 64, .kernel = Kernel::portable});
  const Made portable_pages = make_plan({.h_q = 128, .page_size = 32});  // the portable kernel's pages
  EXPECT_EQ(portable.config.kernel, Kernel::portable);
  EXPECT_EQ(portable.charge, schedule::kDefaultCharge);
  EXPECT_EQ(portable.config.num_parts, portable_pages.config.num_parts);
  const Made hopper = make_plan({.h_q = 128, .page_size = 64, .kernel = Kernel::sm90});
  EXPECT_EQ(hopper.config.kernel, Kernel::sm90);
  EXPECT_EQ(hopper.charge, sm90::kPlanChargeManyRows);
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  EXPECT_EQ(hopper.config.num_parts, sms / 2);  // one CTA per SM, two 64-row tiles of 128 heads
}

void expect_kernel_error(const PlanConfig& config, const std::string& what) {
  try {
    make_plan(config);
    ADD_FAILURE() << "plan accepted kernel " << kernel_name(config.kernel) << "; expected \"" << what << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

// sm90 where the Hopper kernel cannot serve (pages of 32 tokens; any config off Hopper) and the CPU
// backend's kernel are refused by name.
TEST(GpuPlanner, RefusesAKernelThatCannotServe) {
  OPENMLA_REQUIRE_GPU();
  expect_kernel_error({.h_q = 16, .page_size = 32, .kernel = Kernel::sm90},
                      "kernel: expected a kernel that serves the plan (sm90 needs ");
  expect_kernel_error({.h_q = 16, .kernel = Kernel::cpu},
                      "kernel: expected automatic, portable or sm90 for a plan on a CUDA device, given cpu");
}

}  // namespace
}  // namespace openmla::test
