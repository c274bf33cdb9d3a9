#pragma once
// The order in which the seesaw schedule (seesaw.cuh) walks a piece's tiles, how it pairs them, and
// which load of each shared-memory stage each pair consumes. Plain C++ for host and device, so that
// a host test checks the bookkeeping (tests/plan/sm90_walk_test.cpp).

#include <cstdint>

#include "../../core/host_device.h"
#include "config.h"

namespace openmla::sm90 {

// A piece of keys [key_begin, key_end) in tiles of kBlockN keys, walked by position: tiles with a key past some
// row's limit ("masked") first, the last tile first, so that the partial last tile, if any, is
// position 0; then the others in order. Positions pair up as (a, b): pair k is positions
// (pos_a(k), pos_a(k) + 1), except that with an odd tile count pair 0 is position 0 alone. Tile a of
// every pair lives in stage 0, tile b in stage 1.
struct Walk {
  int key_begin;
  int key_end;
  int tiles;
  int masked;  // tiles [tiles - masked, tiles), at positions [0, masked)

  OPENMLA_HD int tile(int pos) const { return pos < masked ? tiles - 1 - pos : pos - masked; }
  OPENMLA_HD int key0(int pos) const { return key_begin + kBlockN * tile(pos); }
  OPENMLA_HD int odd() const { return tiles & 1; }
  OPENMLA_HD int pairs() const { return (tiles + 1) / 2; }
  OPENMLA_HD int pos_a(int k) const { return k == 0 ? 0 : 2 * k - odd(); }
  OPENMLA_HD bool has_b(int k) const { return k > 0 || odd() == 0; }
  // Pair k runs the masked code path: it holds a masked tile, or it has no tile b.
  OPENMLA_HD bool needs_mask(int k) const { return pos_a(k) < masked || !has_b(k); }
  // The position the piece's first load into stage 1 brings: pair 0's tile b, or, when pair 0 is a
  // single tile, pair 1's (stage 1 then receives nothing during pair 0).
  OPENMLA_HD int first_b() const { return odd() != 0 ? 2 : 1; }

  // Stage loads are counted per stage over the CTA's pieces; `phases` holds the parity of the count
  // of stage 0 (bit 0) and stage 1 (bit 1) before this piece. The parity of the mbarrier phase that
  // completes the load pair k consumes from `stage`:
  OPENMLA_HD uint32_t parity(uint32_t phases, int stage, int k) const {
    return ((phases >> stage) + static_cast<uint32_t>(k - (stage == 1 ? odd() : 0))) & 1u;
  }
  // `phases` after this piece: it loads each stage once per pair that uses it.
  OPENMLA_HD uint32_t phases_after(uint32_t phases) const {
    return phases ^ ((static_cast<uint32_t>(pairs()) & 1u) | (static_cast<uint32_t>(pairs() - odd()) & 1u) << 1);
  }
};

// The walk of keys [key_begin, key_end) when every row sees the keys below `min_limit` (the smallest
// row limit of the m-tile; at most key_end): tiles that reach past it need a mask.
OPENMLA_HD Walk make_walk(int key_begin, int key_end, int min_limit) {
  const int tiles = (key_end - key_begin + kBlockN - 1) / kBlockN;
  int unmasked = (min_limit - key_begin) / kBlockN;
  unmasked = unmasked < 0 ? 0 : unmasked > tiles ? tiles : unmasked;
  return Walk{key_begin, key_end, tiles, tiles - unmasked};
}

}  // namespace openmla::sm90
