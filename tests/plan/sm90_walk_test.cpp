// The seesaw schedule's walk of a piece (src/cuda/sm90/walk.h), checked on the host: every tile once,
// masked tiles first with the partial last tile at position 0, masked code for every pair that needs
// it, and the stage loads the kernel issues matching, pair by pair and across pieces, the loads each
// pair consumes and the mbarrier phase parities it waits for.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/sm90/walk.h"

namespace openmla::sm90 {
namespace {

// The model of one stage: the position its last load brought, whether a pair consumed it, and the
// number of loads so far (over all pieces of the CTA).
struct Stage {
  int pos = -1;
  bool consumed = true;
  uint32_t loads = 0;
};

// A load into `stage` (the kernel issues one only once the previous tile there was consumed).
void load(Stage& stage, int pos) {
  ASSERT_TRUE(stage.consumed) << "a load into a stage whose tile was not consumed";
  stage = Stage{pos, false, stage.loads + 1};
}

// Pair k consumes `stage`: the tile at `pos`, in the phase whose parity the kernel waits for.
void consume(Stage& stage, int pos, uint32_t parity) {
  ASSERT_FALSE(stage.consumed) << "position " << pos << ": nothing loaded";
  EXPECT_EQ(stage.pos, pos);
  EXPECT_EQ(parity, (stage.loads - 1) & 1u) << "position " << pos;
  stage.consumed = true;
}

// Walks a piece as the kernel does (seesaw.cuh run, left_pair / right_pair): the first loads, then
// per pair the consumption of its tiles and the refills with the next pair's tiles.
void walk_piece(const Walk& w, uint32_t& phases, Stage (&stages)[2]) {
  if (w.tiles > 0) {
    load(stages[0], 0);
  }
  if (w.first_b() < w.tiles) {
    load(stages[1], w.first_b());
  }
  for (int k = 0; k < w.pairs(); ++k) {
    const bool next = k + 1 < w.pairs();
    consume(stages[0], w.pos_a(k), w.parity(phases, 0, k));
    if (w.has_b(k)) {
      consume(stages[1], w.pos_a(k) + 1, w.parity(phases, 1, k));
    }
    if (next) {
      load(stages[0], w.pos_a(k + 1));
      if (w.has_b(k)) {
        load(stages[1], w.pos_a(k + 1) + 1);
      }
    }
  }
  EXPECT_TRUE(stages[0].consumed && stages[1].consumed) << "a tile loaded and never consumed";
  phases = w.phases_after(phases);
  EXPECT_EQ(phases & 1u, stages[0].loads & 1u);
  EXPECT_EQ(phases >> 1 & 1u, stages[1].loads & 1u);
}

TEST(Sm90Walk, EveryTileOnceMaskedFirstPartialAtPositionZero) {
  for (int tiles = 0; tiles <= 12; ++tiles) {
    for (int tail = 0; tail < 64; tail += 21) {  // keys the last tile lacks
      const int key_begin = 640;
      const int key_end = key_begin + 64 * tiles - (tiles > 0 ? tail : 0);
      for (int min_limit = key_begin - 70; min_limit <= key_end; min_limit += 9) {
        const Walk w = make_walk(key_begin, key_end, min_limit);
        SCOPED_TRACE("tiles " + std::to_string(tiles) + " key_end " + std::to_string(key_end) + " min_limit " +
                     std::to_string(min_limit));
        ASSERT_EQ(w.tiles, tiles);
        std::vector<int> seen(static_cast<size_t>(tiles), 0);
        for (int pos = 0; pos < tiles; ++pos) {
          const int t = w.tile(pos);
          ASSERT_GE(t, 0);
          ASSERT_LT(t, tiles);
          ++seen[static_cast<size_t>(t)];
          const bool needs_mask = w.key0(pos) + 64 > min_limit;
          EXPECT_EQ(pos < w.masked, needs_mask) << "position " << pos;
          if (w.key0(pos) + 64 > key_end) {
            EXPECT_EQ(pos, 0) << "the partial tile";
          }
        }
        for (int count : seen) {
          EXPECT_EQ(count, 1);
        }
        // Pairs cover the positions once, in order; the masked code path runs first and for every
        // pair with a masked tile or without tile b.
        int next_pos = 0;
        bool masked_path = true;
        for (int k = 0; k < w.pairs(); ++k) {
          EXPECT_EQ(w.pos_a(k), next_pos);
          next_pos += w.has_b(k) ? 2 : 1;
          EXPECT_EQ(w.has_b(k), k > 0 || tiles % 2 == 0);
          const bool needed = w.pos_a(k) < w.masked || (w.has_b(k) && w.pos_a(k) + 1 < w.masked) || !w.has_b(k);
          EXPECT_EQ(w.needs_mask(k), needed) << "pair " << k;
          if (!w.needs_mask(k)) {
            masked_path = false;
          }
          EXPECT_TRUE(masked_path || !w.needs_mask(k)) << "pair " << k << " needs masks after an unmasked pair";
        }
        EXPECT_EQ(next_pos, tiles);
      }
    }
  }
}

TEST(Sm90Walk, LoadsMatchWhatEachPairConsumesAcrossPieces) {
  // Sequences of pieces of every small tile count, odd and even, in a few orders, as one CTA walks them.
  const std::vector<std::vector<int>> sequences = {{1, 1, 1},          {2, 3, 4, 5},       {5, 4, 3, 2, 1},
                                                   {0, 1, 0, 2, 0, 3}, {7, 7, 8, 8, 1, 9}, {11, 6, 1, 1, 2, 13, 4}};
  for (const auto& sequence : sequences) {
    uint32_t phases = 0;
    Stage stages[2];
    for (size_t i = 0; i < sequence.size(); ++i) {
      const int tiles = sequence[i];
      for (int masked = 0; masked <= (tiles < 2 ? tiles : 2); ++masked) {
        SCOPED_TRACE("piece " + std::to_string(i) + " of " + std::to_string(tiles) + " tiles, " +
                     std::to_string(masked) + " masked");
        walk_piece(Walk{0, 64 * tiles, tiles, masked}, phases, stages);
      }
    }
  }
}

}  // namespace
}  // namespace openmla::sm90
