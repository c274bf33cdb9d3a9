#include <cuda_fp16.h>

#include <cmath>

#include "reference_gpu.h"

namespace openmla::test {

namespace {

constexpr int kThreads = 256;

struct RefParams {
  const uint16_t* q;           // [b, s_q, h_q, d_qk]
  const uint16_t* k_cache;     // [num_blocks, page_size, h_kv, d_qk]
  const int32_t* block_table;  // [b, max_blocks]
  const int32_t* seqlens;      // [b]
  double* scores;              // [b * s_q * h_q, max_s_k] scratch
  double* out;                 // [b, s_q, h_q, d_v]
  double* lse;                 // [b, h_q, s_q]
  int64_t s_q, h_q, h_kv, d_qk, d_v, page_size, max_blocks, max_s_k;
  double scale;
  bool causal;
  bool bf16;
};

__device__ double to_double(uint16_t bits, bool bf16) {
  return bf16 ? static_cast<double>(__uint_as_float(static_cast<uint32_t>(bits) << 16))
              : static_cast<double>(__half2float(__ushort_as_half(bits)));
}

__device__ double block_reduce(double v, bool take_max) {
  __shared__ double partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) {
    const double o = __shfl_xor_sync(0xffffffffu, v, offset);
    v = take_max ? fmax(v, o) : v + o;
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) {
    partial[threadIdx.x / 32] = v;
  }
  __syncthreads();
  double r = partial[0];
  for (int w = 1; w < kThreads / 32; ++w) {
    r = take_max ? fmax(r, partial[w]) : r + partial[w];
  }
  return r;
}

// One CTA per query row (n, i, h).
__global__ void reference_kernel(RefParams p) {
  const int64_t row = blockIdx.x;
  const int64_t h = row % p.h_q;
  const int64_t i = (row / p.h_q) % p.s_q;
  const int64_t n = row / (p.h_q * p.s_q);
  const int64_t g = h / (p.h_q / p.h_kv);
  const int64_t s_k = p.seqlens[n];
  int64_t visible = p.causal ? s_k - p.s_q + i + 1 : s_k;
  visible = visible < 0 ? 0 : visible;
  double* scores = p.scores + row * p.max_s_k;  // [max_s_k]
  const uint16_t* q = p.q + row * p.d_qk;       // [d_qk]
  auto key_row = [&](int64_t key) {
    const int64_t block = p.block_table[n * p.max_blocks + key / p.page_size];
    return p.k_cache + ((block * p.page_size + key % p.page_size) * p.h_kv + g) * p.d_qk;  // [d_qk]
  };
  double max_score = -INFINITY;
  for (int64_t key = threadIdx.x; key < visible; key += kThreads) {
    const uint16_t* k = key_row(key);
    double dot = 0.0;
    for (int64_t d = 0; d < p.d_qk; ++d) {
      dot += to_double(q[d], p.bf16) * to_double(k[d], p.bf16);
    }
    scores[key] = dot * p.scale;
    max_score = fmax(max_score, scores[key]);
  }
  max_score = block_reduce(max_score, true);
  double sum = 0.0;
  for (int64_t key = threadIdx.x; key < visible; key += kThreads) {
    scores[key] = exp(scores[key] - max_score);
    sum += scores[key];
  }
  sum = block_reduce(sum, false);
  __syncthreads();
  for (int64_t d = threadIdx.x; d < p.d_v; d += kThreads) {
    double acc = 0.0;
    for (int64_t key = 0; key < visible; ++key) {
      acc += scores[key] * to_double(key_row(key)[d], p.bf16);
    }
    p.out[row * p.d_v + d] = visible == 0 ? 0.0 : acc / sum;
  }
  if (threadIdx.x == 0) {
    p.lse[(n * p.h_q + h) * p.s_q + i] = visible == 0 ? INFINITY : max_score + log(sum);
  }
}

}  // namespace

Reference gpu_reference(const Problem& problem, const DeviceProblem& device) {
  const ProblemSpec& s = problem.spec;
  int64_t max_s_k = 1;
  for (int32_t len : problem.seqlens) {
    max_s_k = len > max_s_k ? len : max_s_k;
  }
  const int64_t rows = s.b * s.s_q * s.h_q;
  DeviceBuffer scores(static_cast<size_t>(rows * max_s_k) * sizeof(double));
  DeviceBuffer out(static_cast<size_t>(rows * s.d_v) * sizeof(double));
  DeviceBuffer lse(static_cast<size_t>(rows) * sizeof(double));
  const RefParams params{.q = static_cast<const uint16_t*>(device.q.data()),
                         .k_cache = static_cast<const uint16_t*>(device.k_cache.data()),
                         .block_table = static_cast<const int32_t*>(device.block_table.data()),
                         .seqlens = static_cast<const int32_t*>(device.seqlens.data()),
                         .scores = static_cast<double*>(scores.data()),
                         .out = static_cast<double*>(out.data()),
                         .lse = static_cast<double*>(lse.data()),
                         .s_q = s.s_q,
                         .h_q = s.h_q,
                         .h_kv = s.h_kv,
                         .d_qk = s.d_qk,
                         .d_v = s.d_v,
                         .page_size = s.page_size,
                         .max_blocks = problem.max_blocks_per_seq,
                         .max_s_k = max_s_k,
                         .scale = static_cast<double>(problem.softmax_scale()),
                         .causal = s.causal,
                         .bf16 = s.dtype == DType::bf16};
  reference_kernel<<<static_cast<unsigned>(rows), kThreads>>>(params);
  SUPPORT_CUDA_LAUNCHED();
  SUPPORT_CUDA(cudaDeviceSynchronize());
  Reference ref;
  ref.out.resize(static_cast<size_t>(rows * s.d_v));
  ref.lse.resize(static_cast<size_t>(rows));
  out.download(ref.out.data(), out.bytes());
  lse.download(ref.lse.data(), lse.bytes());
  return ref;
}

}  // namespace openmla::test
