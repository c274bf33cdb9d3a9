// openmla::plan_layout: the public description of where num_splits lives in a plan buffer agrees with
// the buffer plan() writes.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/schedule.h"
#include "openmla/openmla.h"

namespace openmla {
namespace {

TEST(PlanLayout, SizeIsPlanBufferSize) {
  for (int64_t batch : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{1000}, kMaxBatch}) {
    for (int64_t parts : {int64_t{1}, int64_t{3}, int64_t{132}, kMaxParts}) {
      const PlanLayout layout = plan_layout(batch, parts);
      EXPECT_EQ(layout.bytes, plan_buffer_size({.batch = batch, .h_q = 8, .num_parts = parts}));
      EXPECT_EQ(layout.num_splits_bytes, (batch + 1) * 4);
      EXPECT_EQ(layout.num_splits_offset % 4, 0);
      EXPECT_LE(layout.num_splits_offset + layout.num_splits_bytes, layout.bytes);
    }
  }
}

// num_splits read at the published offset is the schedule's split prefix sum for these lengths.
TEST(PlanLayout, NumSplitsIsWhatPlanWrote) {
  const std::vector<int32_t> seqlens{5, 0, 4096, 700, 1};
  const int64_t batch = 5;
  const int64_t parts = 9;
  const PlanLayout layout = plan_layout(batch, parts);
  std::vector<int64_t> buffer(static_cast<size_t>(layout.bytes / 8 + 1));
  plan({.batch = batch, .h_q = 16, .num_parts = parts},
       make_view(const_cast<int32_t*>(seqlens.data()), DType::int32, {batch}), {buffer.data(), layout.bytes});
  const char* base = reinterpret_cast<const char*>(buffer.data());
  const auto* num_splits = reinterpret_cast<const int32_t*>(base + layout.num_splits_offset);  // [b + 1]
  const schedule::View view = schedule::view(buffer.data(), batch, parts);
  EXPECT_EQ(num_splits, view.split_offset);
  EXPECT_EQ(num_splits[0], 0);
  const int32_t splits_of_long_sequence = num_splits[3] - num_splits[2];
  EXPECT_GT(splits_of_long_sequence, 1);  // 4096 keys over 9 parts: the long sequence is split
  for (int64_t i = 0; i < batch; ++i) {
    EXPECT_GE(num_splits[i + 1] - num_splits[i], 1) << "sequence " << i;
  }
  EXPECT_LE(num_splits[batch], batch + parts - 1);
}

void expect_layout_error(int64_t batch, int64_t parts, const std::string& what) {
  try {
    plan_layout(batch, parts);
    ADD_FAILURE() << "plan_layout(" << batch << ", " << parts << ") accepted bad counts";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(PlanLayout, RejectsBadCounts) {
  expect_layout_error(-1, 4, "openmla: batch: expected 0 <= batch <= ");
  expect_layout_error(int64_t{1} << 40, 4, "openmla: batch: expected 0 <= batch <= ");
  expect_layout_error(4, 0, "openmla: num_parts: expected 1 <= num_parts <= ");
  expect_layout_error(4, kMaxParts + 1, "openmla: num_parts: expected 1 <= num_parts <= ");
}

}  // namespace
}  // namespace openmla
