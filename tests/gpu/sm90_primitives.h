#pragma once
// Single-CTA runs of the Hopper kernel's building blocks, each through the same helpers the kernel
// uses (sm90/layout.cuh, common/ptx/*, sm90::make_cache_map), for sm90_primitives_test.cpp. A failure
// here pins a decode failure on one layer: swizzle, descriptors, fragments or the tensor map.
// Every matrix is row-major 16-bit bits (bf16 or fp16 per `dtype`); results are fp32.

#include <cstdint>
#include <vector>

#include "openmla/tensor.h"

namespace openmla::test {

struct WgmmaResult {
  std::vector<float> d;       // the product, row-major
  uint32_t misalignment = 0;  // dynamic shared memory base % 1024 (the swizzle needs 0)
};

// S [64, 64] = A [64, 64] . B [64, 64]^T: 4 wgmma m64n64k16, both operands K-major from swizzled
// shared memory (the kernel's Q K^T on one chunk), read back through the accumulator layout.
WgmmaResult run_scores_wgmma(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b, DType dtype);

// O [64, 256] = half(Q [64, 64] . K [64, 64]^T) . V [64, 256]: the kernel's warpgroup-0 chain. S from
// 4 wgmma m64n64k16, converted in registers to the A fragments of 4 wgmma m64n256k16 (RS) whose B is
// V MN-major (transposed) from 4 swizzled chunks.
WgmmaResult run_scores_then_values(const std::vector<uint16_t>& q, const std::vector<uint16_t>& k,
                                   const std::vector<uint16_t>& v, DType dtype);

// O [64, 256] = P [64, 64] . V [64, 256]: the kernel's warpgroup-1 product, P K-major and V MN-major
// from swizzled shared memory (4 wgmma m64n256k16, SS), P stored the way warpgroup 0 publishes it.
WgmmaResult run_values_from_shared(const std::vector<uint16_t>& p, const std::vector<uint16_t>& v, DType dtype);

struct TmaTile {
  std::vector<uint16_t> elements;  // [9 chunks][64 tokens][64 elements], unswizzled
  uint32_t misalignment = 0;
};

// One box of the library's cache tensor map with boxes of `chunks` chunks (tokens [token, token + 64)
// of cache block `block`, KV head `head`, chunks [first_chunk, first_chunk + chunks)), loaded by TMA
// onto an mbarrier into the same chunks of a tile and read back through the kernel's swizzle formula;
// the tile's other chunks read back as 0xffff. `k_cache` is a device view [num_blocks, page_size, h_kv, 576].
TmaTile run_tma_tile(const TensorView& k_cache, int token, int head, int block, int first_chunk, int chunks);

}  // namespace openmla::test
