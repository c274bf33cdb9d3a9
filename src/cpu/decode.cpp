// The CPU backend: the plan's parts run on threads, each writing its splits; sequences split in several
// parts are then merged by LSE. Same schedule and workspace as the GPU, so the CPU run also exercises
// the split/combine logic.

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "../api/backends.h"
#include "../api/check.h"
#include "../core/workspace.h"
#include "../core/host_planner.h"
#include "../core/schedule.h"
#include "../core/status.h"
#include "attention.h"
#include "half.h"

namespace openmla::cpu {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Writes a sequence's final result: out rounded once; a row that saw no key gets out 0, lse +inf.
void finalize(const DecodeArgs& a, int64_t seq, const SplitOut& src) {
  const int64_t s_q = a.q.sizes[1];
  const int64_t h_q = a.q.sizes[2];
  auto* lse = static_cast<float*>(a.lse.data);
  for (int64_t i = 0; i < s_q; ++i) {
    for (int64_t h = 0; h < h_q; ++h) {
      const float row_lse = src.lse[i * h_q + h];
      const bool empty = row_lse == -kInf;
      lse[seq * a.lse.strides[0] + h * a.lse.strides[1] + i * a.lse.strides[2]] = empty ? kInf : row_lse;
      const float* o = src.out + (i * h_q + h) * a.d_v;  // [d_v]
      const int64_t base = seq * a.out.strides[0] + i * a.out.strides[1] + h * a.out.strides[2];
      for (int64_t d = 0; d < a.d_v; ++d) {
        store_half(a.out.data, base + d, empty ? 0.0f : o[d], a.out.dtype);
      }
    }
  }
}

// Merges n splits (consecutive in the workspace) of one sequence into dst.
void combine(int64_t rows, int64_t d_v, int64_t n, const SplitOut& splits, const SplitOut& dst) {
  for (int64_t r = 0; r < rows; ++r) {
    float max_lse = -kInf;
    for (int64_t k = 0; k < n; ++k) {
      max_lse = std::max(max_lse, splits.lse[k * rows + r]);
    }
    float* o = dst.out + r * d_v;  // [d_v]
    std::fill(o, o + d_v, 0.0f);
    if (max_lse == -kInf) {
      dst.lse[r] = -kInf;
      continue;
    }
    float sum = 0.0f;
    for (int64_t k = 0; k < n; ++k) {
      sum += std::exp(splits.lse[k * rows + r] - max_lse);
    }
    const float lse = max_lse + std::log(sum);
    for (int64_t k = 0; k < n; ++k) {
      const float w = std::exp(splits.lse[k * rows + r] - lse);
      const float* src = splits.out + (k * rows + r) * d_v;  // [d_v]
      for (int64_t d = 0; d < d_v; ++d) {
        o[d] += w * src[d];
      }
    }
    dst.lse[r] = lse;
  }
}

template <typename Fn>
void parallel_for(int64_t n, int64_t workers, Fn fn) {
  const int64_t threads = std::clamp<int64_t>(workers, 1, n);
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) {
      fn(i);
    }
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([=, &fn] {
      for (int64_t i = t; i < n; i += threads) {
        fn(i);
      }
    });
  }
  for (auto& thread : pool) {
    thread.join();
  }
}

}  // namespace

int64_t default_num_parts() {
  return std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
}

void plan(const PlanConfig& config, const TensorView& cache_seqlens, void* buffer) {
  std::vector<int32_t> lengths(static_cast<size_t>(config.batch));  // [b]
  for (int64_t i = 0; i < config.batch; ++i) {
    lengths[i] = static_cast<const int32_t*>(cache_seqlens.data)[i * cache_seqlens.strides[0]];
  }
  schedule::build_on_host(lengths.data(), config.batch, config.num_parts, buffer);
}

void check_values(const DecodeArgs& a) {
  const int64_t b = a.q.sizes[0];
  const int64_t num_blocks = a.k_cache.sizes[0];
  const int64_t page_size = a.k_cache.sizes[1];
  const int64_t max_blocks = a.block_table.sizes[1];
  for (int64_t i = 0; i < b; ++i) {
    const std::string name = "cache_seqlens[" + std::to_string(i) + "]";
    const int64_t s_k = static_cast<const int32_t*>(a.cache_seqlens.data)[i * a.cache_seqlens.strides[0]];
    if (s_k < 0) {
      detail::fail(name, ">= 0", std::to_string(s_k));
    }
    const int64_t pages = (s_k + page_size - 1) / page_size;
    if (pages > max_blocks) {
      detail::fail(name, "<= max_blocks_per_seq * page_size = " + std::to_string(max_blocks * page_size),
                   std::to_string(s_k));
    }
    for (int64_t j = 0; j < pages; ++j) {
      const int64_t block = static_cast<const int32_t*>(
          a.block_table.data)[i * a.block_table.strides[0] + j * a.block_table.strides[1]];
      if (block < 0 || block >= num_blocks) {
        detail::fail("block_table[" + std::to_string(i) + ", " + std::to_string(j) + "]",
                     "a page index in [0, " + std::to_string(num_blocks) + ")", std::to_string(block));
      }
    }
  }
}

void decode(const DecodeArgs& a, float scale) {
  const PlanConfig& c = a.plan->config;
  const int64_t b = c.batch;
  const int64_t rows = c.s_q * c.h_q;
  const schedule::View plan = schedule::view(a.plan->buffer.data, b, c.num_parts);
  const workspace::Layout ws = workspace::layout(schedule::max_splits(b, c.num_parts), c.s_q, c.h_q, a.d_v);
  char* base = static_cast<char*>(a.workspace.data);
  *reinterpret_cast<int32_t*>(base) = status::kOkWord;
  auto* partial_lse = reinterpret_cast<float*>(base + ws.lse_offset);  // [max_splits, s_q, h_q]
  auto* partial_out = reinterpret_cast<float*>(base + ws.out_offset);  // [max_splits, s_q, h_q, d_v]
  auto split_slot = [&](int64_t index) {
    return SplitOut{partial_lse + index * rows, partial_out + index * rows * a.d_v};
  };
  auto splits_of = [&](int64_t seq) { return plan.split_offset[seq + 1] - plan.split_offset[seq]; };

  parallel_for(c.num_parts, default_num_parts(), [&](int64_t p) {
    const schedule::Part part = schedule::load_part(plan.parts, p);
    std::vector<float> lse(static_cast<size_t>(rows));            // [s_q, h_q]
    std::vector<float> out(static_cast<size_t>(rows * a.d_v));    // [s_q, h_q, d_v]
    for (int64_t seq = part.first_seq; seq <= part.last_seq; ++seq) {
      const int64_t tiles = plan.prefix[seq + 1] - plan.prefix[seq] - schedule::kFixedCost;
      const int64_t tile_begin = seq == part.first_seq ? part.first_tile_begin : 0;
      const int64_t tile_end = seq == part.last_seq ? part.last_tile_end : tiles;
      const int64_t s_k = static_cast<const int32_t*>(a.cache_seqlens.data)[seq * a.cache_seqlens.strides[0]];
      const int64_t key_begin = tile_begin * schedule::kTileN;
      const int64_t key_end = std::min(tile_end * schedule::kTileN, s_k);
      if (splits_of(seq) == 1) {
        const SplitOut local{lse.data(), out.data()};
        attend_split(a, scale, seq, key_begin, key_end, local);
        finalize(a, seq, local);
      } else {
        const int64_t split = seq == part.first_seq ? part.first_split : 0;
        attend_split(a, scale, seq, key_begin, key_end, split_slot(plan.split_offset[seq] + split));
      }
    }
  });

  parallel_for(b, default_num_parts(), [&](int64_t seq) {
    const int64_t n = splits_of(seq);
    if (n == 1) {
      return;
    }
    std::vector<float> lse(static_cast<size_t>(rows));          // [s_q, h_q]
    std::vector<float> out(static_cast<size_t>(rows * a.d_v));  // [s_q, h_q, d_v]
    const SplitOut merged{lse.data(), out.data()};
    combine(rows, a.d_v, n, split_slot(plan.split_offset[seq]), merged);
    finalize(a, seq, merged);
  });
}

}  // namespace openmla::cpu
