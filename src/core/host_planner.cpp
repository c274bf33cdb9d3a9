#include "host_planner.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "line_choice.h"
#include "pieces.h"
#include "schedule.h"

namespace openmla::schedule {

namespace {

// Writes the plan of the line (fixed units per sequence, len units per part) for these lengths.
void build_line(const int32_t* seqlens, int64_t batch, int64_t num_parts, const LineChoice& line, void* buffer) {
  const Layout l = layout(batch, num_parts);
  char* base = static_cast<char*>(buffer);
  auto* prefix = reinterpret_cast<int64_t*>(base + l.prefix_offset);              // [b + 1]
  auto* parts = reinterpret_cast<int32_t*>(base + l.parts_offset);                // [num_parts, kPartFields]
  auto* split_offset = reinterpret_cast<int32_t*>(base + l.split_offset_offset);  // [b + 1]
  store_header(reinterpret_cast<int32_t*>(base), batch, num_parts, line.fixed, line.len);
  prefix[0] = 0;
  for (int64_t i = 0; i < batch; ++i) {
    prefix[i + 1] = prefix[i] + seq_cost(seqlens[i], line.fixed);
  }
  for (int64_t p = 0; p < num_parts; ++p) {
    store_part(parts, p, make_part(prefix, batch, line.len, p, line.fixed));
  }
  split_offset[0] = 0;
  for (int64_t i = 0; i < batch; ++i) {
    split_offset[i + 1] = split_offset[i] + num_splits(prefix, i, line.len, line.fixed);
  }
}

}  // namespace

LineChoice choose_line(const int32_t* seqlens, int64_t batch, int64_t num_parts, int64_t charge) {
  std::vector<int64_t> tiles(static_cast<size_t>(batch) + 1);  // [b + 1] tile prefix sums
  bool every_sequence_has_tiles = true;
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t n = num_tiles(seqlens[i]);
    tiles[i + 1] = tiles[i] + n;
    every_sequence_has_tiles = every_sequence_has_tiles && n > 0;
  }
  if (!line_searched(batch, num_parts)) {
    return line_choice(0, batch, tiles[batch], num_parts, charge);
  }
  int64_t best = 0;
  LineCost first{};
  LineCost best_cost{};
  for (int64_t c = 0; c < kLineChoices; ++c) {
    if (!choice_tried(c, batch, tiles[batch], num_parts, charge, every_sequence_has_tiles)) {
      continue;
    }
    const LineChoice line = line_choice(c, batch, tiles[batch], num_parts, charge);
    const LinePrefix prefix{tiles.data(), line.fixed};
    LineCost cost{0, 0};
    for (int64_t p = 0; p < parts_used(prefix[batch], line.len); ++p) {
      const Part part = make_part(prefix, batch, line.len, p, line.fixed);
      cost.slowest = std::max<int64_t>(cost.slowest, saturated(part_cost(prefix, part, line.fixed, charge)));
      cost.pieces += part_pieces(part);
    }
    if (c == 0) {
      first = cost;
      best_cost = cost;
    } else if (better_line(cost, best_cost, first)) {
      best = c;
      best_cost = cost;
    }
  }
  return line_choice(best, batch, tiles[batch], num_parts, charge);
}

void build_on_host(const int32_t* seqlens, int64_t batch, int64_t num_parts, int64_t charge, void* buffer) {
  build_line(seqlens, batch, num_parts, choose_line(seqlens, batch, num_parts, charge), buffer);
}

Comparison compare_on_host(const void* buffer, const int32_t* seqlens, int64_t batch, int64_t num_parts) {
  constexpr Comparison kForeignPlan{Comparison::kForeign, -1, 0};
  const View given = view(buffer, batch, num_parts);
  if (!header_matches(given, batch, num_parts) || given.prefix[0] != 0) {
    return kForeignPlan;
  }
  // The lengths the plan was made for, up to the tile: each sequence's cost, kept in range on the way
  // (so no sum overflows), as the shortest length of that many tiles.
  const int64_t fixed = fixed_cost(given);
  std::vector<int32_t> plan_lengths(static_cast<size_t>(batch));  // [b]
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t begin = given.prefix[i];  // checked: 0 <= begin <= i * (fixed + kMaxTiles)
    const int64_t end = given.prefix[i + 1];
    if (end < begin + min_units(fixed) || end > begin + fixed + kMaxTiles) {
      return kForeignPlan;
    }
    const int64_t tiles = end - begin - fixed;
    plan_lengths[i] = tiles == 0 ? 0 : static_cast<int32_t>((tiles - 1) * kTileN + 1);
  }
  const LineChoice line{fixed, stored_len(given)};  // any line the planner can choose
  if (!len_in_range(line.len, given.prefix[batch], num_parts)) {
    return kForeignPlan;
  }
  const Layout l = layout(batch, num_parts);
  std::vector<int64_t> rebuilt_storage(static_cast<size_t>(l.bytes / 8));
  build_line(plan_lengths.data(), batch, num_parts, line, rebuilt_storage.data());
  const View rebuilt = view(rebuilt_storage.data(), batch, num_parts);
  const auto same = [](const void* a, const void* b, int64_t count, size_t size) {
    return std::memcmp(a, b, static_cast<size_t>(count) * size) == 0;
  };
  if (!same(given.prefix, rebuilt.prefix, batch + 1, sizeof(int64_t)) ||
      !same(given.parts, rebuilt.parts, num_parts * kPartFields, sizeof(int32_t)) ||
      !same(given.split_offset, rebuilt.split_offset, batch + 1, sizeof(int32_t))) {
    return kForeignPlan;
  }
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t plan_tiles = given.prefix[i + 1] - given.prefix[i] - fixed;
    if (num_tiles(seqlens[i]) != plan_tiles) {
      return Comparison{Comparison::kStale, i, plan_tiles};
    }
  }
  return Comparison{Comparison::kSame, -1, 0};
}

}  // namespace openmla::schedule
