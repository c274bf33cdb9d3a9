// The portable kernel's instances on GPUs with less shared memory per block than this one: an A100
// offers 163 KB, sm_86 and sm_89 GPUs 99 KB, where the widest instances do not fit and narrower ones
// (32 keys a stage) run. OPENMLA_PORTABLE_SHARED_BYTES (read once per process) caps what the portable
// kernel's choice assumes, so the GPU cases run again in child processes with the portable kernel
// forced and each cap set, on the instances those GPUs run.

#include <gtest/gtest.h>

#include <string>

#include "check.h"
#include "child.h"
#include "cuda/portable/launch.h"
#include "device.h"
#include "openmla/error.h"

namespace openmla::test {
namespace {

constexpr int kSm86Bytes = 101376;  // 99 KB: sm_86, sm_89
constexpr int kSm80Bytes = 166912;  // 163 KB: sm_80

// In a child process with a cap: the choice the cap gives (at 16 rows a plain cache's widest instance,
// 64 keys, needs more than either cap; a per-tensor FP8 one fits 163 KB).
TEST(GpuPortableShared, CapPicksInstances) {
  OPENMLA_REQUIRE_GPU();
  const std::string cap = environment("OPENMLA_PORTABLE_SHARED_BYTES");
  if (cap.empty()) {
    GTEST_SKIP() << "checked in the child processes of GpuPortableShared.SmallerGpusRunTheCases";
  }
  const int bytes = std::stoi(cap);
  EXPECT_EQ(portable::select_config(16, 0, CacheFormat::plain).keys, 32);
  EXPECT_EQ(portable::select_config(16, 0, CacheFormat::fp8_per_tensor).keys, bytes >= kSm80Bytes ? 64 : 32);
  EXPECT_EQ(portable::select_config(16, 0, CacheFormat::fp8_656).keys, 32);
}

// The cases, the small grids and the FP8 shapes with the portable kernel forced, under each cap.
TEST(GpuPortableShared, SmallerGpusRunTheCases) {
  OPENMLA_REQUIRE_GPU();
  const std::string filter =
      "GpuPortableShared.CapPicksInstances:GpuCases.*:GpuSanitize.*:GpuFp8Sanitize.*:GpuFp8.DecodeStep:"
      "GpuFp8.HopperShapes:GpuFp8.HopperWideShapes:GpuFp8.CausalManyHeadsAndSplits:"
      "GpuFp8.QueryRowsOutsideFp16Range";
  const int expected = 6 + tests_in_suites({"GpuCases", "GpuSanitize", "GpuFp8Sanitize"});  // 6: the tests named
  for (int bytes : {kSm86Bytes, kSm80Bytes}) {
    SCOPED_TRACE("OPENMLA_PORTABLE_SHARED_BYTES=" + std::to_string(bytes));
    const ChildRun child =
        run_child("OPENMLA_FORCE_PORTABLE=1 OPENMLA_PORTABLE_SHARED_BYTES=" + std::to_string(bytes), filter);
    EXPECT_EQ(child.status, 0) << child.output;
    EXPECT_NE(child.output.find("[  PASSED  ] " + std::to_string(expected) + " tests."), std::string::npos)
        << child.output;
  }
}

// Any other value than a positive number of bytes is an error at decode, naming the variable.
TEST(GpuPortableShared, InvalidValueThrows) {
  OPENMLA_REQUIRE_GPU();
  if (environment("OPENMLA_PORTABLE_SHARED_BYTES") == "lots") {
    const Problem problem = make_problem({.b = 2, .h_q = 16, .s_k = 300, .seed = 216});
    const DeviceProblem device = upload(problem);
    try {
      gpu_decode(problem, device, 0, Kernel::portable);
      ADD_FAILURE() << "no error";
    } catch (const openmla::Error& e) {
      EXPECT_NE(std::string(e.what()).find("OPENMLA_PORTABLE_SHARED_BYTES: expected a positive number of bytes, "
                                           "given 'lots'"),
                std::string::npos)
          << e.what();
    }
    return;
  }
  const ChildRun child = run_child("OPENMLA_PORTABLE_SHARED_BYTES=lots", "GpuPortableShared.InvalidValueThrows");
  EXPECT_EQ(child.status, 0) << child.output;
  EXPECT_NE(child.output.find("[  PASSED  ] 1 test."), std::string::npos) << child.output;
}

}  // namespace
}  // namespace openmla::test
