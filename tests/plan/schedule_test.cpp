// Invariants of the split-KV schedule (src/core/schedule.h) over many random length sets,
// including zeros, negatives (bad input treated as empty) and lengths near INT32_MAX.

#include "core/schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/host_planner.h"
#include "random.h"

namespace openmla::schedule {
namespace {

// The fixed costs of a sequence the schedules below are made with: the portable kernel's and the Hopper
// kernel's, and the range's ends.
constexpr int64_t kFixedCosts[] = {1, kDefaultFixedCost, 4, kMaxFixedCost};

struct Piece {
  int64_t part;
  int64_t tile_begin;
  int64_t tile_end;
  int64_t split;
};

// Checks every invariant of one schedule, failing with the lengths' description on the first broken one.
void check_schedule(const std::vector<int32_t>& seqlens, int64_t num_parts, int64_t fixed) {
  const auto batch = static_cast<int64_t>(seqlens.size());
  const Layout l = layout(batch, num_parts);
  std::vector<int64_t> storage(static_cast<size_t>(l.bytes / 8 + 1));  // 8-byte aligned plan buffer
  build_on_host(seqlens.data(), batch, num_parts, fixed, storage.data());
  const View v = view(storage.data(), batch, num_parts);
  SCOPED_TRACE(::testing::Message() << "batch " << batch << ", num_parts " << num_parts << ", fixed cost " << fixed);
  ASSERT_TRUE(header_matches(v, batch, num_parts));
  ASSERT_EQ(fixed_cost(v), fixed);

  int64_t total = 0;
  for (int64_t i = 0; i < batch; ++i) {
    ASSERT_EQ(v.prefix[i], total);
    total += fixed + (seqlens[i] <= 0 ? 0 : (int64_t{seqlens[i]} + kTileN - 1) / kTileN);
  }
  ASSERT_EQ(v.prefix[batch], total);
  const int64_t len = (total + num_parts - 1) / num_parts;

  std::vector<std::vector<Piece>> pieces(static_cast<size_t>(batch));  // per sequence, in part order
  for (int64_t p = 0; p < num_parts; ++p) {
    const Part part = load_part(v.parts, p);
    const int64_t start = p * len;
    const int64_t owned = std::max<int64_t>(0, std::min(start + len, total) - start);
    if (part.first_seq > part.last_seq) {
      EXPECT_LE(owned, 2 * fixed - 1) << "empty part " << p << " owns work";
      continue;
    }
    ASSERT_GE(part.first_seq, 0);
    ASSERT_LT(part.last_seq, batch);
    int64_t tiles_done = 0;
    for (int64_t i = part.first_seq; i <= part.last_seq; ++i) {
      const int64_t tiles = v.prefix[i + 1] - v.prefix[i] - fixed;
      const int64_t begin = i == part.first_seq ? part.first_tile_begin : 0;
      const int64_t end = i == part.last_seq ? part.last_tile_end : tiles;
      ASSERT_LE(0, begin);
      ASSERT_LE(end, tiles);
      ASSERT_TRUE(begin < end || tiles == 0) << "part " << p << " holds an empty piece of sequence " << i;
      tiles_done += end - begin;
      pieces[i].push_back({p, begin, end, i == part.first_seq ? part.first_split : 0});
    }
    // Balance. The part owns the units [p*len, p*len + len) of the line (clipped to total). Its work
    // (tiles plus the fixed cost per sequence it touches) differs from that by at most the overhead of the
    // sequence it continues (units before its start) and the spill of a zero-length sequence at its
    // end, or the reverse: the overhead units of a sequence whose tiles start in the next part.
    const int64_t work = tiles_done + fixed * (part.last_seq - part.first_seq + 1);
    EXPECT_LE(tiles_done, owned) << "part " << p;
    EXPECT_LE(work, owned + 2 * fixed - 1) << "part " << p;
    EXPECT_GE(work, owned - (2 * fixed - 1)) << "part " << p;
  }

  ASSERT_EQ(v.split_offset[0], 0);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t tiles = v.prefix[i + 1] - v.prefix[i] - fixed;
    const auto& seq = pieces[i];
    ASSERT_FALSE(seq.empty()) << "sequence " << i << " is in no part";
    ASSERT_EQ(v.split_offset[i + 1] - v.split_offset[i], static_cast<int64_t>(seq.size()))
        << "sequence " << i << ": split_offset disagrees with the parts";
    if (tiles == 0) {
      ASSERT_EQ(seq.size(), 1u) << "zero-length sequence " << i << " written by several parts";
    }
    int64_t next_tile = 0;
    for (size_t k = 0; k < seq.size(); ++k) {
      ASSERT_EQ(seq[k].tile_begin, next_tile) << "sequence " << i << ": tiles not covered exactly once";
      ASSERT_EQ(seq[k].split, static_cast<int64_t>(k)) << "sequence " << i << ": splits out of order";
      next_tile = seq[k].tile_end;
    }
    ASSERT_EQ(next_tile, tiles) << "sequence " << i << ": tail not covered";
  }
  EXPECT_LE(v.split_offset[batch], max_splits(batch, num_parts));
}

int32_t draw_length(openmla::test::Rng& rng) {
  switch (rng.below(6)) {
    case 0:
      return 0;
    case 1:
      return static_cast<int32_t>(rng.below(64) + 1);
    case 2:
      return static_cast<int32_t>(rng.below(5000));
    case 3:
      return static_cast<int32_t>(64 * rng.below(100));  // exact tile multiples
    case 4:
      return std::numeric_limits<int32_t>::max() - static_cast<int32_t>(rng.below(1000));
    default:
      return -static_cast<int32_t>(rng.below(100) + 1);
  }
}

TEST(Schedule, RandomLengthSets) {
  openmla::test::Rng rng(2024);
  for (int trial = 0; trial < 3000; ++trial) {
    const int64_t batch = trial % 10 == 0 ? rng.below(400) + 1 : rng.below(20) + 1;
    std::vector<int32_t> seqlens(static_cast<size_t>(batch));
    for (int32_t& s : seqlens) {
      s = draw_length(rng);
    }
    const int64_t num_parts = trial % 3 == 0 ? rng.below(2000) + 1 : rng.below(40) + 1;
    check_schedule(seqlens, num_parts, kFixedCosts[trial % std::size(kFixedCosts)]);
    if (::testing::Test::HasFatalFailure()) {
      return;
    }
  }
}

TEST(Schedule, HandPickedShapes) {
  for (const int64_t fixed : kFixedCosts) {
    check_schedule({0}, 1, fixed);
    check_schedule({0}, 132, fixed);
    check_schedule({0, 0, 0, 0}, 2, fixed);
    check_schedule({1}, 1, fixed);
    check_schedule({64}, 3, fixed);
    check_schedule({65, 0, 4096}, 132, fixed);
    check_schedule(std::vector<int32_t>(128, 4096), 132, fixed);
    check_schedule(std::vector<int32_t>(1000, 0), 7, fixed);
    check_schedule({std::numeric_limits<int32_t>::max()}, 1000, fixed);
    check_schedule(std::vector<int32_t>(64, std::numeric_limits<int32_t>::max()), 132, fixed);
  }
}

TEST(Schedule, OneLongSequenceIsSplitEvenly) {
  // 132 parts over 32768 tiles + 2: every part but the last does ceil(total / 132) units.
  const std::vector<int32_t> seqlens{32768 * 64};
  Layout l = layout(1, 132);
  std::vector<int64_t> storage(static_cast<size_t>(l.bytes / 8 + 1));
  build_on_host(seqlens.data(), 1, 132, kDefaultFixedCost, storage.data());
  const View v = view(storage.data(), 1, 132);
  EXPECT_EQ(v.split_offset[1], 132);
  const int64_t len = (32768 + kDefaultFixedCost + 131) / 132;
  for (int64_t p = 1; p < 131; ++p) {
    const Part part = load_part(v.parts, p);
    EXPECT_EQ(part.last_tile_end - part.first_tile_begin, len) << "part " << p;
    EXPECT_EQ(part.first_split, p);
  }
}

// The host's check of a plan before a CPU decode reads the plan's own fixed cost.
TEST(Schedule, CompareOnHostReadsThePlansFixedCost) {
  const std::vector<int32_t> seqlens{700, 0, 65, 4096};
  std::vector<int32_t> other = seqlens;
  other[2] = 129;  // 3 tiles where 65 keys need 2
  for (const int64_t fixed : kFixedCosts) {
    SCOPED_TRACE("fixed cost " + std::to_string(fixed));
    std::vector<int64_t> storage(static_cast<size_t>(layout(4, 5).bytes / 8));
    build_on_host(seqlens.data(), 4, 5, fixed, storage.data());
    EXPECT_EQ(compare_on_host(storage.data(), seqlens.data(), 4, 5).kind, Comparison::kSame);
    const Comparison stale = compare_on_host(storage.data(), other.data(), 4, 5);
    EXPECT_EQ(stale.kind, Comparison::kStale);
    EXPECT_EQ(stale.seq, 2);
    EXPECT_EQ(stale.plan_tiles, 2);
    reinterpret_cast<int32_t*>(storage.data())[3] = static_cast<int32_t>(kMaxFixedCost + 1);
    EXPECT_EQ(compare_on_host(storage.data(), seqlens.data(), 4, 5).kind, Comparison::kForeign);
  }
}

}  // namespace
}  // namespace openmla::schedule
