// Decode from FP8 caches (docs/fp8.md), both formats, on the kernel the automatic choice runs (on an
// H100/H200 the Hopper kernel: its narrow schedule for at most 16 packed rows per KV head, for more
// its asymmetric schedule with a converter warpgroup, or its transposed schedule in the child process
// of Sm90Schedule.TransposedRunsTheFp8Cases; else the portable kernel) and on the forced
// portable kernel: against the float64 reference of the dequantized cache and against the CPU
// backend, with the tolerances of docs/design.md; a captured graph replayed with a new k_scale; bad
// pages; NaN in unused slots; caches and q views of other strides; bitwise repeatable runs.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "core/schedule.h"
#include "cuda_handles.h"
#include "device.h"
#include "fp8_cache.h"
#include "half_bits.h"
#include "host_decode.h"
#include "reference.h"

namespace openmla::test {
namespace {

// An Fp8Cache and its k_scale copied to cuda:0.
struct DeviceFp8 {
  DeviceBuffer bytes;
  DeviceBuffer scale{4};

  explicit DeviceFp8(const Fp8Cache& cache) : bytes(cache.bytes.bytes()) {
    bytes.upload(cache.bytes.data(), cache.bytes.bytes());
    scale.upload(&cache.scale, 4);
  }

  AdjustArgs use(const Fp8Cache& cache) const {
    return [&cache, this](DecodeArgs& args) {
      use_cache(args, cache);
      args.k_cache.data = bytes.data();
      args.k_cache.device = Device{DeviceType::cuda, 0};
      if (cache.spec.format == CacheFormat::fp8_per_tensor) {
        args.k_scale.data = scale.data();
        args.k_scale.device = Device{DeviceType::cuda, 0};
      }
    };
  }
};

const std::vector<Fp8CacheSpec> kSpecs = {
    {.format = CacheFormat::fp8_per_tensor},
    {.format = CacheFormat::fp8_656},
    {.format = CacheFormat::fp8_656, .pow2_scales = true, .bytes_dtype = DType::fp8_e4m3},
};

// check(format, cache, on_gpu) for each cache spec: the problem's FP8 cache on the host and on the
// GPU, under a trace naming the format (an ASSERT in `check` ends that spec's check).
template <typename Check>
void for_each_cache(const Problem& problem, const std::vector<Fp8CacheSpec>& specs, Check&& check) {
  for (const Fp8CacheSpec& format : specs) {
    SCOPED_TRACE(cache_format_name(format.format));
    const Fp8Cache cache = quantize_cache(problem, format);
    const DeviceFp8 on_gpu(cache);
    check(format, cache, on_gpu);
  }
}

// The automatic choice (asserted to be expected_automatic_kernel's) and the forced portable kernel on
// `cache`, each against the reference and the CPU backend.
void expect_cache_matches(const Problem& problem, const DeviceProblem& device, const Fp8Cache& cache,
                          const DeviceFp8& on_gpu, int64_t num_parts) {
  const Output cpu = host_decode(problem, num_parts, &cache);
  for (Kernel kernel : {Kernel::automatic, Kernel::portable}) {
    SCOPED_TRACE(kernel_name(kernel));
    const GpuRun run = gpu_decode(problem, device, num_parts, kernel, on_gpu.use(cache));
    EXPECT_EQ(run.kernel, kernel == Kernel::automatic ? expected_automatic_kernel(problem) : kernel);
    EXPECT_EQ(run.status.code, StatusCode::ok);
    EXPECT_TRUE(matches(reference_decode(problem, cache), run.output.out_view(), run.output.lse_view()));
    EXPECT_TRUE(
        matches(reference_from_output(cpu.out_view(), cpu.lse_view()), run.output.out_view(), run.output.lse_view()))
        << "against the CPU backend";
  }
}

// expect_cache_matches on the problem's cache quantized to each spec.
void expect_problem_matches(const Problem& problem, int64_t num_parts = 0,
                            const std::vector<Fp8CacheSpec>& specs = kSpecs) {
  const DeviceProblem device = upload(problem);
  for_each_cache(problem, specs, [&](const Fp8CacheSpec&, const Fp8Cache& cache, const DeviceFp8& on_gpu) {
    expect_cache_matches(problem, device, cache, on_gpu, num_parts);
  });
}

void expect_matches(const ProblemSpec& spec, int64_t num_parts = 0) {
  expect_problem_matches(make_problem(spec), num_parts);
}

TEST(GpuFp8, DecodeStep) {
  OPENMLA_REQUIRE_GPU();
  expect_matches({.b = 8, .h_q = 16, .s_k = 1500, .varlen = true, .seed = 201});
  expect_matches({.b = 4, .h_q = 16, .s_k = 700, .varlen = true, .dtype = DType::fp16, .seed = 202});
}

// The shapes the Hopper kernel takes on an FP8 cache (at most 16 packed rows per KV head): fewer rows
// than 16, s_q > 1 with causal masks, two KV heads, pages of 64-256 tokens, one to many tiles per piece,
// whole and split sequences, zero lengths, NaN in every unused slot (quantize_cache keeps it).
TEST(GpuFp8, HopperShapes) {
  OPENMLA_REQUIRE_GPU();
  expect_matches({.b = 5, .h_q = 4, .s_k = 64, .varlen = true, .seed = 220});
  expect_matches({.b = 3, .s_q = 2, .h_q = 8, .s_k = 900, .varlen = true, .causal = true, .seed = 221}, 7);
  expect_matches({.b = 2, .s_q = 4, .h_q = 4, .s_k = 333, .causal = true, .page_size = 128, .seed = 222});
  expect_matches({.b = 3, .h_q = 32, .h_kv = 2, .s_k = 2100, .varlen = true, .page_size = 256, .seed = 223});
  expect_matches(
      {.b = 7, .h_q = 16, .s_k = 500, .varlen = true, .seed = 224, .zero_length_every = 3, .extra_pages = 4});
  expect_matches({.b = 2, .h_q = 16, .s_k = 8000, .dtype = DType::fp16, .seed = 225}, 3);
}

// More than 16 packed rows per KV head, both formats: the asymmetric schedule with its converter
// warpgroup (one or two 64-row m-tiles, partly empty ones too), s_q > 1 with causal masks, two KV
// heads, pages of 64-256 tokens, tail tiles, one to many tiles per piece, whole and split sequences,
// zero lengths, NaN in every unused slot.
TEST(GpuFp8, HopperWideShapes) {
  OPENMLA_REQUIRE_GPU();
  expect_matches({.b = 4, .h_q = 32, .s_k = 64, .seed = 240});
  expect_matches({.b = 5, .h_q = 128, .s_k = 1000, .varlen = true, .seed = 241}, 9);
  expect_matches(
      {.b = 3, .s_q = 2, .h_q = 64, .s_k = 777, .varlen = true, .causal = true, .page_size = 128, .seed = 242});
  expect_matches({.b = 2, .s_q = 4, .h_q = 64, .h_kv = 2, .s_k = 1300, .causal = true, .page_size = 256, .seed = 243},
                 5);
  expect_matches(
      {.b = 7, .h_q = 128, .s_k = 500, .varlen = true, .seed = 244, .zero_length_every = 3, .extra_pages = 4});
  expect_matches({.b = 2, .h_q = 128, .s_k = 5000, .dtype = DType::fp16, .seed = 245}, 3);
}

TEST(GpuFp8, CausalManyHeadsAndSplits) {
  OPENMLA_REQUIRE_GPU();
  expect_matches({.b = 3, .s_q = 2, .h_q = 128, .s_k = 2000, .varlen = true, .causal = true, .seed = 203}, 40);
  expect_matches({.b = 2, .s_q = 4, .h_q = 64, .h_kv = 2, .s_k = 300, .causal = true, .seed = 204});
}

// Scores large enough that a row's maximum rises by more than 2^8 after its first tile (softmax scale
// 100: scores with a standard deviation of about 35 log2 units), so that the kernels' lazy bases are
// raised on later tiles too, the output and the sums so far rescaled: b=4 s_k=1,500 varlen with h_q
// query heads for both q dtypes, each page size of `pages` and whole and split pieces, then s_q = 2
// with a causal mask and h_q_causal heads. 656-byte scales are powers of two here: with others a key
// value's rounding moves scores of this size beyond the lse bound
// (RowsThatSeeOneKeyWithOtherScalesWithinOneRoundingOfTheKeys).
void expect_rising_scores_match(int64_t h_q, std::initializer_list<int64_t> pages, int64_t h_q_causal, uint64_t seed) {
  const std::vector<Fp8CacheSpec> specs = {{.format = CacheFormat::fp8_per_tensor},
                                           {.format = CacheFormat::fp8_656, .pow2_scales = true}};
  for (DType dtype : {DType::bf16, DType::fp16}) {
    for (int64_t page : pages) {
      for (int64_t parts : {0, 40}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " page_size " + std::to_string(page) + " num_parts " +
                     std::to_string(parts));
        expect_problem_matches(make_problem({.b = 4,
                                             .h_q = h_q,
                                             .s_k = 1500,
                                             .varlen = true,
                                             .page_size = page,
                                             .dtype = dtype,
                                             .softmax_scale = 100.f,
                                             .seed = seed++}),
                               parts, specs);
      }
    }
  }
  expect_problem_matches(make_problem({.b = 3,
                                       .s_q = 2,
                                       .h_q = h_q_causal,
                                       .s_k = 900,
                                       .varlen = true,
                                       .causal = true,
                                       .softmax_scale = 100.f,
                                       .seed = seed}),
                         7, specs);
}

// At most 16 packed rows per KV head (the portable kernel's split loop, the Hopper kernel's narrow
// schedule), and a page size that is not a power of two (the block and slot of a key by division).
TEST(GpuFp8, SixteenRowsWithRisingScoresAndOddPages) {
  OPENMLA_REQUIRE_GPU();
  expect_rising_scores_match(16, {64, 100}, 8, 250);
}

// More than 16 packed rows per KV head: the wide schedules' row bases (the converter's consumers keep
// exact maxima; the transposed schedule's lazy bases, moved on later tiles by either warpgroup, the
// output, the sums and the other warpgroup's sums rescaled).
TEST(GpuFp8, WideRowsWithRisingScores) {
  OPENMLA_REQUIRE_GPU();
  expect_rising_scores_match(64, {64}, 128, 260);
}

TEST(GpuFp8, ZeroLengthsAndOtherPageSizes) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t page : {1, 16, 100}) {
    SCOPED_TRACE("page_size " + std::to_string(page));
    expect_matches({.b = 6,
                    .s_q = 2,
                    .h_q = 32,
                    .s_k = 400,
                    .varlen = true,
                    .causal = true,
                    .page_size = page,
                    .seed = static_cast<uint64_t>(205 + page),
                    .zero_length_every = 3,
                    .extra_pages = 4});
  }
}

// A row that sees one key has lse = that key's score, near 0 here, where the lse bound of docs/design.md
// is 1e-5 absolute. The portable kernel rounds each dequantized 656-byte value to bf16 once; with the
// power-of-two scales of write_cache and quantize_cache the rounding is exact and such rows meet the
// design bounds, as per-tensor caches (whose scale is applied in fp32) do. The Hopper kernel (s_q = 1
// here, 16 rows) does the same arithmetic in registers.
TEST(GpuFp8, RowsThatSeeOneKeyMeetTheDesignBounds) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t s_q : {1, 2}) {
    SCOPED_TRACE("s_q " + std::to_string(s_q));
    const Problem problem = make_problem(
        {.b = 8, .s_q = s_q, .h_q = 16, .causal = true, .seed = 213, .lengths = {1, 2, 1, 70, 0, 1, 2, 130}});
    const DeviceProblem device = upload(problem);
    for (const Fp8CacheSpec& format : {Fp8CacheSpec{.format = CacheFormat::fp8_per_tensor},
                                       Fp8CacheSpec{.format = CacheFormat::fp8_656, .pow2_scales = true}}) {
      SCOPED_TRACE(cache_format_name(format.format));
      const Fp8Cache cache = quantize_cache(problem, format);
      const DeviceFp8 on_gpu(cache);
      const GpuRun run = gpu_decode(problem, device, 0, Kernel::automatic, on_gpu.use(cache));
      EXPECT_EQ(run.kernel, expected_automatic_kernel(problem));
      EXPECT_TRUE(matches(reference_decode(problem, cache), run.output.out_view(), run.output.lse_view()));
    }
  }
}

// Multiplies the scale of block b (128 values) of the 656-byte token in slot `slot` of a page by 2^k,
// k = 3 (slot / 64 % 4) + 2 ((slot + b) % 3), and requantizes its values divided by 2^k (each stays
// within one rounding of its value), so the dequantized values keep their size while the scales lie up
// to 2^13 apart: 2^0 to 2^4 within a token, and rising by 2^3 from one 64-token tile of a 256-token page
// to the next. NaN scales (unused slots) stay.
void spread_scales(Fp8Cache& cache) {
  auto* bytes = static_cast<uint8_t*>(cache.bytes.data());  // [num_blocks, page_size, h_kv, 656]
  for (int64_t block = 0; block < cache.num_blocks; ++block) {
    for (int64_t slot = 0; slot < cache.page_size; ++slot) {
      for (int64_t head = 0; head < cache.h_kv; ++head) {
        uint8_t* token = bytes + ((block * cache.page_size + slot) * cache.h_kv + head) * cache.row_bytes;
        for (int b = 0; b < 4; ++b) {
          float scale = 0.f;
          std::memcpy(&scale, token + 512 + 4 * b, 4);
          if (std::isnan(scale)) {
            continue;
          }
          const int k = static_cast<int>(3 * (slot / 64 % 4) + 2 * ((slot + b) % 3));
          for (int i = 128 * b; i < 128 * (b + 1); ++i) {
            token[i] = double_to_e4m3(std::ldexp(e4m3_to_double(token[i]), -k));
          }
          scale = std::ldexp(scale, k);
          std::memcpy(token + 512 + 4 * b, &scale, 4);
        }
      }
    }
  }
}

// 656-byte tokens whose scales lie far apart (spread_scales), in q's dtype bf16 and fp16, on both Hopper
// schedules: the narrow one (h_q = 16) brings each key's factors and each warp's output rows into
// fp16's range by powers of two (src/cuda/sm90/fp8_fragments.cuh), the asymmetric one's converter
// (h_q = 64, bf16) each tile's (fp8_convert.cuh), and these scales make both raise the output's power
// mid-piece. Power-of-two scales keep every product exact, so the design bounds hold.
TEST(GpuFp8, ScalesFarApartOn656ByteTokens) {
  OPENMLA_REQUIRE_GPU();
  for (const auto& [h_q, dtype] : {std::pair{16, DType::bf16}, std::pair{16, DType::fp16}, std::pair{64, DType::bf16},
                                   std::pair{64, DType::fp16}}) {
    SCOPED_TRACE("h_q " + std::to_string(h_q) + ", " + dtype_name(dtype));
    const Problem problem =
        make_problem({.b = 4, .h_q = h_q, .s_k = 1500, .varlen = true, .page_size = 256, .dtype = dtype, .seed = 216});
    Fp8Cache cache = quantize_cache(problem, {.format = CacheFormat::fp8_656, .pow2_scales = true});
    spread_scales(cache);
    const DeviceProblem device = upload(problem);
    const DeviceFp8 on_gpu(cache);
    for (int64_t num_parts : {0, 3}) {  // split pieces, and one piece per sequence
      SCOPED_TRACE("num_parts " + std::to_string(num_parts));
      expect_cache_matches(problem, device, cache, on_gpu, num_parts);
    }
  }
}

// Scales that are not powers of two (another writer's): each key value is rounded to bf16 once (relative
// 2^-9), which moves a score by at most softmax_scale * 2^-9 * sum_d |q_d k_d|, about 2.7e-4 for this
// data (N(0, 0.1^2) values, d_qk 576: (1 / 24) * 2^-9 * 512 * 0.1^2 * 2 / pi). A row that sees one key
// has its lse moved by as much, beyond the design's 1e-5: it is held to that bound instead.
TEST(GpuFp8, RowsThatSeeOneKeyWithOtherScalesWithinOneRoundingOfTheKeys) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t s_q : {1, 2}) {
    SCOPED_TRACE("s_q " + std::to_string(s_q));
    const Problem problem = make_problem(
        {.b = 8, .s_q = s_q, .h_q = 16, .causal = true, .seed = 214, .lengths = {1, 2, 1, 70, 0, 1, 2, 130}});
    const DeviceProblem device = upload(problem);
    const Fp8Cache cache = quantize_cache(problem, {.format = CacheFormat::fp8_656});
    const DeviceFp8 on_gpu(cache);
    const GpuRun run = gpu_decode(problem, device, 0, Kernel::automatic, on_gpu.use(cache));
    EXPECT_EQ(run.kernel, expected_automatic_kernel(problem));
    EXPECT_TRUE(matches(reference_decode(problem, cache), run.output.out_view(), run.output.lse_view(),
                        Tolerance{.lse_abs = 3e-4}));
  }
}

// On a per-tensor cache the Hopper kernel's products run in fp16 (src/cuda/sm90/fp8_fragments.cuh, in
// both its schedules), as on a 656-byte cache (both schedules with a bf16 q), and each bf16 q row is
// stored times a power of two that brings its largest value near 2^14. Rows whose values lie far
// outside fp16's range (near 2^22, where fp16 overflows, or near 2^-30, where it flushes to zero), with
// a softmax scale that gives them ordinary scores, and rows of both kinds in one call, match the
// reference. (On a 656-byte cache with scales that are not powers of two, rows near 2^20 move their lse
// beyond the design bound through the keys' rounding alone, in every backend: see
// RowsThatSeeOneKeyWithOtherScalesWithinOneRoundingOfTheKeys; so its scales here are powers of two.)
TEST(GpuFp8, QueryRowsOutsideFp16Range) {
  OPENMLA_REQUIRE_GPU();
  const std::vector<std::vector<int>> row_exponents = {{20}, {-30}, {20, -30, 0, 6}};
  for (int64_t h_q : {16, 128}) {  // both Hopper schedules
    for (const std::vector<int>& exponents : row_exponents) {
      const int first = exponents.front();
      SCOPED_TRACE("h_q " + std::to_string(h_q) + ", q rows times 2^" + std::to_string(first) +
                   (exponents.size() > 1 ? " and others" : ""));
      const float softmax_scale = exponents.size() > 1 ? 1.f / 24.f : std::ldexp(1.f / 24.f, -first);
      Problem problem =
          make_problem({.b = 3, .h_q = h_q, .s_k = 700, .varlen = true, .softmax_scale = softmax_scale, .seed = 215});
      const int64_t d_qk = problem.spec.d_qk;
      for (size_t i = 0; i < problem.q.size(); ++i) {
        const int exponent = exponents[static_cast<size_t>(i / d_qk) % exponents.size()];  // by query row
        problem.q[i] = double_to_half(std::ldexp(half_to_double(problem.q[i], DType::bf16), exponent), DType::bf16);
      }
      expect_problem_matches(
          problem, 0, {{.format = CacheFormat::fp8_per_tensor}, {.format = CacheFormat::fp8_656, .pow2_scales = true}});
    }
  }
}

TEST(GpuFp8, HopperKernelServesUpTo16Rows) {
  OPENMLA_REQUIRE_HOPPER();
  const Problem problem = make_problem({.b = 2, .s_q = 2, .h_q = 8, .s_k = 200, .causal = true, .seed = 210});
  const DeviceProblem device = upload(problem);
  for_each_cache(problem, kSpecs, [&](const Fp8CacheSpec&, const Fp8Cache& cache, const DeviceFp8& on_gpu) {
    const GpuRun run = gpu_decode(problem, device, 0, Kernel::sm90, on_gpu.use(cache));
    EXPECT_EQ(run.kernel, Kernel::sm90);
    EXPECT_TRUE(matches(reference_decode(problem, cache), run.output.out_view(), run.output.lse_view()));
  });
}

// Beyond 16 packed rows per KV head the Hopper kernel serves both formats (the asymmetric schedule
// with its converter) when asked for by name.
TEST(GpuFp8, HopperKernelServesMoreRows) {
  OPENMLA_REQUIRE_HOPPER();
  for (int64_t h_q : {32, 128}) {
    SCOPED_TRACE("h_q " + std::to_string(h_q));
    const Problem problem = make_problem({.b = 2, .h_q = h_q, .s_k = 200, .seed = 210});
    const DeviceProblem device = upload(problem);
    for_each_cache(problem, kSpecs, [&](const Fp8CacheSpec&, const Fp8Cache& cache, const DeviceFp8& on_gpu) {
      const GpuRun run = gpu_decode(problem, device, 0, Kernel::sm90, on_gpu.use(cache));
      EXPECT_EQ(run.kernel, Kernel::sm90);
      EXPECT_TRUE(matches(reference_decode(problem, cache), run.output.out_view(), run.output.lse_view()));
    });
  }
}

// An FP8 cache's bytes in another layout on the GPU: token (block, slot, head) of `cache` at byte
// block * block_stride + slot * token_stride + head * head_stride.
struct RestridedFp8 {
  int64_t block_stride, token_stride, head_stride;
  DeviceBuffer bytes;

  RestridedFp8(const Fp8Cache& cache, int64_t token_bytes, int64_t head_bytes, int64_t block_bytes)
      : block_stride(block_bytes),
        token_stride(token_bytes),
        head_stride(head_bytes),
        bytes(static_cast<size_t>(cache.num_blocks * block_bytes)) {
    std::vector<uint8_t> laid(bytes.bytes(), 0xff);                      // padding: NaN bytes, never read
    const auto* from = static_cast<const uint8_t*>(cache.bytes.data());  // [num_blocks, page_size, h_kv, row]
    for (int64_t block = 0; block < cache.num_blocks; ++block) {
      for (int64_t slot = 0; slot < cache.page_size; ++slot) {
        for (int64_t head = 0; head < cache.h_kv; ++head) {
          const int64_t token = (block * cache.page_size + slot) * cache.h_kv + head;
          std::memcpy(&laid[static_cast<size_t>(block * block_stride + slot * token_stride + head * head_stride)],
                      from + token * cache.row_bytes, static_cast<size_t>(cache.row_bytes));
        }
      }
    }
    bytes.upload(laid.data(), bytes.bytes());
  }

  // on_gpu's cache (its k_scale) with these bytes as k_cache.
  AdjustArgs use(const Fp8Cache& cache, const DeviceFp8& on_gpu) const {
    return [&cache, &on_gpu, this](DecodeArgs& args) {
      on_gpu.use(cache)(args);
      args.k_cache.data = bytes.data();
      args.k_cache.strides[0] = block_stride;  // the byte views' elements are bytes
      args.k_cache.strides[1] = token_stride;
      args.k_cache.strides[2] = head_stride;
    };
  }
};

// Caches laid out otherwise than [num_blocks, page_size, h_kv, token bytes] back to back, both formats,
// on the automatic choice and the forced portable kernel: one KV head with every token padded by 64
// bytes, at 16 and 64 packed rows per KV head (the Hopper kernel's narrow schedule and its converter's),
// and two KV heads, each holding its page's tokens back to back (the KV-head stride larger than the
// token stride), at 16 rows.
TEST(GpuFp8, CachesWithOtherStrides) {
  OPENMLA_REQUIRE_GPU();
  const std::pair<int64_t, int64_t> heads[] = {{16, 1}, {32, 2}, {64, 1}};  // h_q, h_kv
  for (const auto& [h_q, h_kv] : heads) {
    SCOPED_TRACE("h_q " + std::to_string(h_q) + " h_kv " + std::to_string(h_kv));
    const Problem problem =
        make_problem({.b = 4, .h_q = h_q, .h_kv = h_kv, .s_k = 700, .varlen = true, .page_size = 128, .seed = 227});
    const DeviceProblem device = upload(problem);
    for_each_cache(problem, kSpecs, [&](const Fp8CacheSpec&, const Fp8Cache& cache, const DeviceFp8& on_gpu) {
      const int64_t row = cache.row_bytes;
      const int64_t page = cache.page_size;
      const RestridedFp8 laid = h_kv == 1 ? RestridedFp8(cache, row + 64, row, page * (row + 64))
                                          : RestridedFp8(cache, row, page * row, h_kv * page * row);
      for (Kernel kernel : {Kernel::automatic, Kernel::portable}) {
        SCOPED_TRACE(kernel_name(kernel));
        const GpuRun run = gpu_decode(problem, device, 0, kernel, laid.use(cache, on_gpu));
        EXPECT_EQ(run.kernel, kernel == Kernel::automatic ? expected_automatic_kernel(problem) : kernel);
        EXPECT_EQ(run.status.code, StatusCode::ok);
        EXPECT_TRUE(matches(reference_decode(problem, cache), run.output.out_view(), run.output.lse_view()));
      }
    });
  }
}

// q in [b, s_q, h_q, row] with `row` elements a head (>= 576) from `offset` elements into its buffer, or
// with its heads outside the query positions ([b, h_q, s_q, row]).
struct LaidQ {
  std::array<int64_t, 3> strides;  // {b, s_q, h_q}, elements
  int64_t offset;
  DeviceBuffer data;

  LaidQ(const Problem& problem, int64_t row, bool heads_outside, int64_t offset_elements)
      : strides(strides_of(problem.spec, row, heads_outside)),
        offset(offset_elements),
        data(upload_vector(laid_out_q(problem, strides, offset,
                                      offset + problem.spec.b * problem.spec.s_q * problem.spec.h_q * row))) {}

  static std::array<int64_t, 3> strides_of(const ProblemSpec& spec, int64_t row, bool heads_outside) {
    return {spec.s_q * spec.h_q * row, heads_outside ? row : spec.h_q * row, heads_outside ? spec.s_q * row : row};
  }

  void use(DecodeArgs& args) const {
    args.q.data = static_cast<uint16_t*>(data.data()) + offset;
    std::copy_n(strides.begin(), 3, args.q.strides);
  }
};

// q views on the narrow schedule of an FP8 cache (each piece loads its rows by q's strides): padded
// heads, heads outside the query positions or an address 16 bytes into their buffer give the contiguous
// q's results bit for bit, both formats, at 16 rows of one and 8 rows of two KV heads, causal with
// s_q = 2, a part's first and later pieces, split sequences.
TEST(GpuFp8, QueryLayoutsOnTheNarrowSchedule) {
  OPENMLA_REQUIRE_GPU();
  const ProblemSpec specs[] = {
      {.b = 5, .h_q = 16, .s_k = 1800, .varlen = true, .seed = 228},
      {.b = 3, .s_q = 2, .h_q = 8, .s_k = 900, .varlen = true, .causal = true, .seed = 229},
      {.b = 4, .s_q = 2, .h_q = 8, .h_kv = 2, .s_k = 1300, .varlen = true, .causal = true, .seed = 230},
  };
  struct Layout {
    int64_t row;
    bool heads_outside;
    int64_t offset;
  };
  const Layout layouts[] = {{584, false, 0}, {576, true, 0}, {576, false, 8}};
  for (const ProblemSpec& spec : specs) {
    const Problem problem = make_problem(spec);
    const DeviceProblem device = upload(problem);
    for_each_cache(problem, kSpecs, [&](const Fp8CacheSpec&, const Fp8Cache& cache, const DeviceFp8& on_gpu) {
      const GpuRun contiguous = gpu_decode(problem, device, 5, Kernel::automatic, on_gpu.use(cache));
      EXPECT_EQ(contiguous.kernel, expected_automatic_kernel(problem));
      EXPECT_TRUE(
          matches(reference_decode(problem, cache), contiguous.output.out_view(), contiguous.output.lse_view()));
      for (const Layout& layout : layouts) {
        SCOPED_TRACE("h_q " + std::to_string(spec.h_q) + " s_q " + std::to_string(spec.s_q) + " row " +
                     std::to_string(layout.row) + (layout.heads_outside ? " heads outside" : "") + " offset " +
                     std::to_string(layout.offset));
        const LaidQ q(problem, layout.row, layout.heads_outside, layout.offset);
        const GpuRun laid = gpu_decode(problem, device, 5, Kernel::automatic, [&](DecodeArgs& args) {
          on_gpu.use(cache)(args);
          q.use(args);
        });
        EXPECT_EQ(laid.status.code, StatusCode::ok);
        EXPECT_TRUE(bitwise_equal(contiguous.output, laid.output));
      }
    });
  }
}

// Repeated decodes of one FP8 cache give the same bits, split sequences included.
TEST(GpuFp8, RepeatedRunsAreBitwiseIdentical) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t h_q : {16, 128}) {
    SCOPED_TRACE("h_q " + std::to_string(h_q));
    const Problem problem = make_problem({.b = 6, .h_q = h_q, .s_k = 3000, .varlen = true, .seed = 226});
    const DeviceProblem device = upload(problem);
    for_each_cache(problem, kSpecs, [&](const Fp8CacheSpec&, const Fp8Cache& cache, const DeviceFp8& on_gpu) {
      const GpuRun first = gpu_decode(problem, device, 0, Kernel::automatic, on_gpu.use(cache));
      for (int repeat = 0; repeat < 3; ++repeat) {
        const GpuRun again = gpu_decode(problem, device, 0, Kernel::automatic, on_gpu.use(cache));
        ASSERT_EQ(again.output.out, first.output.out);
        ASSERT_EQ(again.output.lse.size(), first.output.lse.size());
        ASSERT_EQ(std::memcmp(again.output.lse.data(), first.output.lse.data(), first.output.lse.size() * 4), 0);
      }
    });
  }
}

TEST(GpuFp8, BadPageGivesNaNAndStatus) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t h_q : {16, 128}) {
    SCOPED_TRACE("h_q " + std::to_string(h_q));
    const Problem problem = make_problem({.b = 3, .h_q = h_q, .s_k = 300, .seed = 211});
    DeviceProblem device = upload(problem);
    const int32_t bad_page = static_cast<int32_t>(problem.num_blocks);
    device.block_table.upload(&bad_page, 4, static_cast<size_t>(1 * problem.max_blocks_per_seq + 2) * 4);
    for_each_cache(problem, kSpecs, [&](const Fp8CacheSpec&, const Fp8Cache& cache, const DeviceFp8& on_gpu) {
      const GpuRun run = gpu_decode(problem, device, 0, Kernel::automatic, on_gpu.use(cache));
      EXPECT_EQ(run.status.code, StatusCode::page_out_of_range);
      EXPECT_EQ(run.status.batch, 1);
      const Output& o = run.output;
      const int64_t row = problem.spec.s_q * problem.spec.h_q * problem.spec.d_v;  // out elements per sequence
      for (int64_t seq = 0; seq < 3; ++seq) {
        for (int64_t i = 0; i < row; ++i) {
          ASSERT_EQ(std::isnan(half_to_double(o.out[seq * row + i], DType::bf16)), seq == 1) << seq << ", " << i;
        }
        for (int64_t h = 0; h < problem.spec.h_q; ++h) {
          ASSERT_EQ(std::isnan(o.lse[seq * problem.spec.h_q + h]), seq == 1) << seq << ", " << h;
        }
      }
    });
  }
}

// Each word of a plan's parts off by one, on both FP8 formats: every kernel notices the offence, as on
// a 16-bit cache (GpuPlanChecks.EveryFieldIsChecked).
TEST(GpuFp8, EveryPartFieldIsChecked) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem({.h_q = 16, .seed = 230, .lengths = {256, 31, 700, 0, 130}});
  const DeviceProblem device = upload(problem);
  const PlanConfig config = gpu_plan_config(problem, 4);
  DeviceBuffer memory(static_cast<size_t>(plan_buffer_size(config)));
  const Plan made = plan(config, device.seqlens_view(problem),
                         Buffer{memory.data(), static_cast<int64_t>(memory.bytes()), Device{DeviceType::cuda, 0}});
  std::vector<int32_t> good(memory.bytes() / 4);  // the plan buffer's int32 words
  memory.download(good.data(), good.size() * 4);
  const int64_t parts_word = schedule::layout(config.batch, config.num_parts).parts_offset / 4;
  const std::vector<Fp8CacheSpec> formats = {kSpecs[0], kSpecs[1]};
  for_each_cache(problem, formats, [&](const Fp8CacheSpec&, const Fp8Cache& cache, const DeviceFp8& on_gpu) {
    for (int64_t w = 0; w < config.num_parts * schedule::kPartFields; ++w) {
      std::vector<int32_t> changed = good;
      changed[static_cast<size_t>(parts_word + w)] += 1;
      memory.upload(changed.data(), changed.size() * 4);
      for (Kernel kernel : kernels_here()) {
        SCOPED_TRACE("parts word " + std::to_string(w) + " + 1, " + kernel_name(kernel));
        const GpuRun run = gpu_decode_with(problem, device, made, kernel, on_gpu.use(cache));
        EXPECT_TRUE(run.status.code == StatusCode::bad_plan || run.status.code == StatusCode::stale_plan)
            << "status " << static_cast<int>(run.status.code);
      }
    }
  });
}

// A captured decode reads k_scale when it runs: replaying the graph after writing a new scale into the
// same device memory gives the result of the new scale.
TEST(GpuFp8, GraphReplaysWithANewScale) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t h_q : {16, 128}) {
    SCOPED_TRACE("h_q " + std::to_string(h_q));
    const Problem problem = make_problem({.b = 4, .h_q = h_q, .s_k = 900, .varlen = true, .seed = 212});
    const DeviceProblem device = upload(problem);
    Fp8Cache cache = quantize_cache(problem, {.format = CacheFormat::fp8_per_tensor});
    DeviceFp8 on_gpu(cache);
    const Device gpu{DeviceType::cuda, 0};
    const PlanConfig config = gpu_plan_config(problem);
    DeviceBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
    const int64_t workspace_bytes = workspace_size(config, 512);
    DeviceBuffer workspace(static_cast<size_t>(workspace_bytes));
    Output output = make_output(problem.spec);
    DeviceBuffer out(output.out.size() * 2);
    DeviceBuffer lse(output.lse.size() * 4);

    const support::Stream owned_stream = support::make_stream();
    cudaStream_t stream = owned_stream.get();
    SUPPORT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    const Plan plan = openmla::plan(config, device.seqlens_view(problem),
                                    Buffer{plan_memory.data(), static_cast<int64_t>(plan_memory.bytes()), gpu}, stream);
    DecodeArgs args;
    args.q = device.q_view(problem);
    args.block_table = device.block_table_view(problem);
    args.cache_seqlens = device.seqlens_view(problem);
    on_gpu.use(cache)(args);
    args.plan = &plan;
    args.workspace = Buffer{workspace.data(), workspace_bytes, gpu};
    args.out = test::on_gpu(output.out_view(), out.data());
    args.lse = test::on_gpu(output.lse_view(), lse.data());
    args.stream = stream;
    decode(args);
    const support::GraphExec exec = support::end_capture(stream);

    for (float factor : {1.0f, 3.0f}) {
      cache.scale *= factor;
      on_gpu.scale.upload(&cache.scale, 4);
      SUPPORT_CUDA(cudaGraphLaunch(exec.get(), stream));
      SUPPORT_CUDA(cudaStreamSynchronize(stream));
      out.download(output.out.data(), out.bytes());
      lse.download(output.lse.data(), lse.bytes());
      EXPECT_TRUE(matches(reference_decode(problem, cache), output.out_view(), output.lse_view()))
          << "scale " << cache.scale;
    }
  }
}

// The small FP8 grid scripts/gpu-check runs under compute-sanitizer (memcheck, racecheck, synccheck):
// both formats on the kernel the automatic choice runs (16 and 64 packed rows per KV head: both Hopper
// schedules on a per-tensor cache), a partial tile over NaN slots, a split sequence, a zero length, a
// bad page.
TEST(GpuFp8Sanitize, SmallGrid) {
  OPENMLA_REQUIRE_GPU();
  expect_matches({.b = 3, .h_q = 16, .s_k = 300, .varlen = true, .seed = 230, .zero_length_every = 3}, 5);
  expect_matches({.b = 3, .h_q = 64, .s_k = 300, .varlen = true, .seed = 232, .zero_length_every = 3}, 5);
  for (int64_t h_q : {8, 64}) {
    SCOPED_TRACE("h_q " + std::to_string(h_q));
    const Problem problem = make_problem({.b = 2, .s_q = 2, .h_q = h_q, .s_k = 200, .causal = true, .seed = 231});
    DeviceProblem device = upload(problem);
    const int32_t bad_page = static_cast<int32_t>(problem.num_blocks);
    device.block_table.upload(&bad_page, 4, 0);
    for_each_cache(problem, kSpecs, [&](const Fp8CacheSpec&, const Fp8Cache& cache, const DeviceFp8& on_gpu) {
      const GpuRun run = gpu_decode(problem, device, 0, Kernel::automatic, on_gpu.use(cache));
      EXPECT_EQ(run.kernel, expected_automatic_kernel(problem));
      EXPECT_EQ(run.status.code, StatusCode::page_out_of_range);
      EXPECT_EQ(run.status.batch, 0);
    });
  }
}

}  // namespace
}  // namespace openmla::test
