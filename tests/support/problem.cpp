#include "problem.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "half_bits.h"
#include "random.h"

namespace openmla::test {

namespace {

// Draws of N(0, 0.1²) clamped to ±1, already rounded to the dtype: filling then costs one table
// lookup per element, 16 random bits each.
class NormalTable {
 public:
  NormalTable(Rng& rng, DType dtype) : bits_(65536) {
    for (uint16_t& b : bits_) {
      b = double_to_half(std::clamp(rng.normal(0.0, 0.1), -1.0, 1.0), dtype);
    }
  }

  void fill(Rng& rng, uint16_t* dst, int64_t n) const {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const uint64_t r = rng.next();
      for (int k = 0; k < 4; ++k) {
        dst[i + k] = bits_[(r >> (16 * k)) & 0xffffu];
      }
    }
    for (; i < n; ++i) {
      dst[i] = bits_[rng.next() & 0xffffu];
    }
  }

 private:
  std::vector<uint16_t> bits_;  // [65536]
};

std::vector<int32_t> draw_lengths(const ProblemSpec& spec, Rng& rng) {
  if (!spec.lengths.empty()) {
    return spec.lengths;
  }
  std::vector<int32_t> lengths(static_cast<size_t>(spec.b));  // [b]
  for (int64_t i = 0; i < spec.b; ++i) {
    int64_t s_k = spec.s_k;
    if (spec.varlen) {
      const auto mean = static_cast<double>(spec.s_k);
      const double drawn = std::nearbyint(rng.normal(mean, mean / 2.0));
      s_k = std::max<int64_t>(spec.s_q, static_cast<int64_t>(std::max(drawn, 0.0)));
    }
    if (spec.zero_length_every > 0 && i % spec.zero_length_every == 0) {
      s_k = 0;
    }
    lengths[i] = static_cast<int32_t>(s_k);
  }
  return lengths;
}

int64_t pages_for(int64_t s_k, int64_t page_size) { return (s_k + page_size - 1) / page_size; }

}  // namespace

float Problem::softmax_scale() const {
  return spec.softmax_scale ? *spec.softmax_scale : 1.0f / std::sqrt(static_cast<float>(spec.d_qk));
}

TensorView Problem::q_view() const {
  return make_view(const_cast<uint16_t*>(q.data()), spec.dtype, {spec.b, spec.s_q, spec.h_q, spec.d_qk});
}

TensorView Problem::k_cache_view() const {
  return make_view(k_cache.data(), spec.dtype, {num_blocks, spec.page_size, spec.h_kv, spec.d_qk});
}

TensorView Problem::block_table_view() const {
  return make_view(const_cast<int32_t*>(block_table.data()), DType::int32, {spec.b, max_blocks_per_seq});
}

TensorView Problem::seqlens_view() const {
  return make_view(const_cast<int32_t*>(seqlens.data()), DType::int32, {spec.b});
}

Problem make_problem(const ProblemSpec& spec) {
  Rng rng(spec.seed);
  const NormalTable normal(rng, spec.dtype);
  Problem p;
  p.spec = spec;
  p.spec.b = spec.lengths.empty() ? spec.b : static_cast<int64_t>(spec.lengths.size());
  const int64_t b = p.spec.b;
  p.seqlens = draw_lengths(p.spec, rng);

  int64_t used_pages = 0;
  int64_t longest = 0;
  for (int32_t s_k : p.seqlens) {
    const int64_t pages = pages_for(std::max(s_k, 0), spec.page_size);
    used_pages += pages;
    longest = std::max(longest, pages);
  }
  p.max_blocks_per_seq = longest + spec.extra_table_columns;
  p.num_blocks = spec.leading_pages + used_pages + spec.extra_pages;

  // Pages [leading_pages, num_blocks) in random order; sequences take them in turn.
  std::vector<int64_t> order(static_cast<size_t>(used_pages + spec.extra_pages));  // [pages]
  std::iota(order.begin(), order.end(), spec.leading_pages);
  for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i) {
    std::swap(order[i], order[rng.below(i + 1)]);
  }
  std::vector<int64_t> valid_tokens(static_cast<size_t>(p.num_blocks), -1);  // [num_blocks]; -1: unused
  p.block_table.assign(static_cast<size_t>(b * p.max_blocks_per_seq), spec.poison_table_tail ? kPoisonPage : 0);
  int64_t next = 0;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t s_k = std::max(p.seqlens[i], 0);
    for (int64_t j = 0; j < pages_for(s_k, spec.page_size); ++j) {
      const int64_t block = order[next++];
      p.block_table[i * p.max_blocks_per_seq + j] = static_cast<int32_t>(block);
      valid_tokens[block] = std::min(spec.page_size, s_k - j * spec.page_size);
    }
  }

  p.q.resize(static_cast<size_t>(b * spec.s_q * spec.h_q * spec.d_qk));
  normal.fill(rng, p.q.data(), static_cast<int64_t>(p.q.size()));

  const int64_t slot = spec.h_kv * spec.d_qk;  // elements of one token
  p.k_cache = MappedBuffer(static_cast<size_t>(p.num_blocks * spec.page_size * slot) * sizeof(uint16_t));
  auto* cache = static_cast<uint16_t*>(p.k_cache.data());  // [num_blocks, page_size, h_kv, d_qk]
  const uint16_t nan = nan_bits(spec.dtype);
  for (int64_t block = spec.leading_pages; block < p.num_blocks; ++block) {
    for (int64_t t = 0; t < spec.page_size; ++t) {
      uint16_t* dst = cache + (block * spec.page_size + t) * slot;  // [h_kv, d_qk]
      if (t < valid_tokens[block] || !spec.nan_unused) {
        normal.fill(rng, dst, slot);
      } else {
        std::fill(dst, dst + slot, nan);
      }
    }
  }
  return p;
}

TensorView Output::out_view() const {
  return make_view(const_cast<uint16_t*>(out.data()), dtype, {sizes[0], sizes[1], sizes[2], sizes[3]});
}

TensorView Output::lse_view() const {
  return make_view(const_cast<float*>(lse.data()), DType::fp32, {sizes[0], sizes[2], sizes[1]});
}

Output make_output(const ProblemSpec& spec) {
  const int64_t b = spec.lengths.empty() ? spec.b : static_cast<int64_t>(spec.lengths.size());
  Output o;
  o.dtype = spec.dtype;
  o.sizes[0] = b;
  o.sizes[1] = spec.s_q;
  o.sizes[2] = spec.h_q;
  o.sizes[3] = spec.d_v;
  o.out.assign(static_cast<size_t>(b * spec.s_q * spec.h_q * spec.d_v), kOutSentinel);
  o.lse.assign(static_cast<size_t>(b * spec.h_q * spec.s_q), kLseSentinel);
  return o;
}

std::vector<uint16_t> laid_out_q(const Problem& problem, const std::array<int64_t, 3>& strides, int64_t offset,
                                 int64_t elements) {
  const ProblemSpec& spec = problem.spec;
  std::vector<uint16_t> laid(static_cast<size_t>(elements), 0);
  for (int64_t b = 0; b < spec.b; ++b) {
    for (int64_t i = 0; i < spec.s_q; ++i) {
      for (int64_t h = 0; h < spec.h_q; ++h) {
        const int64_t row = (b * spec.s_q + i) * spec.h_q + h;
        std::copy_n(problem.q.begin() + row * spec.d_qk, spec.d_qk,
                    laid.begin() + offset + b * strides[0] + i * strides[1] + h * strides[2]);
      }
    }
  }
  return laid;
}

}  // namespace openmla::test
