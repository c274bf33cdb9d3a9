// The part -> pieces walk of src/core/pieces.h, on the host: what every kernel and the CPU backend run.
// A plan of openmla::plan walks into exactly its schedule with every piece ok; a plan made for other
// lengths marks exactly the sequences whose tile count differs; any change to any field is noticed by
// some part or leaves the same pieces; whatever a buffer holds, no piece points outside the batch, the lengths or the
// workspace (run this binary under valgrind or ASan to see that no read leaves the buffer either); and
// the walk over copies of the words it reads hands out the same pieces as the walk over the buffer.

#include "core/pieces.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/host_planner.h"
#include "core/schedule.h"
#include "random.h"

namespace openmla::schedule {
namespace {

constexpr int64_t kPageSize = 16;
constexpr int64_t kMaxBlocks = 1 << 20;

struct WalkResult {
  std::vector<Piece> pieces;           // in part order
  std::vector<int32_t> walk_statuses;  // one per part
  bool any_offence = false;
};

// The words of part p's walk copied out of the buffer into arrays of their own, as a Hopper CTA of a
// small batch copies them into shared memory (src/cuda/common/walk.cuh copy_walk).
struct CopiedWalk {
  std::vector<int32_t> header;
  std::vector<int32_t> part;  // [kPartFields] of part p
  std::vector<int64_t> prefix;
  std::vector<int32_t> split_offset;
  std::vector<int32_t> seqlens;

  CopiedWalk(const View& v, const std::vector<int32_t>& lengths, int64_t p)
      : header(v.header, v.header + kHeaderWords),
        part(v.parts + p * kPartFields, v.parts + (p + 1) * kPartFields),
        prefix(v.prefix, v.prefix + lengths.size() + 1),
        split_offset(v.split_offset, v.split_offset + lengths.size() + 1),
        seqlens(lengths) {}
  View view() const { return View{header.data(), prefix.data(), nullptr, split_offset.data()}; }
};

void expect_same_piece(const Piece& a, const Piece& b) {
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.key_begin, b.key_begin);
  EXPECT_EQ(a.key_end, b.key_end);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.slot, b.slot);
}

// Runs every part's walk over `buffer` as the decode kernel does (part by part), checking that each
// piece stays within the batch, the lengths and the workspace, and that the walk over copied words
// (CopiedWalk) hands out the same pieces.
WalkResult walk_all(const std::vector<int32_t>& buffer, const std::vector<int32_t>& seqlens, int64_t num_parts) {
  const auto batch = static_cast<int64_t>(seqlens.size());
  const View v = view(buffer.data(), batch, num_parts);
  const Lengths lengths{.seqlens = seqlens.data(), .stride = 1, .page_size = kPageSize, .max_blocks = kMaxBlocks};
  WalkResult result;
  for (int64_t p = 0; p < num_parts; ++p) {
    const Walk w = walk_part(v, batch, num_parts, p);
    const CopiedWalk copy(v, seqlens, p);
    const Lengths copied_lengths{
        .seqlens = copy.seqlens.data(), .stride = 1, .page_size = kPageSize, .max_blocks = kMaxBlocks};
    const Walk wc = walk_part(copy.view(), batch, num_parts, p, copy.part.data());
    EXPECT_EQ(wc.first, w.first);
    EXPECT_EQ(wc.last, w.last);
    EXPECT_EQ(wc.stride, w.stride);
    EXPECT_EQ(wc.status, w.status);
    result.walk_statuses.push_back(w.status);
    result.any_offence = result.any_offence || w.status != status::kOk;
    for (int32_t seq = w.first; seq <= w.last; seq += w.stride) {
      EXPECT_GE(seq, 0);
      EXPECT_LT(seq, batch);
      const Piece piece = piece_of(v, w, seq, lengths);
      expect_same_piece(piece_of(copy.view(), wc, seq, copied_lengths), piece);
      EXPECT_EQ(piece.seq, seq);
      EXPECT_GE(piece.slot, -1);
      EXPECT_LT(piece.slot, max_splits(batch, num_parts));
      EXPECT_LE(0, piece.key_begin);
      EXPECT_LE(piece.key_begin, piece.key_end);
      if (piece.status == status::kOk) {
        EXPECT_LE(piece.key_end, seqlens[static_cast<size_t>(seq)]);
      } else {
        EXPECT_EQ(piece.key_begin, piece.key_end) << "a piece with an offence holds keys";
        result.any_offence = true;
      }
      result.pieces.push_back(piece);
    }
  }
  // The combine's view of each sequence: splits within the workspace.
  const Line line = line_of(v, batch, num_parts);
  if (header_matches(v, batch, num_parts)) {
    for (int64_t seq = 0; seq < batch; ++seq) {
      const SeqPlan s = seq_plan(v, batch, num_parts, line, seq);
      if (s.ok) {
        EXPECT_GE(s.first_split, 0);
        EXPECT_LE(s.first_split + s.splits, max_splits(batch, num_parts));
      }
    }
  }
  return result;
}

std::vector<int32_t> plan_of(const std::vector<int32_t>& seqlens, int64_t num_parts, int64_t charge = kDefaultCharge) {
  const auto batch = static_cast<int64_t>(seqlens.size());
  std::vector<int32_t> buffer(static_cast<size_t>(layout(batch, num_parts).bytes / 4));
  build_on_host(seqlens.data(), batch, num_parts, charge, buffer.data());
  return buffer;
}

// The charges the plans below are made with: the portable kernel's and the Hopper kernel's, and the
// range's ends.
constexpr int64_t kCharges[] = {1, kDefaultCharge, 4, kMaxFixedCost};

const std::vector<int32_t> kLengths{256, 31, 700, 0, 130, 5000, 1, 64, 0, 65};

TEST(Pieces, PlanOfTheLengthsWalksIntoItsSchedule) {
  for (const int64_t charge : kCharges) {
    for (int64_t num_parts : {1, 2, 3, 7, 16, 40, 132}) {
      SCOPED_TRACE("num_parts " + std::to_string(num_parts) + ", charge " + std::to_string(charge));
      const std::vector<int32_t> buffer = plan_of(kLengths, num_parts, charge);
      const WalkResult r = walk_all(buffer, kLengths, num_parts);
      ASSERT_FALSE(r.any_offence);
      // Every key of every sequence in exactly one piece; a sequence of several pieces uses its splits.
      const View v = view(buffer.data(), static_cast<int64_t>(kLengths.size()), num_parts);
      for (size_t seq = 0; seq < kLengths.size(); ++seq) {
        int next_key = 0;
        int pieces = 0;
        for (const Piece& piece : r.pieces) {
          if (piece.seq == static_cast<int>(seq)) {
            EXPECT_EQ(piece.key_begin, next_key) << "sequence " << seq;
            next_key = piece.key_end;
            ++pieces;
          }
        }
        EXPECT_EQ(next_key, kLengths[seq]) << "sequence " << seq;
        EXPECT_EQ(pieces, v.split_offset[seq + 1] - v.split_offset[seq]) << "sequence " << seq;
      }
    }
  }
}

// A header whose fixed units are outside [0, kMaxFixedCost] is not a plan: every row becomes NaN.
TEST(Pieces, FixedCostOutOfRangeIsABadPlan) {
  for (const int32_t fixed : {-1, -2, static_cast<int32_t>(kMaxFixedCost) + 1, 1 << 30}) {
    SCOPED_TRACE("fixed units " + std::to_string(fixed));
    std::vector<int32_t> buffer = plan_of(kLengths, 7);
    buffer[3] = fixed;
    const View v = view(buffer.data(), static_cast<int64_t>(kLengths.size()), 7);
    EXPECT_FALSE(header_matches(v, static_cast<int64_t>(kLengths.size()), 7));
    const WalkResult r = walk_all(buffer, kLengths, 7);
    for (const int32_t status : r.walk_statuses) {
      EXPECT_EQ(status, status::kBadPlan);
    }
  }
}

// Lengths of one tile count, whose plans over many parts are cut on a line without overhead units.
const std::vector<int32_t> kEqualLengths(6, 640);

TEST(Pieces, LineWithoutOverheadWalksIntoItsScheduleAndNoticesAnEmptySequence) {
  const std::vector<int32_t> buffer = plan_of(kEqualLengths, 16, 4);
  const View v = view(buffer.data(), static_cast<int64_t>(kEqualLengths.size()), 16);
  ASSERT_EQ(fixed_cost(v), 0);
  const WalkResult r = walk_all(buffer, kEqualLengths, 16);
  ASSERT_FALSE(r.any_offence);
  std::vector<int> next_key(kEqualLengths.size());  // [b]
  for (const Piece& piece : r.pieces) {
    EXPECT_EQ(piece.key_begin, next_key[static_cast<size_t>(piece.seq)]) << "sequence " << piece.seq;
    // 60 tiles over 16 parts: two pieces of 5 tiles a sequence (4 a part would give some part two pieces).
    EXPECT_EQ(piece.key_end - piece.key_begin, 5 * kTileN) << "sequence " << piece.seq;
    next_key[static_cast<size_t>(piece.seq)] = piece.key_end;
  }
  for (const int key : next_key) {
    EXPECT_EQ(key, 640);
  }
  std::vector<int32_t> emptied = kEqualLengths;
  emptied[3] = 0;
  for (const Piece& piece : walk_all(buffer, emptied, 16).pieces) {
    EXPECT_EQ(piece.status, piece.seq == 3 ? status::kStalePlan : status::kOk) << "sequence " << piece.seq;
  }
}

TEST(Pieces, StalePlanMarksExactlyTheSequencesOfOtherTileCounts) {
  std::vector<int32_t> made_for = kLengths;
  made_for[2] = 100;  // 2 tiles where 700 keys need 11
  made_for[8] = 1;    // 1 tile where 0 keys need none
  made_for[9] = 127;  // same 2 tiles as 65: accepted
  for (int64_t num_parts : {1, 5, 132}) {
    SCOPED_TRACE("num_parts " + std::to_string(num_parts));
    const WalkResult r = walk_all(plan_of(made_for, num_parts), kLengths, num_parts);
    for (const Piece& piece : r.pieces) {
      const bool stale = piece.seq == 2 || piece.seq == 8;
      EXPECT_EQ(piece.status, stale ? status::kStalePlan : status::kOk) << "sequence " << piece.seq;
    }
  }
}

// Whether two walks handed out the same pieces.
bool same_pieces(const WalkResult& a, const WalkResult& b) {
  const auto same = [](const Piece& x, const Piece& y) {
    return x.seq == y.seq && x.key_begin == y.key_begin && x.key_end == y.key_end && x.status == y.status &&
           x.slot == y.slot;
  };
  return std::equal(a.pieces.begin(), a.pieces.end(), b.pieces.begin(), b.pieces.end(), same);
}

// Any change to any word is noticed by some part, or leaves a plan that walks into the very same pieces
// (a part length one longer over a single part, say: the plan of another line the planner may choose).
TEST(Pieces, EveryFieldChangeIsNoticedOrHarmless) {
  // kLengths, and the lengths GpuPlanSanitize.EveryFieldIsChecked corrupts on the GPU. 132 parts: most
  // are empty, whose fields are checked too.
  for (const std::vector<int32_t>& lengths : {kLengths, std::vector<int32_t>{256, 31, 700, 0, 130}, kEqualLengths}) {
    for (int64_t num_parts : {1, 4, 16, 132}) {
      for (const int64_t charge : {kDefaultCharge, int64_t{4}}) {
        const auto batch = static_cast<int64_t>(lengths.size());
        const std::vector<int32_t> good = plan_of(lengths, num_parts, charge);
        const WalkResult good_walk = walk_all(good, lengths, num_parts);
        ASSERT_FALSE(good_walk.any_offence);
        const Layout l = layout(batch, num_parts);
        std::vector<std::pair<std::string, int64_t>> fields;  // name, int32 word index
        for (int64_t w = 0; w < kHeaderWords; ++w) {
          fields.emplace_back("header word " + std::to_string(w), w);
        }
        for (int64_t i = 0; i <= batch; ++i) {
          fields.emplace_back("prefix[" + std::to_string(i) + "]", l.prefix_offset / 4 + 2 * i);
          fields.emplace_back("split_offset[" + std::to_string(i) + "]", l.split_offset_offset / 4 + i);
        }
        for (int64_t w = 0; w < num_parts * kPartFields; ++w) {
          fields.emplace_back("parts word " + std::to_string(w), l.parts_offset / 4 + w);
        }
        for (const auto& [name, word] : fields) {
          for (int32_t delta : {1, -1, 1000, -1000}) {
            SCOPED_TRACE(name + " + " + std::to_string(delta) + ", b " + std::to_string(batch) + ", num_parts " +
                         std::to_string(num_parts) + ", charge " + std::to_string(charge));
            std::vector<int32_t> changed = good;
            changed[static_cast<size_t>(word)] += delta;
            const WalkResult r = walk_all(changed, lengths, num_parts);
            EXPECT_TRUE(r.any_offence || same_pieces(r, good_walk)) << "an unnoticed change moved a piece";
          }
        }
      }
    }
  }
}

TEST(Pieces, AnyBufferStaysInBounds) {
  // Random words, with and without a valid header, and fills: walk_all's checks hold for each.
  test::Rng rng(5);
  for (int trial = 0; trial < 2000; ++trial) {
    const int64_t num_parts = 1 + rng.below(40);
    std::vector<int32_t> buffer = plan_of(kLengths, num_parts);
    const size_t from = trial % 2 == 0 ? 0 : kHeaderWords;
    const int32_t fill = trial % 5 == 0 ? static_cast<int32_t>(rng.next()) : 0;
    for (size_t w = from; w < buffer.size(); ++w) {
      buffer[w] = trial % 5 == 0 ? fill : static_cast<int32_t>(rng.next() % (trial % 3 == 0 ? 64 : 1u << 31));
    }
    SCOPED_TRACE("trial " + std::to_string(trial));
    const WalkResult r = walk_all(buffer, kLengths, num_parts);
    EXPECT_TRUE(r.any_offence || buffer == plan_of(kLengths, num_parts));
    if (::testing::Test::HasFailure()) {
      return;
    }
  }
}

}  // namespace
}  // namespace openmla::schedule
