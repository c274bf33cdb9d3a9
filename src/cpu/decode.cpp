// The CPU backend: the plan's parts run on threads, each writing its splits; sequences split in several
// parts are then merged by LSE. Same schedule and workspace as the GPU, so the CPU run also exercises
// the split/combine logic.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "../api/backends.h"
#include "../api/check.h"
#include "../core/host_planner.h"
#include "../core/pieces.h"
#include "../core/schedule.h"
#include "../core/status.h"
#include "../core/workspace.h"
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
        store_element(a.out.data, base + d, empty ? 0.0f : o[d], a.out.dtype);
      }
    }
  }
}

// Merges n splits (consecutive in the workspace) of one sequence into dst. A NaN lse (NaN in q or in
// the keys) makes the row NaN: std::max would drop it and report the row as empty.
void combine(int64_t rows, int64_t d_v, int64_t n, const SplitOut& splits, const SplitOut& dst) {
  for (int64_t r = 0; r < rows; ++r) {
    float max_lse = -kInf;
    bool any_nan = false;
    for (int64_t k = 0; k < n; ++k) {
      const float split_lse = splits.lse[k * rows + r];
      any_nan = any_nan || std::isnan(split_lse);
      max_lse = std::max(max_lse, split_lse);
    }
    float* o = dst.out + r * d_v;  // [d_v]
    if (any_nan) {
      std::fill(o, o + d_v, std::numeric_limits<float>::quiet_NaN());
      dst.lse[r] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
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

// cache_seqlens ([b] int32, any stride) as a contiguous array.
std::vector<int32_t> gather_lengths(const TensorView& cache_seqlens, int64_t b) {
  const auto* data = static_cast<const int32_t*>(cache_seqlens.data);
  std::vector<int32_t> lengths(static_cast<size_t>(b));  // [b]
  for (int64_t i = 0; i < b; ++i) {
    lengths[static_cast<size_t>(i)] = data[i * cache_seqlens.strides[0]];
  }
  return lengths;
}

// The plan buffer against the plan of the given lengths (host_planner.h), before anything is written.
void check_plan_contents(const DecodeArgs& a, const std::vector<int32_t>& lengths) {
  const PlanConfig& c = a.plan->config;
  const schedule::Comparison found =
      schedule::compare_on_host(a.plan->buffer.data, lengths.data(), c.batch, c.num_parts);
  if (found.kind == schedule::Comparison::kStale) {
    const int64_t need = schedule::num_tiles(lengths[static_cast<size_t>(found.seq)]);
    detail::fail("plan",
                 "a plan made for these cache_seqlens (sequence " + std::to_string(found.seq) + " needs " +
                     std::to_string(need) + " key tiles)",
                 "one made for " + std::to_string(found.plan_tiles));
  }
  if (found.kind == schedule::Comparison::kForeign) {
    detail::fail("plan",
                 "a plan buffer written by openmla::plan for b = " + std::to_string(c.batch) +
                     " and num_parts = " + std::to_string(c.num_parts),
                 "one that differs from it (not written by openmla::plan, or overwritten since)");
  }
}

}  // namespace

int64_t default_num_parts() { return std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency())); }

void plan(const PlanConfig& config, const TensorView& cache_seqlens, void* buffer) {
  const std::vector<int32_t> lengths = gather_lengths(cache_seqlens, config.batch);  // [b]
  schedule::build_on_host(lengths.data(), config.batch, config.num_parts, schedule::kDefaultCharge, buffer);
}

void check_values(const DecodeArgs& a) {
  const int64_t b = a.q.sizes[0];
  const int64_t num_blocks = a.k_cache.sizes[0];
  const int64_t page_size = a.k_cache.sizes[1];
  const int64_t max_blocks = a.block_table.sizes[1];
  const std::vector<int32_t> lengths = gather_lengths(a.cache_seqlens, b);  // [b]
  for (int64_t i = 0; i < b; ++i) {
    const std::string name = "cache_seqlens[" + std::to_string(i) + "]";
    const int64_t s_k = lengths[static_cast<size_t>(i)];
    if (s_k < 0) {
      detail::fail(name, ">= 0", std::to_string(s_k));
    }
    const int64_t pages = (s_k + page_size - 1) / page_size;
    if (pages > max_blocks) {
      detail::fail(name, "<= max_blocks_per_seq * page_size = " + std::to_string(max_blocks * page_size),
                   std::to_string(s_k));
    }
    for (int64_t j = 0; j < pages; ++j) {
      const int64_t block =
          static_cast<const int32_t*>(a.block_table.data)[i * a.block_table.strides[0] + j * a.block_table.strides[1]];
      if (block < 0 || block >= num_blocks) {
        detail::fail("block_table[" + std::to_string(i) + ", " + std::to_string(j) + "]",
                     "a page index in [0, " + std::to_string(num_blocks) + ")", std::to_string(block));
      }
    }
  }
  if (b > 0) {
    check_plan_contents(a, lengths);
  }
}

void decode(const DecodeArgs& a, float scale) {
  char* base = static_cast<char*>(a.workspace.data);
  *reinterpret_cast<int32_t*>(base) = status::kOkWord;  // checked up front: nothing to record
  const PlanConfig& c = a.plan->config;
  const int64_t b = c.batch;
  if (b == 0) {
    return;
  }
  const int64_t s_q = a.q.sizes[1];
  const int64_t rows = s_q * a.q.sizes[2];
  const schedule::View plan = schedule::view(a.plan->buffer.data, b, c.num_parts);
  const schedule::Line line = schedule::line_of(plan, b, c.num_parts);
  const workspace::Layout ws =
      workspace::layout(c.num_parts, schedule::max_splits(b, c.num_parts), s_q, a.q.sizes[2], a.d_v);
  auto* partial_lse = reinterpret_cast<float*>(base + ws.lse_offset);  // [max_splits, s_q, h_q]
  auto* partial_out = reinterpret_cast<float*>(base + ws.out_offset);  // [max_splits, s_q, h_q, d_v]
  auto split_slot = [&](int64_t index) {
    return SplitOut{partial_lse + index * rows, partial_out + index * rows * a.d_v};
  };
  const schedule::Lengths lengths{.seqlens = static_cast<const int32_t*>(a.cache_seqlens.data),
                                  .stride = a.cache_seqlens.strides[0],
                                  .page_size = a.k_cache.sizes[1],
                                  .max_blocks = a.block_table.sizes[1]};

  // check_values has checked the plan and the lengths, so every piece is ok.
  parallel_for(c.num_parts, default_num_parts(), [&](int64_t p) {
    const schedule::Walk walk = schedule::walk_part(plan, b, c.num_parts, p);
    std::vector<float> lse(static_cast<size_t>(rows));          // [s_q, h_q]
    std::vector<float> out(static_cast<size_t>(rows * a.d_v));  // [s_q, h_q, d_v]
    for (int32_t seq = walk.first; seq <= walk.last; seq += walk.stride) {
      const schedule::Piece piece = schedule::piece_of(plan, walk, seq, lengths);
      if (piece.slot < 0) {
        const SplitOut local{lse.data(), out.data()};
        attend_split(a, scale, seq, piece.key_begin, piece.key_end, local);
        finalize(a, seq, local);
      } else {
        attend_split(a, scale, seq, piece.key_begin, piece.key_end, split_slot(piece.slot));
      }
    }
  });

  parallel_for(b, default_num_parts(), [&](int64_t seq) {
    const schedule::SeqPlan splits = schedule::seq_plan(plan, b, c.num_parts, line, seq);
    if (splits.splits == 1) {
      return;
    }
    std::vector<float> lse(static_cast<size_t>(rows));          // [s_q, h_q]
    std::vector<float> out(static_cast<size_t>(rows * a.d_v));  // [s_q, h_q, d_v]
    const SplitOut merged{lse.data(), out.data()};
    combine(rows, a.d_v, splits.splits, split_slot(splits.first_split), merged);
    finalize(a, seq, merged);
  });
}

}  // namespace openmla::cpu
