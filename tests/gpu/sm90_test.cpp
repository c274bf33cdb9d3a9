// The Hopper kernel through the public API: which kernel a decode selects (automatic, forced by
// DecodeArgs::kernel or by OPENMLA_FORCE_PORTABLE=1), which consumer schedule it runs
// (OPENMLA_SM90_SCHEDULE), and the cases the kernel must get right, each asserting that the Hopper
// kernel is the one that ran. Tests named *Sanitize* form the small grid that scripts/gpu-check runs
// under compute-sanitizer. The cases run with the default schedule (asymmetric) here and again with
// the seesaw in a child process (Sm90Schedule.SeesawRunsTheTargetedCases).

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "child.h"
#include "cuda/common/params.h"
#include "cuda/sm90/launch.h"
#include "device.h"
#include "openmla/error.h"
#include "poisoned.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

// Decodes `spec` with the automatic choice, asserts it ran the Hopper kernel with status ok, and
// compares with the float64 reference. Returns the run for further checks.
GpuRun expect_hopper_matches(const ProblemSpec& spec, int64_t num_parts = 0) {
  const Problem problem = make_problem(spec);
  const DeviceProblem device = upload(problem);
  GpuRun run = gpu_decode(problem, device, num_parts);
  EXPECT_EQ(run.kernel, Kernel::sm90) << kernel_name(run.kernel) << " ran";
  EXPECT_EQ(run.status.code, StatusCode::ok);
  EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
  return run;
}

// ---- selection ---------------------------------------------------------------------------------------

TEST(Sm90Selection, AutomaticRunsHopperKernelOnCoveredShapes) {
  OPENMLA_REQUIRE_HOPPER();
  if (expected_automatic_kernel(make_problem(ProblemSpec{})) != Kernel::sm90) {
    GTEST_SKIP() << "OPENMLA_FORCE_PORTABLE=1 in this process";
  }
  for (int64_t page : {64, 128, 256}) {
    SCOPED_TRACE("page_size " + std::to_string(page));
    expect_hopper_matches({.b = 3,
                           .s_q = 2,
                           .h_q = 16,
                           .s_k = 300,
                           .varlen = true,
                           .causal = true,
                           .page_size = page,
                           .seed = static_cast<uint64_t>(200 + page)});
  }
}

TEST(Sm90Selection, SmallPagesRunPortableAndRefuseSm90) {
  OPENMLA_REQUIRE_HOPPER();
  const Problem problem = make_problem({.b = 2, .h_q = 16, .s_k = 300, .page_size = 32, .seed = 210});
  const DeviceProblem device = upload(problem);
  const GpuRun run = gpu_decode(problem, device);
  EXPECT_EQ(run.kernel, Kernel::portable);
  EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
  EXPECT_THROW(gpu_decode(problem, device, 0, Kernel::sm90), openmla::Error);
}

TEST(Sm90Selection, FieldForcesPortable) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem =
      make_problem({.b = 3, .s_q = 2, .h_q = 32, .s_k = 500, .varlen = true, .causal = true, .seed = 211});
  const DeviceProblem device = upload(problem);
  const GpuRun run = gpu_decode(problem, device, 0, Kernel::portable);
  EXPECT_EQ(run.kernel, Kernel::portable);
  EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
}

TEST(Sm90Selection, Sm90RequestedWithoutHopperThrows) {
  OPENMLA_REQUIRE_GPU();
  if (hopper_kernel_available()) {
    GTEST_SKIP() << "this GPU runs the Hopper kernel (SmallPagesRunPortableAndRefuseSm90 covers the refusal)";
  }
  const Problem problem = make_problem({.b = 2, .h_q = 16, .s_k = 100, .seed = 212});
  EXPECT_THROW(gpu_decode(problem, upload(problem), 0, Kernel::sm90), openmla::Error);
}

TEST(Sm90Selection, CpuKernelRequestedOnGpuThrows) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem({.b = 2, .h_q = 16, .s_k = 100, .seed = 213});
  EXPECT_THROW(gpu_decode(problem, upload(problem), 0, Kernel::cpu), openmla::Error);
}

// OPENMLA_FORCE_PORTABLE is read once per process, so the check runs in a child process of this
// test binary with the variable set: the child runs this same test, which in that mode asserts that
// a shape the Hopper kernel covers runs portable.
TEST(Sm90Selection, EnvironmentForcesPortable) {
  OPENMLA_REQUIRE_HOPPER();
  if (environment("OPENMLA_FORCE_PORTABLE") == "1") {
    const Problem problem = make_problem({.b = 2, .h_q = 16, .s_k = 300, .seed = 214});
    const DeviceProblem device = upload(problem);
    const GpuRun run = gpu_decode(problem, device);
    EXPECT_EQ(run.kernel, Kernel::portable);
    EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
    return;
  }
  const ChildRun child = run_child("OPENMLA_FORCE_PORTABLE=1", "Sm90Selection.EnvironmentForcesPortable");
  EXPECT_EQ(child.status, 0) << child.output;
  EXPECT_NE(child.output.find("[  PASSED  ] 1 test"), std::string::npos) << child.output;
}

// ---- schedule ----------------------------------------------------------------------------------------

TEST(Sm90Schedule, DefaultIsAsymmetric) {
  OPENMLA_REQUIRE_HOPPER();
  if (!environment("OPENMLA_SM90_SCHEDULE").empty()) {
    GTEST_SKIP() << "OPENMLA_SM90_SCHEDULE is set in this process";
  }
  EXPECT_EQ(sm90::configured_schedule(), sm90::Schedule::asymmetric);
  EXPECT_EQ(sm90::schedule_for(16), sm90::Schedule::asymmetric);
  EXPECT_EQ(sm90::schedule_for(256), sm90::Schedule::asymmetric);
}

TEST(Sm90Schedule, DefaultFp8WideIsTheConverter) {
  OPENMLA_REQUIRE_HOPPER();
  if (!environment("OPENMLA_SM90_FP8_WIDE").empty()) {
    GTEST_SKIP() << "OPENMLA_SM90_FP8_WIDE is set in this process";
  }
  EXPECT_EQ(sm90::configured_fp8_wide(), sm90::Fp8Wide::converter);
}

// Every FP8 test (GpuFp8.*, GpuFp8Sanitize.*) once more with OPENMLA_SM90_FP8_WIDE=transposed, in a
// child process: there decodes of more than 16 packed rows per KV head run the transposed schedule.
TEST(Sm90Schedule, TransposedRunsTheFp8Cases) {
  OPENMLA_REQUIRE_HOPPER();
  const std::string self = "Sm90Schedule.TransposedRunsTheFp8Cases";
  if (environment("OPENMLA_SM90_FP8_WIDE") == "transposed") {
    EXPECT_EQ(sm90::configured_fp8_wide(), sm90::Fp8Wide::transposed);
    return;
  }
  const int expected = 1 + tests_in_suites({"GpuFp8", "GpuFp8Sanitize"});
  const ChildRun child = run_child("OPENMLA_SM90_FP8_WIDE=transposed", "GpuFp8.*:GpuFp8Sanitize.*:" + self);
  EXPECT_EQ(child.status, 0) << child.output;
  EXPECT_NE(child.output.find("[  PASSED  ] " + std::to_string(expected) + " tests."), std::string::npos)
      << child.output;
}

// Any other value is an error at an FP8 decode, not a silent fallback.
TEST(Sm90Schedule, UnknownFp8WideValueThrows) {
  OPENMLA_REQUIRE_HOPPER();
  if (environment("OPENMLA_SM90_FP8_WIDE") == "fast") {
    try {
      sm90::configured_fp8_wide();
      ADD_FAILURE() << "OPENMLA_SM90_FP8_WIDE=fast did not throw";
    } catch (const openmla::Error& e) {
      EXPECT_NE(std::string(e.what()).find("OPENMLA_SM90_FP8_WIDE: expected converter or transposed, given 'fast'"),
                std::string::npos)
          << e.what();
    }
    return;
  }
  const ChildRun child = run_child("OPENMLA_SM90_FP8_WIDE=fast", "Sm90Schedule.UnknownFp8WideValueThrows");
  EXPECT_EQ(child.status, 0) << child.output;
  EXPECT_NE(child.output.find("[  PASSED  ] 1 test"), std::string::npos) << child.output;
}

// The targeted cases (Sm90Cases.*, Sm90Sanitize.*) once more with OPENMLA_SM90_SCHEDULE=<name>, in a
// child process (the variable is read once per process); the child also runs `self`, which there
// asserts that the variable took effect: `small` is the schedule of 16 rows, `large` of 128.
void expect_targeted_cases_pass_with(const std::string& name, sm90::Schedule small, sm90::Schedule large,
                                     const std::string& self) {
  if (environment("OPENMLA_SM90_SCHEDULE") == name) {
    EXPECT_EQ(sm90::schedule_for(16), small);
    EXPECT_EQ(sm90::schedule_for(sm90::kNarrowMaxRows), small);
    EXPECT_EQ(sm90::schedule_for(128), large);
    return;
  }
  const int expected = 1 + tests_in_suites({"Sm90Cases", "Sm90Sanitize"});
  const ChildRun child = run_child("OPENMLA_SM90_SCHEDULE=" + name, "Sm90Cases.*:Sm90Sanitize.*:" + self);
  EXPECT_EQ(child.status, 0) << child.output;
  EXPECT_NE(child.output.find("[  PASSED  ] " + std::to_string(expected) + " tests."), std::string::npos)
      << child.output;
}

TEST(Sm90Schedule, SeesawRunsTheTargetedCases) {
  OPENMLA_REQUIRE_HOPPER();
  expect_targeted_cases_pass_with("seesaw", sm90::Schedule::seesaw, sm90::Schedule::seesaw,
                                  "Sm90Schedule.SeesawRunsTheTargetedCases");
}

// Narrow takes up to 32 rows per KV head; larger decodes run the asymmetric schedule.
TEST(Sm90Schedule, NarrowRunsTheTargetedCases) {
  OPENMLA_REQUIRE_HOPPER();
  expect_targeted_cases_pass_with("narrow", sm90::Schedule::narrow, sm90::Schedule::asymmetric,
                                  "Sm90Schedule.NarrowRunsTheTargetedCases");
}

// Any other value is an error at decode, not a silent fallback; the portable kernel does not read it.
TEST(Sm90Schedule, UnknownValueThrows) {
  OPENMLA_REQUIRE_HOPPER();
  if (environment("OPENMLA_SM90_SCHEDULE") == "pingpong") {
    const Problem problem = make_problem({.b = 2, .h_q = 16, .s_k = 300, .seed = 215});
    const DeviceProblem device = upload(problem);
    try {
      gpu_decode(problem, device);
      ADD_FAILURE() << "a decode with OPENMLA_SM90_SCHEDULE=pingpong did not throw";
    } catch (const openmla::Error& e) {
      EXPECT_NE(
          std::string(e.what()).find("OPENMLA_SM90_SCHEDULE: expected asymmetric, seesaw or narrow, given 'pingpong'"),
          std::string::npos)
          << e.what();
    }
    EXPECT_EQ(gpu_decode(problem, device, 0, Kernel::portable).kernel, Kernel::portable);
    return;
  }
  const ChildRun child = run_child("OPENMLA_SM90_SCHEDULE=pingpong", "Sm90Schedule.UnknownValueThrows");
  EXPECT_EQ(child.status, 0) << child.output;
  EXPECT_NE(child.output.find("[  PASSED  ] 1 test"), std::string::npos) << child.output;
}

// ---- cases -------------------------------------------------------------------------------------------

TEST(Sm90Cases, PageSizesAndKvHeads) {
  OPENMLA_REQUIRE_HOPPER();
  for (int64_t page : {64, 128, 256}) {
    for (int64_t h_kv : {1, 2, 4}) {
      SCOPED_TRACE("page_size " + std::to_string(page) + " h_kv " + std::to_string(h_kv));
      expect_hopper_matches({.b = 4,
                             .s_q = 2,
                             .h_q = 32,
                             .h_kv = h_kv,
                             .s_k = 700,
                             .varlen = true,
                             .causal = true,
                             .page_size = page,
                             .seed = static_cast<uint64_t>(300 + page + h_kv)});
    }
  }
}

// Lengths around tile and page boundaries: partial tail tiles whose unused slots hold NaN.
TEST(Sm90Cases, TailTilesWithNanSlots) {
  OPENMLA_REQUIRE_HOPPER();
  const std::vector<int32_t> lengths = {1, 2, 63, 64, 65, 127, 128, 129, 191, 257};
  for (int64_t page : {64, 128}) {
    for (int64_t parts : {0, 40}) {
      SCOPED_TRACE("page_size " + std::to_string(page) + " num_parts " + std::to_string(parts));
      expect_hopper_matches({.b = 10,
                             .h_q = 16,
                             .page_size = page,
                             .seed = static_cast<uint64_t>(320 + page + parts),
                             .lengths = lengths},
                            parts);
    }
  }
}

// Batches on both sides of cuda::kCopiedBatch: a CTA walks its part from a shared-memory copy of the
// plan up to it and from global memory above it; split and whole pieces, zero lengths, causal rows.
TEST(Sm90Cases, BatchesAroundTheWalkCopyLimit) {
  OPENMLA_REQUIRE_HOPPER();
  uint64_t seed = 600;
  for (int64_t b : {cuda::kCopiedBatch - 1, cuda::kCopiedBatch, cuda::kCopiedBatch + 1, int64_t{130}}) {
    for (int64_t parts : {0, 7}) {
      SCOPED_TRACE("b " + std::to_string(b) + " num_parts " + std::to_string(parts));
      expect_hopper_matches({.b = b,
                             .s_q = 2,
                             .h_q = 16,
                             .s_k = 200,
                             .varlen = true,
                             .causal = true,
                             .seed = seed++,
                             .zero_length_every = 5},
                            parts);
    }
  }
}

// Query rows packed per KV head (s_q * h_q / h_kv rows in 64-row tiles), causal and not.
TEST(Sm90Cases, QueryRowPacking) {
  OPENMLA_REQUIRE_HOPPER();
  uint64_t seed = 340;
  for (int64_t h_q : {16, 32, 64, 128}) {
    for (int64_t s_q : {1, 2, 3, 4, 8, 16}) {
      for (bool causal : {false, true}) {
        SCOPED_TRACE("h_q " + std::to_string(h_q) + " s_q " + std::to_string(s_q) + (causal ? " causal" : ""));
        expect_hopper_matches(
            {.b = 2, .s_q = s_q, .h_q = h_q, .s_k = 400, .varlen = true, .causal = causal, .seed = seed++});
      }
    }
  }
}

// q rows reach the asymmetric kernel by one TMA box (sm90 make_q_map) where the group divides or is a
// multiple of 64, by 16-byte copies otherwise: q views with padded heads or heads outside the query
// positions give the contiguous q's results bit for bit; groups of 24 and 96 (copied) match the reference.
TEST(Sm90Cases, QueryStridesAndGroups) {
  OPENMLA_REQUIRE_HOPPER();
  for (int64_t h_kv : {1, 2}) {
    const Problem problem = make_problem(
        {.b = 3, .s_q = 2, .h_q = 64, .h_kv = h_kv, .s_k = 700, .varlen = true, .causal = true, .seed = 440});
    const ProblemSpec& spec = problem.spec;
    const DeviceProblem device = upload(problem);
    const GpuRun contiguous = gpu_decode(problem, device);
    constexpr int64_t kPadded = 584;  // elements between the heads of one query position: 576 + 8
    // Strides {b, s_q, h_q} in elements of q stored [b, s_q, h_q, 584], then [b, h_q, s_q, 584].
    const std::vector<std::array<int64_t, 3>> layouts = {{spec.s_q * spec.h_q * kPadded, spec.h_q * kPadded, kPadded},
                                                         {spec.s_q * spec.h_q * kPadded, kPadded, spec.s_q * kPadded}};
    for (const std::array<int64_t, 3>& strides : layouts) {
      SCOPED_TRACE("h_kv " + std::to_string(h_kv) + " q strides " + std::to_string(strides[0]) + ", " +
                   std::to_string(strides[1]) + ", " + std::to_string(strides[2]));
      const DeviceBuffer q = upload_vector(laid_out_q(problem, strides, 0, spec.b * spec.s_q * spec.h_q * kPadded));
      const GpuRun strided = gpu_decode(problem, device, 0, Kernel::automatic, [&](DecodeArgs& args) {
        args.q.data = q.data();
        std::copy_n(strides.begin(), 3, args.q.strides);
      });
      EXPECT_EQ(strided.kernel, Kernel::sm90);
      EXPECT_EQ(strided.status.code, StatusCode::ok);
      EXPECT_TRUE(bitwise_equal(contiguous.output, strided.output));
    }
  }
  expect_hopper_matches(
      {.b = 3, .s_q = 2, .h_q = 48, .h_kv = 2, .s_k = 600, .varlen = true, .causal = true, .seed = 441});
  expect_hopper_matches({.b = 2, .h_q = 96, .s_k = 900, .varlen = true, .seed = 442});
}

// Which q layouts and groups make_q_map describes with one box per m-tile, and which it leaves to copies.
TEST(Sm90Cases, QueryMapEligibility) {
  OPENMLA_REQUIRE_HOPPER();
  const DeviceBuffer q(2 * 4 * 128 * 576 * 2);  // [2, 4, 128, 576] 16-bit
  const auto params = [&](int32_t h_q, int32_t group, int64_t head_stride) {
    cuda::DecodeParams p{};
    p.q = q.data();
    p.batch = 2;
    p.s_q = 4;
    p.h_q = h_q;
    p.group = group;
    p.q_stride_h = head_stride;
    p.q_stride_s = h_q * head_stride;
    p.q_stride_b = 4 * h_q * head_stride;
    return p;
  };
  CUtensorMap map{};
  EXPECT_TRUE(sm90::make_q_map(params(128, 128, 576), DType::bf16, map));
  EXPECT_TRUE(sm90::make_q_map(params(128, 64, 576), DType::fp16, map));
  EXPECT_TRUE(sm90::make_q_map(params(32, 16, 584), DType::bf16, map));
  EXPECT_FALSE(sm90::make_q_map(params(48, 24, 576), DType::bf16, map));
  EXPECT_FALSE(sm90::make_q_map(params(96, 96, 576), DType::bf16, map));
  EXPECT_FALSE(sm90::make_q_map(params(128, 128, 0), DType::bf16, map));
}

// Split sequences: partial results in the workspace merged by the combine kernel.
TEST(Sm90Cases, SplitPieces) {
  OPENMLA_REQUIRE_HOPPER();
  for (int64_t parts : {1, 3, 64, 300}) {
    SCOPED_TRACE("num_parts " + std::to_string(parts));
    expect_hopper_matches({.b = 5,
                           .s_q = 2,
                           .h_q = 128,
                           .s_k = 3000,
                           .varlen = true,
                           .causal = true,
                           .seed = static_cast<uint64_t>(400 + parts),
                           .zero_length_every = 4},
                          parts);
  }
}

// Pieces of 1 to 10 tiles, odd and even (the seesaw schedule pairs tiles; an odd count starts with a
// single tile), many pieces per CTA (1 or 2 parts) and few (0: the default), with causal rows whose
// limits fall into the last two tiles (s_q = 16: limits s_k - 15 ... s_k), so that up to two tiles
// need a mask and come first, and 4 m-tiles with different limits each.
TEST(Sm90Cases, TileCountsAndCausalTails) {
  OPENMLA_REQUIRE_HOPPER();
  const std::vector<int32_t> lengths = {1, 16, 64, 65, 70, 128, 135, 192, 200, 256, 262, 320, 390, 583, 640};
  for (int64_t parts : {1, 2, 7, 0}) {
    for (bool causal : {true, false}) {
      SCOPED_TRACE("num_parts " + std::to_string(parts) + (causal ? " causal" : ""));
      expect_hopper_matches({.b = static_cast<int64_t>(lengths.size()),
                             .s_q = 16,
                             .h_q = 16,
                             .causal = causal,
                             .seed = static_cast<uint64_t>(460 + parts + (causal ? 10 : 0)),
                             .lengths = lengths},
                            parts);
    }
  }
}

// Scores large enough that a row's running max rises by more than the seesaw schedule's rescale
// threshold (8 log2 units) after its first tile (softmax_scale 100: scores with a standard deviation
// of about 35 log2 units), so both the rescale of O and P and the skipped rescale run, in both
// warpgroups, over split and whole pieces.
TEST(Sm90Cases, LargeScoresMoveTheMax) {
  OPENMLA_REQUIRE_HOPPER();
  for (DType dtype : {DType::bf16, DType::fp16}) {
    for (int64_t parts : {0, 50}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " num_parts " + std::to_string(parts));
      expect_hopper_matches({.b = 6,
                             .s_q = 2,
                             .h_q = 128,
                             .s_k = 1500,
                             .varlen = true,
                             .causal = true,
                             .dtype = dtype,
                             .softmax_scale = 100.f,
                             .seed = static_cast<uint64_t>(480 + parts)},
                            parts);
    }
  }
}

// The narrow schedule (up to 32 rows per KV head): both widths (16 and 32), both dtypes, scores that
// move the max after the first tile, odd and even tile counts per piece (the warpgroups take
// alternate tiles), whole and split pieces, and KV heads.
TEST(Sm90Cases, NarrowRows) {
  OPENMLA_REQUIRE_HOPPER();
  uint64_t seed = 490;
  for (DType dtype : {DType::bf16, DType::fp16}) {
    for (int64_t h_q : {8, 16, 32}) {
      for (int64_t parts : {0, 1, 60}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " h_q " + std::to_string(h_q) + " num_parts " +
                     std::to_string(parts));
        expect_hopper_matches({.b = 7,
                               .h_q = h_q,
                               .dtype = dtype,
                               .softmax_scale = 100.f,
                               .seed = seed++,
                               .lengths = {1, 64, 65, 128, 200, 1000, 1500}},
                              parts);
        expect_hopper_matches({.b = 3,
                               .s_q = 2,
                               .h_q = h_q,
                               .h_kv = 2,
                               .s_k = 900,
                               .varlen = true,
                               .causal = true,
                               .dtype = dtype,
                               .seed = seed++},
                              parts);
      }
    }
  }
}

TEST(Sm90Cases, Fp16) {
  OPENMLA_REQUIRE_HOPPER();
  expect_hopper_matches(
      {.b = 4, .s_q = 2, .h_q = 128, .s_k = 1500, .varlen = true, .causal = true, .dtype = DType::fp16, .seed = 410});
  expect_hopper_matches(
      {.b = 6, .h_q = 16, .h_kv = 2, .s_k = 1500, .varlen = true, .page_size = 128, .dtype = DType::fp16, .seed = 411});
}

TEST(Sm90Cases, ZeroLengthsAndRowsWithoutKeys) {
  OPENMLA_REQUIRE_HOPPER();
  expect_hopper_matches(
      {.b = 9, .s_q = 2, .h_q = 16, .s_k = 300, .varlen = true, .causal = true, .seed = 420, .zero_length_every = 2});
  expect_hopper_matches({.b = 3, .s_q = 8, .h_q = 16, .causal = true, .seed = 421, .lengths = {3, 8, 0}});
}

// A batch in which every length is 0 needs no cache block; with a cache of no blocks there is nothing
// to stream and no tensor map to build, so the portable kernel serves it.
TEST(Sm90Cases, EmptyCacheRunsPortable) {
  OPENMLA_REQUIRE_HOPPER();
  const Problem problem = make_problem({.b = 4, .h_q = 128, .s_k = 0, .seed = 422});
  ASSERT_EQ(problem.num_blocks, 0);
  const DeviceProblem device = upload(problem);
  const GpuRun run = gpu_decode(problem, device, 0);
  EXPECT_EQ(run.kernel, Kernel::portable);
  EXPECT_EQ(run.status.code, StatusCode::ok);
  EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
}

// A used block-table entry out of range (negative in one sequence, num_blocks in another): those
// sequences are NaN, the status names the first, nothing else changes.
TEST(Sm90Cases, BadPageIds) {
  OPENMLA_REQUIRE_HOPPER();
  const Problem problem = make_problem({.b = 5, .s_q = 2, .h_q = 32, .s_k = 500, .causal = true, .seed = 430});
  DeviceProblem device = upload(problem);
  const int32_t negative = -5;
  const auto too_large = static_cast<int32_t>(problem.num_blocks);
  device.block_table.upload(&negative, 4, static_cast<size_t>(1 * problem.max_blocks_per_seq + 2) * 4);
  device.block_table.upload(&too_large, 4, static_cast<size_t>(3 * problem.max_blocks_per_seq) * 4);
  const GpuRun run = gpu_decode(problem, device);
  EXPECT_EQ(run.kernel, Kernel::sm90);
  EXPECT_EQ(run.status.code, StatusCode::page_out_of_range);
  EXPECT_EQ(run.status.batch, 1);
  device.block_table.upload(problem.block_table.data(), problem.block_table.size() * 4);
  const Reference ref = gpu_reference(problem, device);
  const Reference got = reference_from_output(run.output.out_view(), run.output.lse_view());
  const int64_t per_seq = problem.spec.s_q * problem.spec.h_q * problem.spec.d_v;
  for (int64_t n = 0; n < problem.spec.b; ++n) {
    const bool bad = n == 1 || n == 3;
    for (int64_t e = 0; e < per_seq; ++e) {
      const auto at = static_cast<size_t>(n * per_seq + e);
      if (bad) {
        ASSERT_TRUE(std::isnan(got.out[at])) << "sequence " << n << " element " << e;
      } else {
        ASSERT_LE(std::abs(got.out[at] - ref.out[at]), 1e-3 + std::abs(ref.out[at]) / 64)
            << "sequence " << n << " element " << e;
      }
    }
    for (int64_t r = 0; r < problem.spec.h_q * problem.spec.s_q; ++r) {
      const auto at = static_cast<size_t>(n * problem.spec.h_q * problem.spec.s_q + r);
      EXPECT_EQ(std::isnan(got.lse[at]), bad) << "sequence " << n << " lse " << r;
    }
  }
}

TEST(Sm90Cases, RepeatedRunsAreBitwiseIdentical) {
  OPENMLA_REQUIRE_HOPPER();
  const Problem problem =
      make_problem({.b = 16, .s_q = 2, .h_q = 128, .s_k = 3000, .varlen = true, .causal = true, .seed = 440});
  const DeviceProblem device = upload(problem);
  const GpuRun first = gpu_decode(problem, device);
  EXPECT_EQ(first.kernel, Kernel::sm90);
  for (int repeat = 0; repeat < 2; ++repeat) {
    EXPECT_TRUE(bitwise_equal(first.output, gpu_decode(problem, device).output));
  }
}

// Plan parts of several pieces, each piece with its own bad-page flag: a bad page marks its piece only,
// neither the piece before it in the part nor the one after. Part 0 walks sequences 0-2 (1, 2, 1
// tiles), part 1 sequences 3-5 (4, 1, 1 tiles); the bad pages are the first tile of sequence 1, the
// third of sequence 3 and the only tile of sequence 5.
TEST(Sm90Cases, BadPageInOnePieceOfAPart) {
  OPENMLA_REQUIRE_HOPPER();
  for (const int64_t h_q : {16, 128}) {
    SCOPED_TRACE("h_q " + std::to_string(h_q));
    const Problem problem = make_problem({.b = 6,
                                          .s_q = 2,
                                          .h_q = h_q,
                                          .causal = true,
                                          .seed = static_cast<uint64_t>(470 + h_q),
                                          .lengths = {40, 100, 30, 200, 64, 10}});
    DeviceProblem device = upload(problem);
    const int32_t negative = -1;
    const auto too_large = static_cast<int32_t>(problem.num_blocks);
    const int64_t row = problem.max_blocks_per_seq;
    device.block_table.upload(&negative, 4, static_cast<size_t>(1 * row) * 4);
    device.block_table.upload(&too_large, 4, static_cast<size_t>(3 * row + 2) * 4);
    device.block_table.upload(&negative, 4, static_cast<size_t>(5 * row) * 4);
    const GpuRun run = gpu_decode(problem, device, 2);
    EXPECT_EQ(run.kernel, Kernel::sm90);
    EXPECT_EQ(run.status.code, StatusCode::page_out_of_range);
    EXPECT_EQ(run.status.batch, 1);
    device.block_table.upload(problem.block_table.data(), problem.block_table.size() * 4);
    expect_poisoned(problem, device, run.output, {1, 3, 5});
  }
}

// The small grid for compute-sanitizer (memcheck, racecheck, synccheck): splits, tails, zero
// lengths, two m-tiles, two KV heads, both dtypes.
TEST(Sm90Sanitize, SmallGrid) {
  OPENMLA_REQUIRE_HOPPER();
  uint64_t seed = 450;
  for (int64_t h_q : {16, 128}) {
    for (int64_t page : {64, 128}) {
      expect_hopper_matches({.b = 3,
                             .s_q = 2,
                             .h_q = h_q,
                             .h_kv = page == 64 ? 1 : 2,
                             .s_k = 150,
                             .varlen = true,
                             .causal = true,
                             .page_size = page,
                             .seed = seed++,
                             .zero_length_every = 3},
                            4);
    }
  }
  expect_hopper_matches({.b = 2, .h_q = 16, .s_k = 200, .dtype = DType::fp16, .seed = seed++});
}

}  // namespace
}  // namespace openmla::test
