#include "parts.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "half_bits.h"
#include "openmla/merge.h"
#include "random.h"

namespace openmla::test {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

TensorView view_of(void* data, DType dtype, std::initializer_list<int64_t> sizes) {
  return make_view(data, dtype, sizes);
}

}  // namespace

TensorView Results::stacked_out() const {
  return view_of(const_cast<uint32_t*>(out.data()), dtype, {n, b, s_q, h_q, d_v});
}

TensorView Results::stacked_lse() const {
  return view_of(const_cast<float*>(lse.data()), DType::fp32, {n, b, h_q, s_q});
}

TensorView Results::out_view() const { return view_of(const_cast<uint32_t*>(out.data()), dtype, {b, s_q, h_q, d_v}); }

TensorView Results::lse_view() const { return view_of(const_cast<float*>(lse.data()), DType::fp32, {b, h_q, s_q}); }

int64_t Results::out_index(int64_t part, int64_t seq, int64_t i, int64_t h, int64_t d) const {
  return (((part * b + seq) * s_q + i) * h_q + h) * d_v + d;
}

int64_t Results::lse_index(int64_t part, int64_t seq, int64_t h, int64_t i) const {
  return ((part * b + seq) * h_q + h) * s_q + i;
}

double Results::out_at(int64_t index) const {
  if (dtype == DType::fp32) {
    float f;
    std::memcpy(&f, &out[index], 4);
    return f;
  }
  return half_to_double(reinterpret_cast<const uint16_t*>(out.data())[index], dtype);
}

void Results::set_out(int64_t index, double value) {
  if (dtype == DType::fp32) {
    const auto f = static_cast<float>(value);
    std::memcpy(&out[index], &f, 4);
    return;
  }
  auto* bits = reinterpret_cast<uint16_t*>(out.data());
  bits[index] = std::isnan(value) ? nan_bits(dtype)
                : std::isinf(value)
                    ? static_cast<uint16_t>((value < 0 ? 0x8000u : 0u) | (dtype == DType::bf16 ? 0x7f80u : 0x7c00u))
                    : double_to_half(value, dtype);
}

Results make_results(DType dtype, int64_t n, int64_t b, int64_t s_q, int64_t h_q, int64_t d_v) {
  Results r{.dtype = dtype, .n = n, .b = b, .s_q = s_q, .h_q = h_q, .d_v = d_v, .out = {}, .lse = {}};
  const int64_t elements = n * b * s_q * h_q * d_v;
  const int64_t words = dtype == DType::fp32 ? elements : (elements + 1) / 2;
  const uint32_t nan = dtype == DType::fp32 ? 0x7fc00000u : (nan_bits(dtype) * 0x10001u);
  r.out.assign(static_cast<size_t>(words), nan);
  r.lse.assign(static_cast<size_t>(n * b * h_q * s_q), kLseSentinel);
  return r;
}

Results random_parts(DType dtype, int64_t n, int64_t b, int64_t s_q, int64_t h_q, int64_t d_v, uint64_t seed) {
  Results parts = make_results(dtype, n, b, s_q, h_q, d_v);
  Rng rng(seed);
  for (int64_t e = 0; e < n * b * s_q * h_q * d_v; ++e) {
    parts.set_out(e, 2.0 * rng.uniform() - 1.0);
  }
  for (float& l : parts.lse) {
    l = static_cast<float>(6.0 * rng.uniform() - 3.0);
  }
  return parts;
}

Results reference_parts(const Problem& p, int64_t n, const KeyOwner& owner, DType dtype) {
  const ProblemSpec& s = p.spec;
  const int64_t group = s.h_q / s.h_kv;
  const double scale = p.softmax_scale();
  const uint16_t* cache = p.cache_data();  // [num_blocks, page_size, h_kv, d_qk]
  Results r = make_results(dtype, n, s.b, s.s_q, s.h_q, s.d_v);
  std::vector<double> keys;                                // [s_k, h_kv, d_qk]
  std::vector<int64_t> part_of_key;                        // [s_k]
  std::vector<double> query(static_cast<size_t>(s.d_qk));  // [d_qk]
  std::vector<double> scores;                              // [s_k]
  std::vector<double> acc(static_cast<size_t>(s.d_v));     // [d_v]
  for (int64_t seq = 0; seq < s.b; ++seq) {
    const int64_t s_k = std::max(p.seqlens[seq], 0);
    keys.resize(static_cast<size_t>(s_k * s.h_kv * s.d_qk));
    part_of_key.resize(static_cast<size_t>(s_k));
    scores.resize(static_cast<size_t>(s_k));
    for (int64_t j = 0; j < s_k; ++j) {
      const int64_t block = p.block_table[seq * p.max_blocks_per_seq + j / s.page_size];
      const uint16_t* src = cache + (block * s.page_size + j % s.page_size) * s.h_kv * s.d_qk;  // [h_kv, d_qk]
      for (int64_t e = 0; e < s.h_kv * s.d_qk; ++e) {
        keys[j * s.h_kv * s.d_qk + e] = half_to_double(src[e], s.dtype);
      }
      part_of_key[j] = owner(seq, j);
    }
    for (int64_t i = 0; i < s.s_q; ++i) {
      const int64_t visible = s.causal ? std::clamp<int64_t>(s_k - s.s_q + i + 1, 0, s_k) : s_k;
      for (int64_t h = 0; h < s.h_q; ++h) {
        const double* k_head = keys.data() + (h / group) * s.d_qk;  // key j at k_head + j * h_kv * d_qk
        for (int64_t d = 0; d < s.d_qk; ++d) {
          query[d] = half_to_double(p.q[((seq * s.s_q + i) * s.h_q + h) * s.d_qk + d], s.dtype);
        }
        for (int64_t j = 0; j < visible; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < s.d_qk; ++d) {
            dot += query[d] * k_head[j * s.h_kv * s.d_qk + d];
          }
          scores[j] = dot * scale;
        }
        for (int64_t part = 0; part < n; ++part) {
          double max_score = -kInf;
          for (int64_t j = 0; j < visible; ++j) {
            max_score = part_of_key[j] == part ? std::max(max_score, scores[j]) : max_score;
          }
          std::fill(acc.begin(), acc.end(), 0.0);
          double sum = 0.0;
          for (int64_t j = 0; j < visible && max_score > -kInf; ++j) {
            if (part_of_key[j] != part) {
              continue;
            }
            const double w = std::exp(scores[j] - max_score);
            sum += w;
            for (int64_t d = 0; d < s.d_v; ++d) {
              acc[d] += w * k_head[j * s.h_kv * s.d_qk + d];
            }
          }
          for (int64_t d = 0; d < s.d_v; ++d) {
            r.set_out(r.out_index(part, seq, i, h, d), sum > 0.0 ? acc[d] / sum : 0.0);
          }
          r.lse[r.lse_index(part, seq, h, i)] = sum > 0.0 ? static_cast<float>(max_score + std::log(sum)) : INFINITY;
        }
      }
    }
  }
  return r;
}

Results merge_on_host(const Results& parts, DType out_dtype) {
  Results merged = make_results(out_dtype, 1, parts.b, parts.s_q, parts.h_q, parts.d_v);
  merge(MergeArgs{.out_parts = parts.stacked_out(),
                  .lse_parts = parts.stacked_lse(),
                  .out = merged.out_view(),
                  .lse = merged.lse_view()});
  return merged;
}

std::vector<PageShare> split_pages_in_two(const Problem& p) {
  const ProblemSpec& s = p.spec;
  const int64_t width = p.max_blocks_per_seq;
  std::vector<PageShare> shares(2);
  for (PageShare& share : shares) {
    share.block_table.assign(static_cast<size_t>(s.b * width), kPoisonPage);
    share.seqlens.assign(static_cast<size_t>(s.b), 0);
  }
  for (int64_t seq = 0; seq < s.b; ++seq) {
    const int64_t s_k = std::max(p.seqlens[seq], 0);
    const int64_t pages = (s_k + s.page_size - 1) / s.page_size;
    const int64_t cut = std::min(pages / 2, std::max<int64_t>(s_k - s.s_q, 0) / s.page_size);
    for (int64_t j = 0; j < pages; ++j) {
      PageShare& share = shares[j < cut ? 0 : 1];
      share.block_table[seq * width + (j < cut ? j : j - cut)] = p.block_table[seq * width + j];
    }
    shares[0].seqlens[seq] = static_cast<int32_t>(cut * s.page_size);
    shares[1].seqlens[seq] = static_cast<int32_t>(s_k - cut * s.page_size);
  }
  return shares;
}

}  // namespace openmla::test
