// The Hopper kernel's building blocks on one CTA each (sm90_primitives.h), against exact host
// products: small integer inputs make every product and sum exact in fp32, so any difference is a
// layout error (swizzle, descriptor field, fragment mapping, transpose bit, tensor-map order).

#include "sm90_primitives.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "device.h"
#include "half_bits.h"
#include "openmla/decode.h"
#include "random.h"

namespace openmla::test {
namespace {

constexpr int kRows = 64;
constexpr int kKeys = 64;
constexpr int kCols = 256;

// `count` values drawn from the integers [lo, hi], as 16-bit bits of `dtype`.
std::vector<uint16_t> small_integers(size_t count, int lo, int hi, uint64_t seed, DType dtype) {
  Rng rng(seed);
  std::vector<uint16_t> bits(count);
  for (auto& b : bits) {
    b = double_to_half(static_cast<double>(lo + rng.below(hi - lo + 1)), dtype);
  }
  return bits;
}

// a [rows, inner] . b^T, where b is [cols, inner] (transposed = true) or b [inner, cols].
std::vector<double> product(const std::vector<double>& a, const std::vector<double>& b, int rows, int inner, int cols,
                            bool b_transposed) {
  std::vector<double> c(static_cast<size_t>(rows) * cols, 0.0);
  for (int r = 0; r < rows; ++r) {
    for (int n = 0; n < cols; ++n) {
      double sum = 0.0;
      for (int k = 0; k < inner; ++k) {
        sum += a[static_cast<size_t>(r) * inner + k] *
               (b_transposed ? b[static_cast<size_t>(n) * inner + k] : b[static_cast<size_t>(k) * cols + n]);
      }
      c[static_cast<size_t>(r) * cols + n] = sum;
    }
  }
  return c;
}

std::vector<double> values(const std::vector<uint16_t>& m, DType dtype) {
  std::vector<double> v(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    v[i] = half_to_double(m[i], dtype);
  }
  return v;
}

// Exact equality, naming the first few differing elements and how many differ.
::testing::AssertionResult equal(const std::vector<float>& got, const std::vector<double>& want, int cols) {
  int64_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < want.size(); ++i) {
    if (static_cast<double>(got[i]) != want[i]) {
      if (bad++ < 6) {
        first << " (" << i / cols << ", " << i % cols << "): " << got[i] << " vs " << want[i] << ";";
      }
    }
  }
  if (bad == 0) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << bad << " of " << want.size()
                                       << " elements differ (row, col): got vs want:" << first.str();
}

class Sm90Primitives : public ::testing::TestWithParam<DType> {
 protected:
  // `count` integers in [lo, hi] of the test's dtype (seeded by `seed`).
  std::vector<uint16_t> integers(size_t count, int lo, int hi, uint64_t seed) const {
    return small_integers(count, lo, hi, seed, GetParam());
  }
  std::vector<double> exact(const std::vector<uint16_t>& m) const { return values(m, GetParam()); }
};

TEST_P(Sm90Primitives, ScoresFromSwizzledSharedMemory) {
  OPENMLA_REQUIRE_HOPPER();
  const auto a = integers(kRows * kKeys, -2, 2, 1);
  const auto b = integers(kKeys * kKeys, -2, 2, 2);
  const WgmmaResult s = run_scores_wgmma(a, b, GetParam());
  EXPECT_EQ(s.misalignment, 0u);
  EXPECT_TRUE(equal(s.d, product(exact(a), exact(b), kRows, kKeys, kKeys, true), kKeys));
}

// Scores in [-64, 64]: integers, exact in 16 bits, so half(S) = S.
TEST_P(Sm90Primitives, ScoresThenValuesWithPFromRegisters) {
  OPENMLA_REQUIRE_HOPPER();
  const auto q = integers(kRows * kKeys, -1, 1, 3);
  const auto k = integers(kKeys * kKeys, -1, 1, 4);
  const auto v = integers(kKeys * kCols, -2, 2, 5);
  const WgmmaResult o = run_scores_then_values(q, k, v, GetParam());
  EXPECT_EQ(o.misalignment, 0u);
  const std::vector<double> s = product(exact(q), exact(k), kRows, kKeys, kKeys, true);
  EXPECT_TRUE(equal(o.d, product(s, exact(v), kRows, kKeys, kCols, false), kCols));
}

TEST_P(Sm90Primitives, ValuesWithPFromSharedMemory) {
  OPENMLA_REQUIRE_HOPPER();
  const auto p = integers(kRows * kKeys, -2, 2, 6);
  const auto v = integers(kKeys * kCols, -2, 2, 7);
  const WgmmaResult o = run_values_from_shared(p, v, GetParam());
  EXPECT_EQ(o.misalignment, 0u);
  EXPECT_TRUE(equal(o.d, product(exact(p), exact(v), kRows, kKeys, kCols, false), kCols));
}

INSTANTIATE_TEST_SUITE_P(Types, Sm90Primitives, ::testing::Values(DType::bf16, DType::fp16),
                         [](const auto& param_info) { return std::string(dtype_name(param_info.param)); });

// A cache with padded strides (token and block strides larger than contiguous) and a distinct value
// per (block, token, head, dim); the box of block 2, tokens [64, 128), head 1 must come back exactly,
// for the whole tile (the asymmetric schedule's box) and for single chunks (the seesaw schedule's
// boxes), which must leave the tile's other chunks alone.
TEST(Sm90PrimitivesTma, TileOfPaddedCacheMatches) {
  OPENMLA_REQUIRE_HOPPER();
  constexpr int64_t kBlocks = 3;
  constexpr int64_t kPage = 128;
  constexpr int64_t kHeads = 2;
  constexpr int64_t kDims = 576;
  constexpr int64_t kHeadStride = kDims;
  constexpr int64_t kTokenStride = kHeads * kDims + 64;
  constexpr int64_t kBlockStride = kPage * kTokenStride + 128;
  std::vector<uint16_t> cache(static_cast<size_t>(kBlocks * kBlockStride), 0xffff);
  const auto code = [](int64_t block, int64_t token, int64_t head, int64_t dim) {
    return static_cast<uint16_t>((block * 131 + token * 17 + head * 7 + dim * 3) % 30011);
  };
  for (int64_t b = 0; b < kBlocks; ++b) {
    for (int64_t t = 0; t < kPage; ++t) {
      for (int64_t h = 0; h < kHeads; ++h) {
        for (int64_t d = 0; d < kDims; ++d) {
          cache[static_cast<size_t>(b * kBlockStride + t * kTokenStride + h * kHeadStride + d)] = code(b, t, h, d);
        }
      }
    }
  }
  DeviceBuffer device_cache(cache.size() * 2);
  device_cache.upload(cache.data(), cache.size() * 2);
  TensorView view{.data = device_cache.data(),
                  .device = Device{DeviceType::cuda, 0},
                  .dtype = DType::bf16,
                  .rank = 4,
                  .sizes = {kBlocks, kPage, kHeads, kDims},
                  .strides = {kBlockStride, kTokenStride, kHeadStride, 1}};
  struct Box {
    int first_chunk;
    int chunks;
  };
  for (const Box box : {Box{0, 9}, Box{0, 1}, Box{5, 1}, Box{8, 1}}) {
    SCOPED_TRACE("box of chunks " + std::to_string(box.first_chunk) + " + " + std::to_string(box.chunks));
    const TmaTile tile = run_tma_tile(view, 64, 1, 2, box.first_chunk, box.chunks);
    EXPECT_EQ(tile.misalignment, 0u);
    int64_t bad = 0;
    for (int chunk = 0; chunk < 9; ++chunk) {
      const bool loaded = chunk >= box.first_chunk && chunk < box.first_chunk + box.chunks;
      for (int token = 0; token < 64; ++token) {
        for (int col = 0; col < 64; ++col) {
          const uint16_t want = loaded ? code(2, 64 + token, 1, chunk * 64 + col) : uint16_t{0xffff};
          const uint16_t got = tile.elements[static_cast<size_t>((chunk * 64 + token) * 64 + col)];
          if (got != want && bad++ < 6) {
            ADD_FAILURE() << "chunk " << chunk << " token " << token << " col " << col << ": got " << got << ", want "
                          << want;
          }
        }
      }
    }
    EXPECT_EQ(bad, 0) << "elements of the tile that differ";
  }
}

}  // namespace
}  // namespace openmla::test
