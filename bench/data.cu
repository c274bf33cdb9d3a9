#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math_constants.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "cuda_error.h"
#include "data.h"
#include "openmla/cache.h"
#include "random.h"

namespace openmla::bench {

namespace {

constexpr uint64_t kSeqlenSeed = 0x5eed0001;
constexpr uint64_t kPermutationSeed = 0x5eed0002;
constexpr uint64_t kQSeed = 0x5eed0100;
constexpr uint64_t kCacheSeed = 0x5eed0200;
constexpr float kScale = 0.1f;  // standard deviation of q and cache values
// Block-table entries past a sequence's last page may hold anything; a value far outside
// [0, num_blocks) makes a kernel that reads one fault or flag it instead of passing unnoticed.
constexpr int32_t kPoisonPage = 2147480000;
constexpr int kL2Multiple = 4;  // the rotation covers this many times the L2 size
constexpr int kMaxCopies = 64;
constexpr int kThreads = 256;
constexpr float kPerTensorScale = 1.0f / 448;  // the values lie in [-1, 1]

template <typename T>
__device__ T from_float(float x);
template <>
__device__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}
template <>
__device__ __half from_float<__half>(float x) {
  return __float2half(x);
}

__device__ float clamped_normal(uint64_t seed, uint64_t i) {
  return fminf(fmaxf(kScale * normal01(seed, i), -1.0f), 1.0f);
}

template <typename T>
__global__ void fill_normal_kernel(T* dst,  // [n]
                                   int64_t n, uint64_t seed) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    dst[i] = from_float<T>(clamped_normal(seed, static_cast<uint64_t>(i)));
  }
}

// Token t of page p holds data when t < page_tokens[p], NaN otherwise.
template <typename T>
__global__ void fill_cache_kernel(T* cache,                    // [num_blocks, page_size, h_kv, d_qk]
                                  const int32_t* page_tokens,  // [num_blocks]
                                  int64_t num_blocks, int64_t page_size, int64_t token_elems, uint64_t seed) {
  const int64_t n = num_blocks * page_size * token_elems;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t token = i / token_elems;
    const int64_t page = token / page_size;
    const bool used = token - page * page_size < page_tokens[page];
    cache[i] = from_float<T>(used ? clamped_normal(seed, static_cast<uint64_t>(i)) : CUDART_NAN_F);
  }
}

int grid_for(int64_t n) {
  int device = 0;
  int sms = 0;
  SUPPORT_CUDA(cudaGetDevice(&device));
  SUPPORT_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, int64_t{sms} * 16));
}

template <typename T>
void fill_cache_typed(void* cache, const int32_t* page_tokens, const Case& c, int64_t num_blocks, uint64_t seed,
                      cudaStream_t stream) {
  const int64_t token_elems = c.h_kv * c.d_qk;
  fill_cache_kernel<T><<<grid_for(num_blocks * c.page_size * token_elems), kThreads, 0, stream>>>(
      static_cast<T*>(cache), page_tokens, num_blocks, c.page_size, token_elems, seed);
  SUPPORT_CUDA_LAUNCHED();
}

// Fisher-Yates shuffle of 0 .. n-1 driven by the counter-based generator.
std::vector<int32_t> permutation(int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j =
        static_cast<int64_t>(mix64(kPermutationSeed ^ mix64(static_cast<uint64_t>(i))) % static_cast<uint64_t>(i + 1));
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(j)]);
  }
  return p;
}

int64_t elem_bytes(const Case& c) { return dtype_size(c.dtype); }

int64_t pages_for(int64_t len, int64_t page_size) { return (len + page_size - 1) / page_size; }

template <typename T>
void upload(const support::DeviceBuffer& dst, const std::vector<T>& src, cudaStream_t stream) {
  SUPPORT_CUDA(cudaMemcpyAsync(dst.data(), src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
}

// Writes the token rows of `staging` ([num_blocks, page_size, h_kv, d_qk] in c.dtype) into FP8 cache copy
// `copy` with openmla::write_cache: the (page, slot, head) rows as the slots of a one-head cache.
void quantize(const Problem& p, int copy, const support::DeviceBuffer& staging, cudaStream_t stream) {
  const Case& c = p.shape;
  const int64_t rows = p.num_blocks * c.page_size * c.h_kv;
  std::vector<int64_t> slots(static_cast<size_t>(rows));
  std::iota(slots.begin(), slots.end(), int64_t{0});
  const support::DeviceBuffer slot_mapping(rows * 8);
  SUPPORT_CUDA(cudaMemcpyAsync(slot_mapping.data(), slots.data(), static_cast<size_t>(rows * 8), cudaMemcpyHostToDevice,
                               stream));
  const int64_t row_bytes = cache_token_bytes(c);
  TensorView kv_c = make_view(staging.data(), c.dtype, {rows, c.d_v}, p.device);
  kv_c.strides[0] = c.d_qk;
  TensorView k_pe =
      make_view(staging.as<char>() + c.d_v * dtype_size(c.dtype), c.dtype, {rows, c.d_qk - c.d_v}, p.device);
  k_pe.strides[0] = c.d_qk;
  const TensorView cache = p.k_cache_view(copy);
  write_cache(WriteCacheArgs{
      .kv_c = kv_c,
      .k_pe = k_pe,
      .slot_mapping = make_view(slot_mapping.data(), DType::int64, {rows}, p.device),
      .k_cache = make_view(cache.data, cache.dtype, {p.num_blocks, c.page_size * c.h_kv, 1, row_bytes}, p.device),
      .cache_format = c.format,
      .k_scale = c.format == CacheFormat::fp8_per_tensor ? make_view(p.k_scale.data(), DType::fp32, {1}, p.device)
                                                         : TensorView{},
      .stream = stream,
  });
  SUPPORT_CUDA(cudaStreamSynchronize(stream));  // before slot_mapping and the staging rows are reused or freed
}

}  // namespace

void fill_normal(void* dst, DType dtype, int64_t n, uint64_t seed, cudaStream_t stream) {
  if (dtype == DType::bf16) {
    fill_normal_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(dst), n, seed);
  } else if (dtype == DType::fp16) {
    fill_normal_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<__half*>(dst), n, seed);
  } else {
    throw std::invalid_argument(std::string("fill_normal: dtype bf16 or fp16 expected, given ") + dtype_name(dtype));
  }
  SUPPORT_CUDA_LAUNCHED();
}

TensorView Problem::cache_seqlens_view() const {
  return make_view(cache_seqlens.data(), DType::int32, {shape.b}, device);
}

TensorView Problem::k_cache_view(int copy) const {
  const Case& c = shape;
  const int64_t row = cache_token_bytes(c);
  char* data = k_cache.as<char>() + copy * num_blocks * c.page_size * c.h_kv * row;
  switch (c.format) {
    case CacheFormat::plain:
      return make_view(data, c.dtype, {num_blocks, c.page_size, c.h_kv, c.d_qk}, device);
    case CacheFormat::fp8_per_tensor:
      return make_view(data, DType::fp8_e4m3, {num_blocks, c.page_size, c.h_kv, c.d_qk}, device);
    case CacheFormat::fp8_656:
      return make_view(data, DType::uint8, {num_blocks, c.page_size, c.h_kv, row}, device);
  }
  throw std::invalid_argument("a cache format of openmla expected");
}

DecodeArgs Problem::args(int copy, const Plan& plan, const Buffer& workspace, cudaStream_t stream) const {
  const Case& c = shape;
  const int64_t e = elem_bytes(c);
  const int64_t q_elems = c.b * c.s_q * c.h_q * c.d_qk;
  const int64_t out_elems = c.b * c.s_q * c.h_q * c.d_v;
  const int64_t lse_elems = c.b * c.h_q * c.s_q;
  DecodeArgs a;
  a.q = make_view(q.as<char>() + copy * q_elems * e, c.dtype, {c.b, c.s_q, c.h_q, c.d_qk}, device);
  a.k_cache = k_cache_view(copy);
  a.cache_format = c.format;
  if (c.format == CacheFormat::fp8_per_tensor) {
    a.k_scale = make_view(k_scale.data(), DType::fp32, {1}, device);
  }
  a.kernel = c.kernel;
  a.block_table = make_view(block_table.data(), DType::int32, {c.b, max_blocks_per_seq}, device);
  a.cache_seqlens = cache_seqlens_view();
  a.d_v = c.d_v;
  a.causal = c.causal;
  a.plan = &plan;
  a.workspace = workspace;
  a.out = make_view(out.as<char>() + copy * out_elems * e, c.dtype, {c.b, c.s_q, c.h_q, c.d_v}, device);
  a.lse = make_view(lse.as<float>() + copy * lse_elems, DType::fp32, {c.b, c.h_q, c.s_q}, device);
  a.stream = stream;
  return a;
}

PlanConfig plan_config(const Case& c, Device device) {
  return resolve_plan_config(PlanConfig{.batch = c.b,
                                        .s_q = c.s_q,
                                        .h_q = c.h_q,
                                        .h_kv = c.h_kv,
                                        .page_size = c.page_size,
                                        .device = device,
                                        .num_parts = c.num_parts,
                                        .kernel = c.kernel,
                                        .cache_format = c.format});
}

DecodeBuffers allocate_decode_buffers(const PlanConfig& config, int64_t d_v) {
  DecodeBuffers d;
  d.plan_memory = support::DeviceBuffer(plan_buffer_size(config));
  d.workspace_memory = support::DeviceBuffer(workspace_size(config, d_v));
  d.plan = Buffer{d.plan_memory.data(), d.plan_memory.bytes(), config.device};
  d.workspace = Buffer{d.workspace_memory.data(), d.workspace_memory.bytes(), config.device};
  return d;
}

int copies_to_defeat_l2(const Case& c, int64_t l2_bytes) {
  int64_t pages = 0;
  for (int32_t len : draw_seqlens(c)) {
    pages += pages_for(len, c.page_size);
  }
  const int64_t e = elem_bytes(c);
  const int64_t set = c.b * c.s_q * c.h_q * (c.d_qk + c.d_v) * e + pages * c.page_size * c.h_kv * cache_token_bytes(c);
  const int64_t want = kL2Multiple * l2_bytes;
  return static_cast<int>(std::clamp<int64_t>((want + set - 1) / set, 1, kMaxCopies));
}

std::vector<int32_t> draw_seqlens(const Case& c) {
  std::vector<int32_t> lens(static_cast<size_t>(c.b));
  for (int64_t i = 0; i < c.b; ++i) {
    double len = static_cast<double>(c.s_k);
    if (c.varlen) {
      len = std::max<double>(std::round(len + 0.5 * len * normal01(kSeqlenSeed, static_cast<uint64_t>(i))),
                             static_cast<double>(c.s_q));
    }
    if (len > std::numeric_limits<int32_t>::max()) {
      throw std::invalid_argument("s_k: a length that fits in int32 expected, given " + std::to_string(len));
    }
    lens[static_cast<size_t>(i)] = static_cast<int32_t>(len);
  }
  return lens;
}

Problem make_problem(const Case& c, int copies, cudaStream_t stream) {
  Problem p;
  p.shape = c;
  p.copies = copies;
  int ordinal = 0;
  SUPPORT_CUDA(cudaGetDevice(&ordinal));
  p.device = Device{DeviceType::cuda, ordinal};
  p.seqlens = draw_seqlens(c);

  std::vector<int64_t> first_page(static_cast<size_t>(c.b));  // [b] offset into the permutation
  int64_t pages = 0;
  int64_t max_pages = 1;
  int64_t tokens = 0;
  for (int64_t i = 0; i < c.b; ++i) {
    const int64_t len = p.seqlens[static_cast<size_t>(i)];
    const int64_t n = pages_for(len, c.page_size);
    first_page[static_cast<size_t>(i)] = pages;
    pages += n;
    max_pages = std::max(max_pages, n);
    tokens += len;
  }
  p.mean_s_k = static_cast<double>(tokens) / static_cast<double>(c.b);
  p.num_blocks = std::max<int64_t>(pages, 1);
  p.max_blocks_per_seq = max_pages;

  const std::vector<int32_t> perm = permutation(p.num_blocks);
  std::vector<int32_t> table(static_cast<size_t>(c.b * max_pages), kPoisonPage);  // [b, max_pages]
  std::vector<int32_t> page_tokens(static_cast<size_t>(p.num_blocks), 0);         // [num_blocks]
  for (int64_t i = 0; i < c.b; ++i) {
    const int64_t len = p.seqlens[static_cast<size_t>(i)];
    for (int64_t j = 0; j * c.page_size < len; ++j) {
      const int32_t page = perm[static_cast<size_t>(first_page[static_cast<size_t>(i)] + j)];
      table[static_cast<size_t>(i * max_pages + j)] = page;
      page_tokens[static_cast<size_t>(page)] = static_cast<int32_t>(std::min(c.page_size, len - j * c.page_size));
    }
  }

  const int64_t e = elem_bytes(c);
  const int64_t q_elems = c.b * c.s_q * c.h_q * c.d_qk;
  const int64_t cache_elems = p.num_blocks * c.page_size * c.h_kv * c.d_qk;
  p.q = support::DeviceBuffer(copies * q_elems * e);
  p.k_cache = support::DeviceBuffer(copies * p.num_blocks * c.page_size * c.h_kv * cache_token_bytes(c));
  p.k_scale = support::DeviceBuffer(4);
  p.k_scale.upload(&kPerTensorScale, 4);
  p.out = support::DeviceBuffer(copies * c.b * c.s_q * c.h_q * c.d_v * e);
  p.lse = support::DeviceBuffer(copies * c.b * c.h_q * c.s_q * 4);
  p.block_table = support::DeviceBuffer(static_cast<int64_t>(table.size()) * 4);
  p.cache_seqlens = support::DeviceBuffer(c.b * 4);
  support::DeviceBuffer d_page_tokens(p.num_blocks * 4);
  upload(p.block_table, table, stream);
  upload(p.cache_seqlens, p.seqlens, stream);
  upload(d_page_tokens, page_tokens, stream);

  // An FP8 cache is quantized from a bf16/fp16 one made in `staging`, one copy at a time.
  const bool fp8 = c.format != CacheFormat::plain;
  const support::DeviceBuffer staging(fp8 ? cache_elems * e : 0);
  for (int k = 0; k < copies; ++k) {
    fill_normal(p.q.as<char>() + k * q_elems * e, c.dtype, q_elems, kQSeed + k, stream);
    void* cache = fp8 ? staging.data() : p.k_cache_view(k).data;
    if (c.dtype == DType::bf16) {
      fill_cache_typed<__nv_bfloat16>(cache, d_page_tokens.as<int32_t>(), c, p.num_blocks, kCacheSeed + k, stream);
    } else {
      fill_cache_typed<__half>(cache, d_page_tokens.as<int32_t>(), c, p.num_blocks, kCacheSeed + k, stream);
    }
    if (fp8) {
      quantize(p, k, staging, stream);
    }
  }
  SUPPORT_CUDA(cudaStreamSynchronize(stream));
  return p;
}

}  // namespace openmla::bench
