#pragma once
// Swizzled shared-memory tiles. A tile is rows of 16-byte chunks; chunk c of a row is stored at chunk
// c XOR (bits of the row), so that the 8 rows an ldmatrix (or a warp's stores) touches at the same logical
// chunk fall in 8 different 16-byte bank groups rather than in one.

namespace openmla::portable {

// How far the XOR pattern reaches along a row:
// - k128B: the low 3 bits of the chunk are XORed with row % 8; for rows of 8 chunks or more (a multiple
//   of 8), the pattern repeats every 8 chunks (128 bytes);
// - k64B: the low 2 bits of the chunk are XORed with (row / 2) % 4; for rows of 4 chunks, two of which
//   share a 128-byte line.
enum class Swizzle { k128B, k64B };

template <int kChunks_, Swizzle kMode_>
struct SwizzledRows {
  static constexpr int kChunks = kChunks_;  // 16-byte chunks per row
  static constexpr Swizzle kMode = kMode_;
  static constexpr int kRowBytes = kChunks * 16;
  static constexpr int kPeriodChunks = kMode == Swizzle::k128B ? 8 : 4;  // along a row, the pattern repeats
  static constexpr int kPeriodBytes = kPeriodChunks * 16;                // after this many chunks (bytes),
  static constexpr int kPeriodRows = 8;                                  // and down a column after 8 rows
  static_assert(kChunks % kPeriodChunks == 0 && (kMode == Swizzle::k128B || kChunks == 4));

  // The 16-byte slot of the tile that holds chunk c of row `row`.
  __device__ static __forceinline__ int slot(int row, int c) {
    if constexpr (kMode == Swizzle::k128B) {
      return row * kChunks + (c ^ (row & 7));
    } else {
      return row * kChunks + (c ^ ((row >> 1) & 3));
    }
  }

  // The byte offset of that slot.
  __device__ static __forceinline__ int offset(int row, int c) { return slot(row, c) * 16; }
};

}  // namespace openmla::portable
