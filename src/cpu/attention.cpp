#include "attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cache_row.h"
#include "half.h"

namespace openmla::cpu {

namespace {

// Eight independent partial sums let the compiler vectorize without reassociating the loop.
float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int u = 0; u < 8; ++u) {
      acc[u] += a[j + u] * b[j + u];
    }
  }
  for (; j < n; ++j) {
    acc[0] += a[j] * b[j];
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

void attend_split(const DecodeArgs& a, float scale, int64_t seq, int64_t key_begin, int64_t key_end,
                  const SplitOut& dst) {
  const int64_t s_q = a.q.sizes[1];
  const int64_t h_q = a.q.sizes[2];
  const int64_t d_qk = a.q.sizes[3];
  const int64_t d_v = a.d_v;
  const int64_t page_size = a.k_cache.sizes[1];
  const int64_t h_kv = a.k_cache.sizes[2];
  const int64_t group = h_q / h_kv;
  const int64_t s_k = static_cast<const int32_t*>(a.cache_seqlens.data)[seq * a.cache_seqlens.strides[0]];
  const auto* pages = static_cast<const int32_t*>(a.block_table.data) + seq * a.block_table.strides[0];
  const int64_t n_keys = std::max<int64_t>(key_end - key_begin, 0);

  const CacheReader cache = cache_reader(a);
  std::vector<float> keys(static_cast<size_t>(n_keys * d_qk));  // [n_keys, d_qk] of one KV head
  std::vector<float> query(static_cast<size_t>(d_qk));          // [d_qk]
  std::vector<float> scores(static_cast<size_t>(n_keys));       // [n_keys]
  for (int64_t g = 0; g < h_kv; ++g) {
    for (int64_t k = 0; k < n_keys; ++k) {
      const int64_t key = key_begin + k;
      const int64_t block = pages[(key / page_size) * a.block_table.strides[1]];
      cache.read(block, key % page_size, g, &keys[k * d_qk]);
    }
    for (int64_t i = 0; i < s_q; ++i) {
      // Causal: row i sees keys 0 .. s_k - s_q + i.
      const int64_t visible_end = a.causal ? s_k - s_q + i + 1 : s_k;
      const int64_t n = std::clamp<int64_t>(std::min(key_end, visible_end) - key_begin, 0, n_keys);
      for (int64_t hh = 0; hh < group; ++hh) {
        const int64_t h = g * group + hh;
        float* o = dst.out + (i * h_q + h) * d_v;  // [d_v]
        float& lse = dst.lse[i * h_q + h];
        std::fill(o, o + d_v, 0.0f);
        if (n == 0) {
          lse = -std::numeric_limits<float>::infinity();
          continue;
        }
        const int64_t q_base = seq * a.q.strides[0] + i * a.q.strides[1] + h * a.q.strides[2];
        for (int64_t d = 0; d < d_qk; ++d) {
          query[d] = load_element(a.q.data, q_base + d, a.q.dtype);
        }
        float max_score = -std::numeric_limits<float>::infinity();
        for (int64_t k = 0; k < n; ++k) {
          scores[k] = dot(query.data(), &keys[k * d_qk], d_qk) * scale;
          max_score = std::max(max_score, scores[k]);
        }
        float sum = 0.0f;
        for (int64_t k = 0; k < n; ++k) {
          const float p = std::exp(scores[k] - max_score);
          sum += p;
          const float* v = &keys[k * d_qk];
          for (int64_t d = 0; d < d_v; ++d) {
            o[d] += p * v[d];
          }
        }
        const float inv = 1.0f / sum;
        for (int64_t d = 0; d < d_v; ++d) {
          o[d] *= inv;
        }
        lse = max_score + std::log(sum);
      }
    }
  }
}

}  // namespace openmla::cpu
