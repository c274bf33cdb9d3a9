// Invariants of the split-KV schedule (src/core/schedule.h) over many random length sets,
// including zeros, negatives (bad input treated as empty) and lengths near INT32_MAX.

#include "core/schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <tuple>
#include <vector>

#include "core/host_planner.h"
#include "random.h"

namespace openmla::schedule {
namespace {

// The charges the schedules below are made with: the portable kernel's and the Hopper kernel's, and the
// range's ends.
constexpr int64_t kCharges[] = {1, kDefaultCharge, 4, 8, kMaxFixedCost};

struct Piece {
  int64_t part;
  int64_t tile_begin;
  int64_t tile_end;
  int64_t split;
};

// The model's slowest part and pieces in all (line_choice.h) of the line (fixed, len) for these
// lengths, from the units each sequence and part span on the line: a reference for what the planner
// computes in closed form.
LineCost line_cost(const std::vector<int32_t>& seqlens, const LineChoice& line, int64_t charge) {
  std::vector<int64_t> begin;  // [b] each sequence's first unit
  int64_t total = 0;
  for (const int32_t s : seqlens) {
    begin.push_back(total);
    total += line.fixed + num_tiles(s);
  }
  LineCost cost{0, 0};
  for (int64_t a = 0; a < total; a += line.len) {
    int64_t part = 0;
    for (size_t i = 0; i < seqlens.size(); ++i) {
      const int64_t tiles = num_tiles(seqlens[i]);
      // A sequence with tiles is in the parts its tiles meet; one without, in the part of its first unit.
      const int64_t lo = begin[i] + (tiles > 0 ? line.fixed : 0);
      const int64_t hi = tiles > 0 ? lo + tiles : lo + 1;
      const int64_t from = std::max(lo, a);
      const int64_t to = std::min(hi, a + line.len);
      if (from < to) {
        part += charge + (tiles > 0 ? to - from : 0);
        ++cost.pieces;
      }
    }
    cost.slowest = std::max<int64_t>(cost.slowest, saturated(part));  // as the planner compares them
  }
  return cost;
}

// Checks every invariant of one schedule, failing with the lengths' description on the first broken one.
void check_schedule(const std::vector<int32_t>& seqlens, int64_t num_parts, int64_t charge) {
  const auto batch = static_cast<int64_t>(seqlens.size());
  const Layout l = layout(batch, num_parts);
  std::vector<int64_t> storage(static_cast<size_t>(l.bytes / 8 + 1));  // 8-byte aligned plan buffer
  build_on_host(seqlens.data(), batch, num_parts, charge, storage.data());
  const View v = view(storage.data(), batch, num_parts);
  SCOPED_TRACE(::testing::Message() << "batch " << batch << ", num_parts " << num_parts << ", charge " << charge);
  ASSERT_TRUE(header_matches(v, batch, num_parts));
  const int64_t fixed = fixed_cost(v);
  const int64_t len = stored_len(v);
  const bool every_sequence_has_tiles =
      std::all_of(seqlens.begin(), seqlens.end(), [](int32_t s) { return num_tiles(s) > 0; });
  ASSERT_TRUE(fixed == charge || (fixed == 0 && every_sequence_has_tiles)) << "fixed units " << fixed;

  int64_t total = 0;
  for (int64_t i = 0; i < batch; ++i) {
    ASSERT_EQ(v.prefix[i], total);
    total += fixed + (seqlens[i] <= 0 ? 0 : (int64_t{seqlens[i]} + kTileN - 1) / kTileN);
  }
  ASSERT_EQ(v.prefix[batch], total);
  ASSERT_TRUE(len_in_range(len, total, num_parts)) << "part length " << len;
  ASSERT_EQ(choose_line(seqlens.data(), batch, num_parts, charge).len, len);

  // The chosen line is the first tried line of least modeled cost among those of no more pieces than
  // the first.
  const int64_t total_tiles = total - fixed * batch;
  const LineCost first = line_cost(seqlens, line_choice(0, batch, total_tiles, num_parts, charge), charge);
  int64_t least = first.slowest;
  int64_t first_least = 0;
  for (int64_t c = 1; c < kLineChoices && line_searched(batch, num_parts); ++c) {
    if (choice_tried(c, batch, total_tiles, num_parts, charge, every_sequence_has_tiles)) {
      const LineCost cost = line_cost(seqlens, line_choice(c, batch, total_tiles, num_parts, charge), charge);
      if (cost.pieces <= first.pieces && cost.slowest < least) {
        least = cost.slowest;
        first_least = c;
      }
    }
  }
  const LineChoice expected = line_choice(first_least, batch, total_tiles, num_parts, charge);
  EXPECT_EQ(fixed, expected.fixed);
  EXPECT_EQ(len, expected.len);

  std::vector<std::vector<Piece>> pieces(static_cast<size_t>(batch));  // per sequence, in part order
  for (int64_t p = 0; p < num_parts; ++p) {
    const Part part = load_part(v.parts, p);
    const int64_t start = p * len;
    const int64_t owned = std::max<int64_t>(0, std::min(start + len, total) - start);
    const int64_t slack = std::max<int64_t>(0, 2 * fixed - 1);
    if (part.first_seq > part.last_seq) {
      EXPECT_LE(owned, slack) << "empty part " << p << " owns work";
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
    // (tiles plus the fixed units per sequence it touches) differs from that by at most the overhead of the
    // sequence it continues (units before its start) and the spill of a zero-length sequence at its
    // end, or the reverse: the overhead units of a sequence whose tiles start in the next part.
    const int64_t work = tiles_done + fixed * (part.last_seq - part.first_seq + 1);
    EXPECT_LE(tiles_done, owned) << "part " << p;
    EXPECT_LE(work, owned + slack) << "part " << p;
    EXPECT_GE(work, owned - slack) << "part " << p;
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
    check_schedule(seqlens, num_parts, kCharges[trial % std::size(kCharges)]);
    if (::testing::Test::HasFatalFailure()) {
      return;
    }
  }
}

TEST(Schedule, HandPickedShapes) {
  for (const int64_t charge : kCharges) {
    check_schedule({0}, 1, charge);
    check_schedule({0}, 132, charge);
    check_schedule({0, 0, 0, 0}, 2, charge);
    check_schedule({1}, 1, charge);
    check_schedule({64}, 3, charge);
    check_schedule({65, 0, 4096}, 132, charge);
    check_schedule(std::vector<int32_t>(128, 4096), 132, charge);
    check_schedule(std::vector<int32_t>(1000, 0), 7, charge);
    check_schedule({std::numeric_limits<int32_t>::max()}, 1000, charge);
    check_schedule(std::vector<int32_t>(64, std::numeric_limits<int32_t>::max()), 132, charge);
    check_schedule(std::vector<int32_t>(32, 1024), 132, charge);
    check_schedule(std::vector<int32_t>(3, 64), 2000, charge);
  }
}

TEST(Schedule, OneLongSequenceIsSplitEvenly) {
  // 132 parts over 32768 tiles + 2: every part but the last does ceil(total / 132) units.
  const std::vector<int32_t> seqlens{32768 * 64};
  Layout l = layout(1, 132);
  std::vector<int64_t> storage(static_cast<size_t>(l.bytes / 8 + 1));
  build_on_host(seqlens.data(), 1, 132, kDefaultCharge, storage.data());
  const View v = view(storage.data(), 1, 132);
  EXPECT_EQ(v.split_offset[1], 132);
  const int64_t len = (32768 + kDefaultCharge + 131) / 132;
  for (int64_t p = 1; p < 131; ++p) {
    const Part part = load_part(v.parts, p);
    EXPECT_EQ(part.last_tile_end - part.first_tile_begin, len) << "part " << p;
    EXPECT_EQ(part.first_split, p);
  }
}

// The host's check of a plan before a CPU decode reads the plan's own line.
TEST(Schedule, CompareOnHostReadsThePlansLine) {
  const std::vector<int32_t> seqlens{700, 0, 65, 4096};
  std::vector<int32_t> other = seqlens;
  other[2] = 129;  // 3 tiles where 65 keys need 2
  for (const int64_t charge : kCharges) {
    SCOPED_TRACE("charge " + std::to_string(charge));
    std::vector<int64_t> storage(static_cast<size_t>(layout(4, 5).bytes / 8));
    build_on_host(seqlens.data(), 4, 5, charge, storage.data());
    EXPECT_EQ(compare_on_host(storage.data(), seqlens.data(), 4, 5).kind, Comparison::kSame);
    const Comparison stale = compare_on_host(storage.data(), other.data(), 4, 5);
    EXPECT_EQ(stale.kind, Comparison::kStale);
    EXPECT_EQ(stale.seq, 2);
    EXPECT_EQ(stale.plan_tiles, 2);
    auto* header = reinterpret_cast<int32_t*>(storage.data());
    const View v = view(storage.data(), 4, 5);
    const int64_t shortest = part_length(v.prefix[4], 5);
    for (const int64_t len : {shortest - 1, 2 * shortest + 1, int64_t{-1}}) {
      std::vector<int64_t> changed = storage;
      store_header(reinterpret_cast<int32_t*>(changed.data()), 4, 5, fixed_cost(v), len);
      EXPECT_EQ(compare_on_host(changed.data(), seqlens.data(), 4, 5).kind, Comparison::kForeign) << "len " << len;
    }
    header[3] = static_cast<int32_t>(kMaxFixedCost + 1);
    EXPECT_EQ(compare_on_host(storage.data(), seqlens.data(), 4, 5).kind, Comparison::kForeign);
  }
}

// A batch of equal lengths is cut into equal pieces where the charged line cannot do it.
TEST(Schedule, EqualLengthsSplitIntoEqualPieces) {
  struct Shape {
    int64_t batch;
    int32_t length;
    int64_t num_parts;
    int64_t charge;
    int64_t tiles_per_part;  // every part used holds one piece of this many tiles
    int64_t parts_used;
  };
  // The Hopper kernel's plans of the benchmark's fixed batches (bench/cases.cpp).
  for (const Shape& s :
       {Shape{32, 1024, 132, 4, 4, 128}, Shape{32, 1024, 66, 8, 8, 64}, Shape{64, 4096, 66, 8, 64, 64}}) {
    SCOPED_TRACE("b " + std::to_string(s.batch) + ", length " + std::to_string(s.length) + ", num_parts " +
                 std::to_string(s.num_parts) + ", charge " + std::to_string(s.charge));
    const std::vector<int32_t> seqlens(static_cast<size_t>(s.batch), s.length);
    std::vector<int64_t> storage(static_cast<size_t>(layout(s.batch, s.num_parts).bytes / 8));
    build_on_host(seqlens.data(), s.batch, s.num_parts, s.charge, storage.data());
    const View v = view(storage.data(), s.batch, s.num_parts);
    for (int64_t p = 0; p < s.num_parts; ++p) {
      const Part part = load_part(v.parts, p);
      if (p >= s.parts_used) {
        EXPECT_GT(part.first_seq, part.last_seq) << "part " << p << " is not empty";
        continue;
      }
      EXPECT_EQ(part.first_seq, part.last_seq) << "part " << p << " holds several pieces";
      EXPECT_EQ(part.last_tile_end - part.first_tile_begin, s.tiles_per_part) << "part " << p;
    }
  }
}

// Equal pieces that would make more splits than the charged line are not taken: 8 sequences of 32 tiles
// over 132 parts keep the charged line (pieces of up to 3 tiles over 96 parts, where 128 parts of 2
// tiles are possible), and so does one sequence of 128 tiles over 66 parts.
TEST(Schedule, NoLineOfMorePiecesIsTaken) {
  for (const auto& [batch, length, num_parts, charge] :
       {std::tuple<int64_t, int32_t, int64_t, int64_t>{8, 2048, 132, 4}, {1, 8192, 66, 8}}) {
    SCOPED_TRACE("b " + std::to_string(batch) + ", length " + std::to_string(length));
    const std::vector<int32_t> seqlens(static_cast<size_t>(batch), length);
    const LineChoice line = choose_line(seqlens.data(), batch, num_parts, charge);
    EXPECT_EQ(line.fixed, charge);
    EXPECT_EQ(line.len, part_length(batch * (length / kTileN + charge), num_parts));
  }
}

}  // namespace
}  // namespace openmla::schedule
