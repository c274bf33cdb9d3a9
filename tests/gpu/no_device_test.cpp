// On a machine without a CUDA device (no GPU, or no NVIDIA driver), every CUDA entry point says that no
// CUDA device was found, rather than the CUDA runtime's "driver version is insufficient". Runs only
// where there is no device; a GPU machine skips it.

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "device.h"
#include "openmla/openmla.h"

namespace openmla::test {
namespace {

void expect_no_device(const std::function<void()>& call, const std::string& argument) {
  try {
    call();
    ADD_FAILURE() << "the call succeeded without a CUDA device";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("openmla: " + argument +
                           ": expected a CUDA device, given cuda:0, but no CUDA "
                           "device was found"),
              std::string::npos)
        << message;
    EXPECT_EQ(message.find("insufficient"), std::string::npos) << message;
  }
}

TEST(NoCudaDevice, EntryPointsSayNoDeviceWasFound) {
  if (has_gpu()) {
    GTEST_SKIP() << "a CUDA device is present: this test is for machines without one";
  }
  const Device gpu{DeviceType::cuda, 0};
  // Fake device addresses: nothing may be dereferenced before the device is found missing.
  std::vector<char> memory((1 << 20) + 4096);
  char* fake = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(memory.data()) + 4095) / 4096 * 4096);
  const PlanConfig config{.batch = 1, .h_q = 16, .device = gpu, .num_parts = 4};

  expect_no_device([&] { plan_buffer_size({.batch = 1, .h_q = 16, .device = gpu}); }, "device");
  expect_no_device([&] { workspace_size(config, 512); }, "device");
  expect_no_device(
      [&] {
        plan(config, make_view(fake, DType::int32, {1}, gpu), Buffer{fake + 4096, plan_buffer_size(config), gpu});
      },
      "device");
  expect_no_device([&] { plan_buffer_size(config); }, "device");
  // Sizes that need no device to compute (plan_buffer_size and workspace_size do): more than enough.
  const Plan plan{config, Buffer{fake + 4096, 4096, gpu}};
  DecodeArgs args;
  args.q = make_view(fake + 8192, DType::bf16, {1, 1, 16, 576}, gpu);
  args.k_cache = make_view(fake + 65536, DType::bf16, {1, 64, 1, 576}, gpu);
  args.block_table = make_view(fake + 256, DType::int32, {1, 1}, gpu);
  args.cache_seqlens = make_view(fake, DType::int32, {1}, gpu);
  args.plan = &plan;
  args.workspace = Buffer{fake + 262144, 1 << 19, gpu};
  args.out = make_view(fake + 40960, DType::bf16, {1, 1, 16, 512}, gpu);
  args.lse = make_view(fake + 61440, DType::fp32, {1, 16, 1}, gpu);
  expect_no_device([&] { decode(args); }, "q.device");
  expect_no_device([&] { read_status(args.workspace); }, "workspace.device");
}

}  // namespace
}  // namespace openmla::test
