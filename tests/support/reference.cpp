#include "reference.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "half_bits.h"

namespace openmla::test {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double dot(const double* a, const double* b, int64_t n) {
  double acc[4] = {};
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    for (int u = 0; u < 4; ++u) {
      acc[u] += a[j + u] * b[j + u];
    }
  }
  for (; j < n; ++j) {
    acc[0] += a[j] * b[j];
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Writes the d_qk values of key (block, slot, head) to dst.
using KeyReader = std::function<void(int64_t block, int64_t slot, int64_t head, double* dst)>;

Reference decode_with(const Problem& p, const KeyReader& read_key) {
  const ProblemSpec& s = p.spec;
  const int64_t group = s.h_q / s.h_kv;
  const int64_t rows = s.s_q * group;  // the query rows that read one KV head
  const double scale = p.softmax_scale();
  Reference r;
  r.out.assign(static_cast<size_t>(s.b * s.s_q * s.h_q * s.d_v), 0.0);
  r.lse.assign(static_cast<size_t>(s.b * s.h_q * s.s_q), kInf);
  std::vector<double> keys;                                       // [s_k, d_qk] of one KV head
  std::vector<double> query(static_cast<size_t>(rows * s.d_qk));  // [s_q, group, d_qk]
  std::vector<double> scores;                                     // [s_q, group, s_k]
  std::vector<double> acc(static_cast<size_t>(rows * s.d_v));     // [s_q, group, d_v]
  for (int64_t seq = 0; seq < s.b; ++seq) {
    const int64_t s_k = p.seqlens[seq];
    if (s_k <= 0) {
      continue;
    }
    keys.resize(static_cast<size_t>(s_k * s.d_qk));
    scores.resize(static_cast<size_t>(rows * s_k));
    for (int64_t g = 0; g < s.h_kv; ++g) {
      for (int64_t k = 0; k < s_k; ++k) {
        const int64_t block = p.block_table[seq * p.max_blocks_per_seq + k / s.page_size];
        read_key(block, k % s.page_size, g, &keys[k * s.d_qk]);
      }
      for (int64_t i = 0; i < s.s_q; ++i) {
        for (int64_t hh = 0; hh < group; ++hh) {
          const uint16_t* src = p.q.data() + ((seq * s.s_q + i) * s.h_q + g * group + hh) * s.d_qk;  // [d_qk]
          for (int64_t d = 0; d < s.d_qk; ++d) {
            query[(i * group + hh) * s.d_qk + d] = half_to_double(src[d], s.dtype);
          }
        }
      }
      // Key-major loops keep one key in L1 while every row that reads it uses it.
      for (int64_t k = 0; k < s_k; ++k) {
        for (int64_t row = 0; row < rows; ++row) {
          scores[row * s_k + k] = dot(&query[row * s.d_qk], &keys[k * s.d_qk], s.d_qk) * scale;
        }
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      std::vector<double> row_max(static_cast<size_t>(rows), -kInf);  // [s_q, group]
      std::vector<double> row_sum(static_cast<size_t>(rows), 0.0);    // [s_q, group]
      for (int64_t row = 0; row < rows; ++row) {
        const int64_t i = row / group;
        const int64_t visible = s.causal ? std::clamp<int64_t>(s_k - s.s_q + i + 1, 0, s_k) : s_k;
        for (int64_t k = 0; k < visible; ++k) {
          row_max[row] = std::max(row_max[row], scores[row * s_k + k]);
        }
        for (int64_t k = 0; k < s_k; ++k) {
          const double e = k < visible ? std::exp(scores[row * s_k + k] - row_max[row]) : 0.0;
          scores[row * s_k + k] = e;
          row_sum[row] += e;
        }
      }
      for (int64_t k = 0; k < s_k; ++k) {
        const double* v = &keys[k * s.d_qk];  // [d_v]: v is the first d_v columns of k
        for (int64_t row = 0; row < rows; ++row) {
          const double w = scores[row * s_k + k];
          if (w == 0.0) {
            continue;
          }
          double* o = &acc[row * s.d_v];  // [d_v]
          for (int64_t d = 0; d < s.d_v; ++d) {
            o[d] += w * v[d];
          }
        }
      }
      for (int64_t row = 0; row < rows; ++row) {
        if (row_sum[row] == 0.0) {
          continue;  // sees no key: out stays 0, lse +inf
        }
        const int64_t i = row / group;
        const int64_t h = g * group + row % group;
        double* o = &r.out[((seq * s.s_q + i) * s.h_q + h) * s.d_v];  // [d_v]
        for (int64_t d = 0; d < s.d_v; ++d) {
          o[d] = acc[row * s.d_v + d] / row_sum[row];
        }
        r.lse[(seq * s.h_q + h) * s.s_q + i] = row_max[row] + std::log(row_sum[row]);
      }
    }
  }
  return r;
}

}  // namespace

Reference reference_decode(const Problem& p) {
  const ProblemSpec& s = p.spec;
  const uint16_t* cache = p.cache_data();  // [num_blocks, page_size, h_kv, d_qk]
  return decode_with(p, [&](int64_t block, int64_t slot, int64_t head, double* dst) {
    const uint16_t* src = cache + ((block * s.page_size + slot) * s.h_kv + head) * s.d_qk;  // [d_qk]
    for (int64_t d = 0; d < s.d_qk; ++d) {
      dst[d] = half_to_double(src[d], s.dtype);
    }
  });
}

Reference reference_decode(const Problem& p, const Fp8Cache& cache) {
  return decode_with(p, [&](int64_t block, int64_t slot, int64_t head, double* dst) {
    cache.dequantize(block, slot, head, dst);
  });
}

Reference reference_from_output(const TensorView& out, const TensorView& lse) {
  const int64_t b = out.sizes[0];
  const int64_t s_q = out.sizes[1];
  const int64_t h_q = out.sizes[2];
  const int64_t d_v = out.sizes[3];
  Reference r;
  r.out.resize(static_cast<size_t>(b * s_q * h_q * d_v));
  r.lse.resize(static_cast<size_t>(b * h_q * s_q));
  const auto* o = static_cast<const uint16_t*>(out.data);  // [b, s_q, h_q, d_v] strided
  const auto* l = static_cast<const float*>(lse.data);     // [b, h_q, s_q] strided
  for (int64_t n = 0; n < b; ++n) {
    for (int64_t i = 0; i < s_q; ++i) {
      for (int64_t h = 0; h < h_q; ++h) {
        for (int64_t d = 0; d < d_v; ++d) {
          const int64_t at = n * out.strides[0] + i * out.strides[1] + h * out.strides[2] + d * out.strides[3];
          r.out[((n * s_q + i) * h_q + h) * d_v + d] = half_to_double(o[at], out.dtype);
        }
        r.lse[(n * h_q + h) * s_q + i] = l[n * lse.strides[0] + h * lse.strides[1] + i * lse.strides[2]];
      }
    }
  }
  return r;
}

}  // namespace openmla::test
