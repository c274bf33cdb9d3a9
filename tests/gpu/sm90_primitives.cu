#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda/common/ptx.cuh"
#include "cuda/common/ptx/fence.cuh"
#include "cuda/common/ptx/mbarrier.cuh"
#include "cuda/common/ptx/tma.cuh"
#include "cuda/common/ptx/wgmma.cuh"
#include "cuda/sm90/arch.h"
#include "cuda/sm90/launch.h"
#include "cuda/sm90/layout.cuh"
#include "device.h"
#include "sm90_primitives.h"

namespace openmla::test {

namespace {

using sm90::kBlockM;
using sm90::kChunkBytes;
using sm90::kChunkCols;
using sm90::kRowBytes;

constexpr int kOutCols = 256;  // columns of a P V product (one warpgroup's half)
constexpr int kValueChunks = kOutCols / kChunkCols;

#if OPENMLA_SM90_DEVICE_CODE  // the helpers exist only in the sm_90a pass, as the kernels' bodies do
// Writes rows [0, 64) x columns [col0, col0 + 64) of `src` (row-major, `stride` elements per row)
// into the chunk at `chunk` in the swizzled layout, with ordinary stores.
__device__ void store_chunk(char* chunk, const uint16_t* src, int stride, int col0) {
  for (int x = static_cast<int>(threadIdx.x); x < kBlockM * kChunkCols; x += static_cast<int>(blockDim.x)) {
    const int row = x / kChunkCols;
    const int col = x % kChunkCols;
    *reinterpret_cast<uint16_t*>(chunk + sm90::swizzled_offset(row, col)) = src[row * stride + col0 + col];
  }
}

// Writes the warpgroup's m64nN accumulator d to `out` [64, N] row-major.
template <int N>
__device__ void store_accumulator(const float (&d)[N / 2], float* out) {
  const int t = static_cast<int>(threadIdx.x);
#pragma unroll
  for (int j = 0; j < N / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = sm90::fragment_row(t) + 8 * (e / 2);
      const int col = 8 * j + sm90::fragment_col(t) + e % 2;
      out[row * N + col] = d[4 * j + e];
    }
  }
}

// S = A B^T over one chunk pair: 4 k16 steps, 32 bytes apart within the swizzled rows.
template <typename T>
__device__ void chunk_scores(uint32_t sa, uint32_t sb, float (&s)[32]) {
  ptx::wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < kChunkCols / 16; ++ks) {
    ptx::wgmma_m64n64k16_ss<T>(s, sm90::k_major_desc(sa + ks * 32), sm90::k_major_desc(sb + ks * 32), ks > 0);
  }
  ptx::wgmma_commit();
  ptx::wgmma_wait<0>();
  ptx::pin_registers(s);
}

// A zeroed m64n256 accumulator, pinned so that the zeros precede the wgmma fence.
__device__ void zero_accumulator(float (&o)[kOutCols / 2]) {
#pragma unroll
  for (int i = 0; i < kOutCols / 2; ++i) {
    o[i] = 0.f;
  }
  ptx::pin_registers(o);
}

// Waits for the committed P V wgmma, then writes O and the shared-memory misalignment.
__device__ void finish_values(float (&o)[kOutCols / 2], float* o_out, const char* smem, uint32_t* misalignment) {
  ptx::wgmma_commit();
  ptx::wgmma_wait<0>();
  ptx::pin_registers(o);
  store_accumulator<kOutCols>(o, o_out);
  if (threadIdx.x == 0) {
    *misalignment = ptx::smem_addr(smem) % 1024;
  }
}
#endif

template <typename T>
__global__ void scores_kernel(const uint16_t* a, const uint16_t* b, float* s_out, uint32_t* misalignment) {
#if OPENMLA_SM90_DEVICE_CODE
  extern __shared__ __align__(1024) char smem[];
  store_chunk(smem, a, kChunkCols, 0);
  store_chunk(smem + kChunkBytes, b, kChunkCols, 0);
  ptx::fence_proxy_async_shared();
  __syncthreads();
  float s[32];
  chunk_scores<T>(ptx::smem_addr(smem), ptx::smem_addr(smem + kChunkBytes), s);
  store_accumulator<64>(s, s_out);
  if (threadIdx.x == 0) {
    *misalignment = ptx::smem_addr(smem) % 1024;
  }
#endif
}

template <typename T>
__global__ void scores_then_values_kernel(const uint16_t* q, const uint16_t* k, const uint16_t* v, float* o_out,
                                          uint32_t* misalignment) {
#if OPENMLA_SM90_DEVICE_CODE
  extern __shared__ __align__(1024) char smem[];  // q chunk, k chunk, 4 v chunks
  store_chunk(smem, q, kChunkCols, 0);
  store_chunk(smem + kChunkBytes, k, kChunkCols, 0);
  for (int c = 0; c < kValueChunks; ++c) {
    store_chunk(smem + (2 + c) * kChunkBytes, v, kOutCols, c * kChunkCols);
  }
  ptx::fence_proxy_async_shared();
  __syncthreads();
  float s[32];
  chunk_scores<T>(ptx::smem_addr(smem), ptx::smem_addr(smem + kChunkBytes), s);
  uint32_t a[4][4];  // A fragments of k steps 0..3, packed from the accumulator as the kernel does
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      a[kk][i] = sm90::pack2<T>(s[8 * kk + 2 * i], s[8 * kk + 2 * i + 1]);
    }
    ptx::pin_registers(a[kk]);
  }
  float o[kOutCols / 2];
  zero_accumulator(o);
  const uint32_t sv = ptx::smem_addr(smem + 2 * kChunkBytes);
  ptx::wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    ptx::wgmma_m64n256k16_rs<T, 1>(o, a[kk], sm90::mn_major_desc(sv + kk * 16 * kRowBytes));
  }
  finish_values(o, o_out, smem, misalignment);
#endif
}

template <typename T>
__global__ void values_from_shared_kernel(const uint16_t* p, const uint16_t* v, float* o_out, uint32_t* misalignment) {
#if OPENMLA_SM90_DEVICE_CODE
  extern __shared__ __align__(1024) char smem[];  // p chunk, 4 v chunks
  store_chunk(smem, p, kChunkCols, 0);
  for (int c = 0; c < kValueChunks; ++c) {
    store_chunk(smem + (1 + c) * kChunkBytes, v, kOutCols, c * kChunkCols);
  }
  ptx::fence_proxy_async_shared();
  __syncthreads();
  float o[kOutCols / 2];
  zero_accumulator(o);
  const uint32_t sp = ptx::smem_addr(smem);
  const uint32_t sv = ptx::smem_addr(smem + kChunkBytes);
  ptx::wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    ptx::wgmma_m64n256k16_ss<T, 1>(o, sm90::k_major_desc(sp + kk * 32), sm90::mn_major_desc(sv + kk * 16 * kRowBytes));
  }
  finish_values(o, o_out, smem, misalignment);
#endif
}

// Loads the box of `chunks` chunks at chunk coordinate `first_chunk` into chunks [first_chunk, +chunks)
// of a tile's shared memory, as the kernels do, and reads the whole tile back.
__global__ void tma_tile_kernel(const __grid_constant__ CUtensorMap map, int token, int head, int block,
                                int first_chunk, int chunks, uint16_t* out, uint32_t* misalignment) {
#if OPENMLA_SM90_DEVICE_CODE
  extern __shared__ __align__(1024) char smem[];  // one tile, then its mbarrier
  const uint32_t bar = ptx::smem_addr(smem + sm90::kTileBytes);
  for (int x = static_cast<int>(threadIdx.x); x < sm90::kTileBytes / 4; x += static_cast<int>(blockDim.x)) {
    reinterpret_cast<uint32_t*>(smem)[x] = 0xffffffffu;  // chunks outside the box stay all ones
  }
  ptx::fence_proxy_async_shared();
  if (threadIdx.x == 0) {
    ptx::mbarrier_init(bar, 1);
    ptx::fence_mbarrier_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    ptx::prefetch_tensormap(&map);
    ptx::mbarrier_arrive_expect_tx(bar, static_cast<uint32_t>(chunks * kChunkBytes));
    ptx::tma_load_5d(ptx::smem_addr(smem + first_chunk * kChunkBytes), &map, 0, token, first_chunk, head, block, bar,
                     ptx::create_policy_evict_first());
  }
  ptx::mbarrier_wait(bar, 0);
  for (int x = static_cast<int>(threadIdx.x); x < sm90::kChunks * kBlockM * kChunkCols;
       x += static_cast<int>(blockDim.x)) {
    const int chunk = x / (kBlockM * kChunkCols);
    const int row = x / kChunkCols % kBlockM;
    const int col = x % kChunkCols;
    out[x] = *reinterpret_cast<const uint16_t*>(smem + chunk * kChunkBytes + sm90::swizzled_offset(row, col));
  }
  if (threadIdx.x == 0) {
    *misalignment = ptx::smem_addr(smem) % 1024;
  }
#endif
}

DeviceBuffer to_device(const std::vector<uint16_t>& host) {
  const auto bytes = static_cast<int64_t>(host.size() * 2);
  DeviceBuffer buffer(bytes);
  buffer.upload(host.data(), bytes);
  return buffer;
}

// Runs `launch(out, misalignment)` (one CTA of one warpgroup with `smem` bytes of dynamic shared
// memory, opted in for `kernel`) and returns `out_count` floats of its output.
template <typename Launch>
WgmmaResult run_wgmma(const void* kernel, int smem, size_t out_count, Launch&& launch) {
  DeviceBuffer out(static_cast<int64_t>(out_count * 4));
  DeviceBuffer misalignment(4);
  SUPPORT_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  launch(static_cast<float*>(out.data()), static_cast<uint32_t*>(misalignment.data()));
  SUPPORT_CUDA_LAUNCHED();
  SUPPORT_CUDA(cudaDeviceSynchronize());
  WgmmaResult result{std::vector<float>(out_count), 0};
  out.download(result.d.data(), static_cast<int64_t>(out_count * 4));
  misalignment.download(&result.misalignment, 4);
  return result;
}

const uint16_t* bits(const DeviceBuffer& buffer) { return static_cast<const uint16_t*>(buffer.data()); }

}  // namespace

WgmmaResult run_scores_wgmma(const std::vector<uint16_t>& a, const std::vector<uint16_t>& b, DType dtype) {
  const DeviceBuffer da = to_device(a);
  const DeviceBuffer db = to_device(b);
  auto* kernel = dtype == DType::bf16 ? &scores_kernel<__nv_bfloat16> : &scores_kernel<__half>;
  constexpr int kSmem = 2 * kChunkBytes;
  return run_wgmma(reinterpret_cast<const void*>(kernel), kSmem, kBlockM * kChunkCols, [&](float* out, uint32_t* m) {
    kernel<<<1, sm90::kWarpgroupThreads, kSmem>>>(bits(da), bits(db), out, m);
  });
}

WgmmaResult run_scores_then_values(const std::vector<uint16_t>& q, const std::vector<uint16_t>& k,
                                   const std::vector<uint16_t>& v, DType dtype) {
  const DeviceBuffer dq = to_device(q);
  const DeviceBuffer dk = to_device(k);
  const DeviceBuffer dv = to_device(v);
  auto* kernel = dtype == DType::bf16 ? &scores_then_values_kernel<__nv_bfloat16> : &scores_then_values_kernel<__half>;
  constexpr int kSmem = (2 + kValueChunks) * kChunkBytes;
  return run_wgmma(reinterpret_cast<const void*>(kernel), kSmem, kBlockM * kOutCols, [&](float* out, uint32_t* m) {
    kernel<<<1, sm90::kWarpgroupThreads, kSmem>>>(bits(dq), bits(dk), bits(dv), out, m);
  });
}

WgmmaResult run_values_from_shared(const std::vector<uint16_t>& p, const std::vector<uint16_t>& v, DType dtype) {
  const DeviceBuffer dp = to_device(p);
  const DeviceBuffer dv = to_device(v);
  auto* kernel = dtype == DType::bf16 ? &values_from_shared_kernel<__nv_bfloat16> : &values_from_shared_kernel<__half>;
  constexpr int kSmem = (1 + kValueChunks) * kChunkBytes;
  return run_wgmma(reinterpret_cast<const void*>(kernel), kSmem, kBlockM * kOutCols, [&](float* out, uint32_t* m) {
    kernel<<<1, sm90::kWarpgroupThreads, kSmem>>>(bits(dp), bits(dv), out, m);
  });
}

TmaTile run_tma_tile(const TensorView& k_cache, int token, int head, int block, int first_chunk, int chunks) {
  const CUtensorMap map = sm90::make_cache_map(k_cache, chunks);
  const int elements = sm90::kChunks * kBlockM * kChunkCols;
  DeviceBuffer out(int64_t{elements} * 2);
  DeviceBuffer misalignment(4);
  const int smem = sm90::kTileBytes + 8;
  SUPPORT_CUDA(cudaFuncSetAttribute(&tma_tile_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  tma_tile_kernel<<<1, sm90::kWarpgroupThreads, smem>>>(map, token, head, block, first_chunk, chunks,
                                                        static_cast<uint16_t*>(out.data()),
                                                        static_cast<uint32_t*>(misalignment.data()));
  SUPPORT_CUDA_LAUNCHED();
  SUPPORT_CUDA(cudaDeviceSynchronize());
  TmaTile tile{std::vector<uint16_t>(static_cast<size_t>(elements)), 0};
  out.download(tile.elements.data(), static_cast<int64_t>(tile.elements.size() * 2));
  misalignment.download(&tile.misalignment, 4);
  return tile;
}

}  // namespace openmla::test
