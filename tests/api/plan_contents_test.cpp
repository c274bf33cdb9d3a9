// The CPU backend trusts a plan buffer only after checking it against the plan of the given lengths:
// a plan made for lengths with other tile counts (stale) and a buffer that openmla::plan did not write
// are refused up front, naming `plan`, with nothing written; a plan made for the same tile counts is
// accepted. No content of the buffer crashes the process.

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "core/schedule.h"
#include "random.h"
#include "reference.h"
#include "valid_decode.h"

namespace openmla::test {
namespace {

constexpr const char* kStale = "openmla: plan: expected a plan made for these cache_seqlens";
constexpr const char* kForeign =
    "openmla: plan: expected a plan buffer written by openmla::plan for b = 5 and num_parts = 4";

// Lengths of 4, 1, 11, 0 and 3 key tiles of 64; 4 parts split the third sequence.
class PlanContents : public ValidDecode {
 protected:
  void SetUp() override {
    set_up({.h_q = 16, .seed = 42, .lengths = {256, 31, 700, 0, 130}}, 4);
    words_ = plan_.buffer.bytes / 4;
    original_.assign(static_cast<const char*>(plan_memory_.data()),
                     static_cast<const char*>(plan_memory_.data()) + plan_.buffer.bytes);
  }

  // Replaces the plan with one made for `lengths`.
  void replan(std::vector<int32_t> lengths) {
    plan_ = plan(config_, make_view(lengths.data(), DType::int32, {config_.batch}), plan_.buffer);
  }

  int32_t* words() { return static_cast<int32_t*>(plan_memory_.data()); }
  void restore() { std::memcpy(plan_memory_.data(), original_.data(), original_.size()); }

  int64_t words_ = 0;
  std::vector<char> original_;
};

TEST_F(PlanContents, StalePlanIsRefused) {
  replan({100, 31, 700, 0, 130});  // sequence 0: 2 tiles where 256 keys need 4
  expect_rejected(
      {"openmla: plan: expected a plan made for these cache_seqlens (sequence 0 needs 4 key "
       "tiles), given one made for 2"});
  replan({256, 31, 700, 0, 129 + 64});
  expect_rejected({"(sequence 4 needs 3 key tiles), given one made for 4"});
  replan({256, 31, 700, 1, 130});
  expect_rejected({"(sequence 3 needs 0 key tiles), given one made for 1"});
}

TEST_F(PlanContents, PlanForLengthsOfTheSameTileCountsIsAccepted) {
  replan({200, 1, 650, 0, 129});
  decode(args_);
  EXPECT_TRUE(matches(reference_decode(problem_), output_.out_view(), output_.lse_view()));
}

TEST_F(PlanContents, FilledBuffersAreRefused) {
  const struct {
    const char* name;
    int32_t word;
  } fills[] = {{"zeros", 0}, {"0x7fffffff", 0x7fffffff}, {"40", 40}, {"0xabababab", -0x54545455}, {"-1", -1}};
  for (const auto& fill : fills) {
    SCOPED_TRACE(fill.name);
    for (int64_t w = 0; w < words_; ++w) {
      words()[w] = fill.word;
    }
    expect_rejected({kForeign});
  }
}

TEST_F(PlanContents, RandomBuffersAreRefused) {
  Rng rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    SCOPED_TRACE(trial);
    restore();
    // Half the trials keep the header, so that the check of the body is what refuses them.
    for (int64_t w = trial % 2 == 0 ? 0 : 4; w < words_; ++w) {
      words()[w] = static_cast<int32_t>(rng.next());
    }
    expect_rejected({"openmla: plan: expected a plan"});
  }
}

TEST_F(PlanContents, EveryFieldIsChecked) {
  // One field at a time off by one: the header, each prefix sum, each part field, each split offset.
  const schedule::Layout l = schedule::layout(config_.batch, config_.num_parts);
  std::vector<std::pair<std::string, int64_t>> fields;  // name, int32 word index
  for (int w = 0; w < 3; ++w) {
    fields.emplace_back("header word " + std::to_string(w), w);
  }
  for (int64_t i = 0; i <= config_.batch; ++i) {
    fields.emplace_back("prefix[" + std::to_string(i) + "]", l.prefix_offset / 4 + 2 * i);
  }
  for (int64_t w = 0; w < config_.num_parts * 5; ++w) {
    fields.emplace_back("parts word " + std::to_string(w), l.parts_offset / 4 + w);
  }
  for (int64_t i = 0; i <= config_.batch; ++i) {
    fields.emplace_back("split_offset[" + std::to_string(i) + "]", l.split_offset_offset / 4 + i);
  }
  for (const auto& [name, word] : fields) {
    SCOPED_TRACE(name);
    for (int32_t delta : {1, -1}) {
      restore();
      words()[word] += delta;
      expect_rejected({name.rfind("prefix", 0) == 0 ? "openmla: plan: expected a plan" : kForeign});
    }
  }
}

}  // namespace
}  // namespace openmla::test
