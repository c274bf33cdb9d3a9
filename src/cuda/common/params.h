#pragma once
// What the decode and combine kernels see: pointers, int64 strides in elements, sizes. No framework
// type, no API type.

#include <cstdint>

#include "../../core/schedule.h"

namespace openmla::cuda {

inline constexpr int kDQK = 576;  // latent (512) + RoPE (64) width of q and of a cache row
inline constexpr int kDV = 512;   // v = the first kDV columns of a cache row

// The largest batch whose plan words and lengths a Hopper CTA copies into shared memory before it
// walks its part (common/walk.cuh copy_walk); a larger batch is walked from global memory.
inline constexpr int64_t kCopiedBatch = 60;

struct DecodeParams {
  const void* q;  // [b, s_q, h_q, kDQK]
  int64_t q_stride_b, q_stride_s, q_stride_h;
  const void* k_cache;  // [num_blocks, page_size, h_kv, kDQK] (656 bytes per token in the fp8_656 format)
  int64_t k_stride_block, k_stride_token, k_stride_head;
  const float* k_scale;  // [1] with CacheFormat::fp8_per_tensor (read by the kernel), else null
  const int32_t* block_table;  // [b, max_blocks]
  int64_t bt_stride_b, bt_stride_page;
  const int32_t* seqlens;  // [b]
  int64_t seqlens_stride;
  void* out;  // [b, s_q, h_q, kDV]
  int64_t out_stride_b, out_stride_s, out_stride_h;
  float* lse;  // [b, h_q, s_q]
  int64_t lse_stride_b, lse_stride_h, lse_stride_s;

  int32_t* status;      // the workspace's status record (core/status.h), one word per CTA after its header
  float* partial_lse;   // [max_splits, s_q, h_q]
  float* partial_out;   // [max_splits, s_q, h_q, kDV]
  schedule::View plan;  // the plan buffer's arrays: checked as they are read (core/pieces.h)
  int32_t num_parts;    // of the plan (gridDim.y of the decode kernel)

  int32_t batch;
  int32_t s_q;
  int32_t h_q;
  int32_t group;  // h_q / h_kv: query heads per KV head
  int32_t rows;   // s_q * group: query rows per KV head, packed (row = i * group + head)
  int32_t page_size;
  int32_t page_shift;  // log2(page_size) when it is a power of two, else -1
  int32_t max_blocks;
  int64_t num_blocks;
  float scale_log2;  // softmax_scale * log2(e): scores go through exp2
  bool causal;
  bool q_by_tma = false;  // the Hopper asymmetric kernel loads an m-tile's q rows with its q map (sm90/launch.cu)
};

}  // namespace openmla::cuda
