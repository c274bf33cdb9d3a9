// The device planner produces exactly the host planner's plan, byte for byte.

#include "openmla/plan.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/host_planner.h"
#include "core/schedule.h"
#include "device.h"

namespace openmla::test {
namespace {

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
    const PlanConfig config{.batch = b, .h_q = 16, .device = Device{DeviceType::cuda, 0}, .num_parts = num_parts};
    const int64_t bytes = plan_buffer_size(config);
    std::vector<char> expected(static_cast<size_t>(bytes), 0);
    schedule::build_on_host(lengths.data(), b, num_parts, expected.data());

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

}  // namespace
}  // namespace openmla::test
