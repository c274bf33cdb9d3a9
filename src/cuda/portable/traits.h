#pragma once
// Types, warp layout and the shared-memory plan of one instance of the portable kernel.
//
// A CTA owns kM query rows of one KV head (kMSlices slices of 16 rows) and walks its part of the
// keys kKeys at a time. The 8 warps are laid out twice:
// - scores: a kMSlices x kWarpsN grid; warp (m, n) computes row slice m against key slice n
//   (kKeysPerWarp keys), and the row maxima meet in shared memory;
// - output: a kOWarpsM x kOWarpsN grid; warp (m, n) reads P for rows [m * kORows, +kORows) and
//   accumulates output columns [n * kColsPerWarp, +kColsPerWarp). Tiles of 32 rows (rather than 16)
//   halve how often each V fragment is read from shared memory, the resource that bounds this kernel
//   when many heads share a KV head.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../common/params.h"
#include "config.h"
#include "swizzle.h"

namespace openmla::portable {

// The raw tiles of an FP8 cache: kN stages of raw rows, what cp.async copies. A bf16/fp16 cache has
// none (an empty base: no byte of shared memory).
template <CacheFormat kFormat, int kKeys, int kN>
struct RawTiles {
  alignas(128) uint8_t raw[kN][kKeys * kRawRowBytes<kFormat>];  // [kN][kKeys, row bytes]
};
template <int kKeys, int kN>
struct RawTiles<CacheFormat::plain, kKeys, kN> {};

// The T tiles of the cache the products read: kN of them (a bf16/fp16 cache's stages, or the one tile
// a 656-byte cache converts into), none on a per-tensor cache, whose products read the raw tiles.
template <typename T, int kKeys, int kN>
struct TTiles {
  alignas(128) T k[kN][kKeys * cuda::kDQK];  // [kN][kKeys, kDQK] RowLayout; v = first kDV cols
};
template <typename T, int kKeys>
struct TTiles<T, kKeys, 0> {};

// Split scores' partial sums (fp8_fragments.cuh): per dim group, n8 tile of keys and lane, the
// lane's accumulator fragment. None where the scores are not split.
template <int kKeyTiles>
struct ScorePartials {
  alignas(16) float v[kScoreDimGroups][kKeyTiles][32][4];  // [dim group][n8 tile of keys][lane][element]
};
template <>
struct ScorePartials<0> {};

template <typename Element, int kMSlices_, int kKeys_, CacheFormat kFormat_ = CacheFormat::plain>
struct Traits {
  using T = Element;
  static constexpr CacheFormat kFormat = kFormat_;
  static constexpr bool kFp8 = kFormat != CacheFormat::plain;
  // A per-tensor cache's products take their B fragments from the raw tiles (fp8_fragments.cuh) and run
  // in fp16 whatever q's dtype (q, P and the fragments are fp16); a 656-byte cache's tile is converted to
  // T first.
  static constexpr bool kFp8Fragments = kFormat == CacheFormat::fp8_per_tensor;
  using Op = std::conditional_t<kFp8Fragments, __half, T>;                      // the products' 16-bit operands
  static constexpr int kLoadStages = kFp8Fragments ? kFp8Stages : kStages;      // tiles in flight
  static constexpr int kTileStages = kFp8Fragments ? 0 : (kFp8 ? 1 : kStages);  // T tiles (TTiles)
  static constexpr int kMSlices = kMSlices_;
  static constexpr int kM = 16 * kMSlices;                                       // query rows per CTA
  static constexpr int kKeys = kKeys_;                                           // keys per pipeline stage
  static constexpr int kWarpsN = kWarps / kMSlices;                              // warps sharing a row slice
  static constexpr int kScoreWarps = kWarpsN < kKeys / 8 ? kWarpsN : kKeys / 8;  // of those, warps with scores
  static constexpr int kKeysPerWarp = kKeys / kScoreWarps;                       // score columns per score warp
  static constexpr int kScoreTiles = kKeysPerWarp / 8;                           // n8 tiles of scores per score warp
  static constexpr int kORows = kM < 32 ? kM : 32;                               // output rows per warp
  static constexpr int kOMTiles = kORows / 16;                                   // m16 tiles of output per warp
  static constexpr int kOWarpsM = kM / kORows;
  static constexpr int kOWarpsN = kWarps / kOWarpsM;
  static constexpr int kColsPerWarp = cuda::kDV / kOWarpsN;  // output columns per warp
  static constexpr int kOutTiles = kColsPerWarp / 8;         // n8 tiles of output per warp
  static constexpr int kPChunks = kKeys / kChunk;            // 16-byte chunks in a row of P
  // Split scores (fp8_fragments.cuh) at 16 rows on a per-tensor cache: kWarps / kScoreDimGroups key
  // groups, each of kKeyGroupTiles n8 tiles of keys.
  static constexpr bool kSplitScores = kFp8Fragments && kMSlices == 1;
  static constexpr int kKeyGroups = kWarps / kScoreDimGroups;
  static constexpr int kKeyGroupTiles = kKeys / 8 / kKeyGroups;
  // P buffers: with split scores a key group may store tile t + 1's P while the other still reads tile t's,
  // so P alternates between two by tile parity.
  static constexpr int kPBuffers = kSplitScores ? 2 : 1;

  static_assert(kWarps % kMSlices == 0);
  static_assert(kKeys % (8 * kScoreWarps) == 0 && kKeys % 32 == 0);
  static_assert(kScoreTiles == 1 || kScoreTiles % 2 == 0);
  static_assert(kOutTiles % 2 == 0);
  static_assert(kPChunks == 4 || kPChunks == 8);

  // How q, the cache tiles and P lie in shared memory (swizzle.h).
  using RowLayout = SwizzledRows<kRowChunks, Swizzle::k128B>;  // a row of q or of the cache
  using PLayout = SwizzledRows<kPChunks, kPChunks == 8 ? Swizzle::k128B : Swizzle::k64B>;

  struct Shared : RawTiles<kFormat, kKeys, kLoadStages> {
    alignas(128) Op q[kM * cuda::kDQK];  // [kM, kDQK] RowLayout (on a per-tensor cache in fp8_fragments' k order)
    TTiles<T, kKeys, kTileStages> tiles;
    ScorePartials<kSplitScores ? kKeys / 8 : 0> partials;
    alignas(128) Op p[kPBuffers][kM * kKeys];  // [buffer][kM, kKeys] PLayout: the probabilities
    float row_max[kScoreWarps][kM];            // per score warp, of the current tile
    float run_max[2][kM];                      // running row max before tile t at [t % 2]
    float row_scale[kM];                       // exp2(running max before - after) of the current tile
    float row_sum[kScoreWarps][kM];            // per score warp, at the end of a segment
    int q_exponent[kM];                        // per-tensor cache, bf16 q: row r of q is stored times 2^-q_exponent[r]
    int bad_page;                              // a used page index was out of range
  };
};

}  // namespace openmla::portable
