// The GPU decode with plans that do not fit the decode: made for other lengths (stale), overwritten or
// never written (bad), made for other shapes (served); and NaN in q. Nothing synchronizes: the kernels
// check the plan as they read it, make the rows they cannot trust NaN and record the offence in the
// status word. Each case runs every kernel this machine has (portable, and sm90 on Hopper). The fuzzed
// buffers are in the suite GpuPlanSanitize, which scripts/gpu-check runs under compute-sanitizer
// (memcheck, racecheck, synccheck): no content of a plan buffer may make a kernel access memory out
// of bounds.

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "core/schedule.h"
#include "device.h"
#include "openmla/error.h"
#include "poisoned.h"
#include "random.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

const Device kGpu{DeviceType::cuda, 0};

std::string trace(Kernel kernel, int64_t num_parts) {
  return std::string(kernel_name(kernel)) + " kernel, num_parts " + std::to_string(num_parts);
}

// Lengths of 4, 1, 11, 0 and 3 key tiles of 64.
class GpuPlan : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!has_gpu()) {
      GTEST_SKIP() << "no CUDA device on this machine: GPU test skipped";
    }
    problem_ = make_problem({.h_q = 16, .seed = 60, .lengths = {256, 31, 700, 0, 130}});
    device_ = upload(problem_);
  }

  // A plan of `num_parts` parts (0: openmla's choice) made on the device for `lengths`.
  Plan plan_for(std::vector<int32_t> lengths, int64_t num_parts) {
    const PlanConfig config = gpu_plan_config(problem_, num_parts);
    memory_ = DeviceBuffer(static_cast<size_t>(plan_buffer_size(config)));
    DeviceBuffer seqlens(lengths.size() * 4);
    seqlens.upload(lengths.data(), seqlens.bytes());
    const TensorView view = make_view(seqlens.data(), DType::int32, {config.batch}, kGpu);
    return plan(config, view, Buffer{memory_.data(), static_cast<int64_t>(memory_.bytes()), kGpu});
  }

  Plan plan_for_problem(int64_t num_parts) { return plan_for(problem_.seqlens, num_parts); }

  // The plan buffer as int32 words, read and written back.
  std::vector<int32_t> words() {
    std::vector<int32_t> w(memory_.bytes() / 4);
    memory_.download(w.data(), w.size() * 4);
    return w;
  }
  void write(const std::vector<int32_t>& w) { memory_.upload(w.data(), w.size() * 4); }

  std::vector<int64_t> all_sequences() const {
    std::vector<int64_t> all;
    for (int64_t n = 0; n < problem_.spec.b; ++n) {
      all.push_back(n);
    }
    return all;
  }

  Problem problem_;
  DeviceProblem device_;
  DeviceBuffer memory_;
};

class GpuPlanSanitize : public GpuPlan {};
class GpuPlanChecks : public GpuPlan {};

void expect_plan_offence(const GpuRun& run) {
  EXPECT_TRUE(run.status.code == StatusCode::bad_plan || run.status.code == StatusCode::stale_plan)
      << "status " << static_cast<int>(run.status.code);
}

TEST_F(GpuPlanSanitize, WrongHeaderMakesEveryRowNaN) {
  Rng rng(61);
  for (int64_t num_parts : {1, 4}) {
    const Plan plan = plan_for_problem(num_parts);
    const size_t n = memory_.bytes() / 4;
    std::vector<int32_t> random(n);
    for (int32_t& w : random) {
      w = static_cast<int32_t>(rng.next());
    }
    const struct {
      const char* name;
      std::vector<int32_t> words;
    } fills[] = {{"zeros", std::vector<int32_t>(n, 0)},
                 {"0x7fffffff", std::vector<int32_t>(n, 0x7fffffff)},
                 {"40", std::vector<int32_t>(n, 40)},
                 {"random", random}};
    for (const auto& fill : fills) {
      write(fill.words);
      for (Kernel kernel : kernels_here()) {
        SCOPED_TRACE(std::string(fill.name) + ", " + trace(kernel, num_parts));
        const GpuRun run = gpu_decode_with(problem_, device_, plan, kernel);
        EXPECT_EQ(run.status.code, StatusCode::bad_plan);
        EXPECT_EQ(run.status.batch, -1);
        EXPECT_THROW(check_status(run.status), Error);
        expect_poisoned(problem_, device_, run.output, all_sequences());
      }
    }
  }
}

TEST_F(GpuPlanSanitize, RandomBodyIsReported) {
  // The header intact, every other word random.
  const Plan plan = plan_for_problem(4);
  const std::vector<int32_t> good = words();
  Rng rng(62);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<int32_t> changed = good;
    for (size_t w = schedule::layout(0, 0).prefix_offset / 4; w < changed.size(); ++w) {
      changed[w] = static_cast<int32_t>(trial % 2 == 0 ? rng.next() : rng.below(64));
    }
    write(changed);
    for (Kernel kernel : kernels_here()) {
      SCOPED_TRACE("trial " + std::to_string(trial) + ", " + trace(kernel, 4));
      expect_plan_offence(gpu_decode_with(problem_, device_, plan, kernel));
    }
  }
}

TEST_F(GpuPlanSanitize, NeverWrittenBuffer) {
  // The CUDA-graph recipe's buffer used before its plan kernel ran: whatever cudaMalloc hands out,
  // the decode is either right (an earlier plan of these lengths was there) or reports the plan.
  const PlanConfig config = resolve_plan_config(gpu_plan_config(problem_, 4));
  DeviceBuffer unwritten(static_cast<size_t>(plan_buffer_size(config)));
  const Plan plan{config, Buffer{unwritten.data(), static_cast<int64_t>(unwritten.bytes()), kGpu}};
  for (Kernel kernel : kernels_here()) {
    SCOPED_TRACE(trace(kernel, 4));
    const GpuRun run = gpu_decode_with(problem_, device_, plan, kernel);
    if (run.status.code == StatusCode::ok) {
      EXPECT_TRUE(matches(gpu_reference(problem_, device_), run.output.out_view(), run.output.lse_view()));
    } else {
      expect_plan_offence(run);
    }
  }
}

TEST_F(GpuPlanChecks, PlanForOtherLengths) {
  const struct {
    std::vector<int32_t> made_for;
    StatusCode code;
    int64_t first_offence;
    std::vector<int64_t> nan_sequences;
  } cases[] = {
      // Sequence 0: 2 tiles where 256 keys need 4; sequence 4: 4 where 130 keys need 3.
      {{100, 31, 700, 0, 194}, StatusCode::stale_plan, 0, {0, 4}},
      // The same tile counts: accepted.
      {{200, 1, 650, 0, 129}, StatusCode::ok, -1, {}},
  };
  for (const auto& c : cases) {
    for (int64_t num_parts : {1, 4, 0}) {
      const Plan plan = plan_for(c.made_for, num_parts);
      for (Kernel kernel : kernels_here()) {
        SCOPED_TRACE("made for sequence 0 of " + std::to_string(c.made_for[0]) + ", " + trace(kernel, num_parts));
        const GpuRun run = gpu_decode_with(problem_, device_, plan, kernel);
        EXPECT_EQ(run.status.code, c.code);
        EXPECT_EQ(run.status.batch, c.first_offence);
        expect_poisoned(problem_, device_, run.output, c.nan_sequences);
      }
    }
  }
}

TEST_F(GpuPlanChecks, EveryFieldIsChecked) {
  // One field at a time off by one, with the header intact: the kernels notice each (the host test
  // Pieces.EveryFieldChangeIsNoticedOrHarmless tries more changes and part counts on the same walk). The
  // Hopper kernel loads a part's first q rows and tiles from its stored fields while it walks it, so a
  // changed first tile there leaves loads that the part's first piece releases unread, and a changed
  // first sequence loads that no piece uses (the part's range no longer matches), which it waits for.
  const Plan plan = plan_for_problem(4);
  const std::vector<int32_t> good = words();
  const schedule::Layout l = schedule::layout(plan.config.batch, plan.config.num_parts);
  std::vector<std::pair<std::string, int64_t>> fields;  // name, int32 word index
  for (int64_t i = 0; i <= plan.config.batch; ++i) {
    fields.emplace_back("prefix[" + std::to_string(i) + "]", l.prefix_offset / 4 + 2 * i);
    fields.emplace_back("split_offset[" + std::to_string(i) + "]", l.split_offset_offset / 4 + i);
  }
  for (int64_t w = 0; w < plan.config.num_parts * schedule::kPartFields; ++w) {
    fields.emplace_back("parts word " + std::to_string(w), l.parts_offset / 4 + w);
  }
  for (const auto& [name, word] : fields) {
    std::vector<int32_t> changed = good;
    changed[static_cast<size_t>(word)] += 1;
    write(changed);
    for (Kernel kernel : kernels_here()) {
      SCOPED_TRACE(name + " + 1, " + trace(kernel, 4));
      expect_plan_offence(gpu_decode_with(problem_, device_, plan, kernel));
    }
  }
}

TEST_F(GpuPlanChecks, PartLengthOutOfRangeMakesEveryRowNaN) {
  // The header's part length too short to cover the line, past twice the shortest, or negative.
  const Plan plan = plan_for_problem(4);
  const std::vector<int32_t> good = words();
  const schedule::View v = schedule::view(good.data(), plan.config.batch, plan.config.num_parts);
  const int64_t shortest = schedule::part_length(v.prefix[plan.config.batch], plan.config.num_parts);
  for (const int64_t len : {shortest - 1, 2 * shortest + 1, int64_t{-shortest}}) {
    std::vector<int32_t> changed = good;
    schedule::store_header(changed.data(), plan.config.batch, plan.config.num_parts, schedule::fixed_cost(v), len);
    write(changed);
    for (Kernel kernel : kernels_here()) {
      SCOPED_TRACE("part length " + std::to_string(len) + ", " + trace(kernel, 4));
      const GpuRun run = gpu_decode_with(problem_, device_, plan, kernel);
      EXPECT_EQ(run.status.code, StatusCode::bad_plan);
      expect_poisoned(problem_, device_, run.output, all_sequences());
    }
  }
}

TEST(GpuPlanReuse, PlanServesOtherShapes) {
  // A plan made for h_q = 16, s_q = 1, page 32 serves a decode of h_q = 128, s_q = 2, h_kv = 2, page 64
  // (which the sm90 kernel serves too).
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem(
      {.s_q = 2, .h_q = 128, .h_kv = 2, .causal = true, .page_size = 64, .seed = 63, .lengths = {700, 31, 1500, 64}});
  const DeviceProblem device = upload(problem);
  for (int64_t num_parts : {0, 7}) {
    const PlanConfig config{
        .batch = 4, .s_q = 1, .h_q = 16, .h_kv = 1, .page_size = 32, .device = kGpu, .num_parts = num_parts};
    DeviceBuffer memory(static_cast<size_t>(plan_buffer_size(config)));
    const Plan plan = openmla::plan(config, device.seqlens_view(problem),
                                    Buffer{memory.data(), static_cast<int64_t>(memory.bytes()), kGpu});
    for (Kernel kernel : kernels_here()) {
      SCOPED_TRACE(trace(kernel, num_parts));
      const GpuRun run = gpu_decode_with(problem, device, plan, kernel);
      EXPECT_EQ(run.status.code, StatusCode::ok);
      EXPECT_TRUE(matches(gpu_reference(problem, device), run.output.out_view(), run.output.lse_view()));
    }
  }
}

TEST(GpuNaN, NaNInQueryGivesNaNRowWhateverTheSplits) {
  // One NaN element in q row (sequence 1, token 1, head 3): that row's out and lse are NaN whether the
  // sequence is split or not; every other row is bitwise what it is without the NaN.
  OPENMLA_REQUIRE_GPU();
  const Problem clean = make_problem({.s_q = 2, .h_q = 16, .causal = true, .seed = 64, .lengths = {300, 3000, 100}});
  Problem poisoned = make_problem(clean.spec);
  const ProblemSpec& s = clean.spec;
  const int64_t nan_row = (1 * s.s_q + 1) * s.h_q + 3;               // in [b, s_q, h_q]
  poisoned.q[static_cast<size_t>(nan_row * s.d_qk + 100)] = 0x7fc0;  // bf16 NaN
  const DeviceProblem clean_device = upload(clean);
  const DeviceProblem poisoned_device = upload(poisoned);
  for (Kernel kernel : kernels_here()) {
    for (int64_t num_parts : {1, 2, 16, 0}) {
      SCOPED_TRACE(trace(kernel, num_parts));
      const GpuRun expected = gpu_decode(clean, clean_device, num_parts, kernel);
      const GpuRun got = gpu_decode(poisoned, poisoned_device, num_parts, kernel);
      for (int64_t row = 0; row < s.b * s.s_q * s.h_q; ++row) {
        const int64_t n = row / (s.s_q * s.h_q);
        const int64_t i = row / s.h_q % s.s_q;
        const int64_t h = row % s.h_q;
        const size_t lse_at = static_cast<size_t>((n * s.h_q + h) * s.s_q + i);
        if (row == nan_row) {
          EXPECT_TRUE(std::isnan(got.output.lse[lse_at])) << "lse " << got.output.lse[lse_at];
        } else {
          EXPECT_EQ(got.output.lse[lse_at], expected.output.lse[lse_at]) << "row " << row;
        }
        for (int64_t d = 0; d < s.d_v; ++d) {
          const size_t at = static_cast<size_t>(row * s.d_v + d);
          const uint16_t bits = got.output.out[at];
          if (row == nan_row) {
            ASSERT_TRUE((bits & 0x7f80) == 0x7f80 && (bits & 0x7f) != 0) << "out element " << d;
          } else {
            ASSERT_EQ(bits, expected.output.out[at]) << "row " << row << " element " << d;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace openmla::test
