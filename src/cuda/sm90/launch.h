#pragma once
// Host side of the Hopper kernel: whether it serves a call, the cache's tensor map, and the launch.

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "openmla/decode.h"
#include "openmla/plan.h"
#include "../common/params.h"

namespace openmla::sm90 {

// Why the Hopper kernel cannot run on `device` (a GPU of compute capability 9.0, and a build with
// sm_90a code), or nullptr when it can. Cached per device after the first call.
const char* device_unsupported(int device);

// Why the Hopper kernel cannot serve plans of `config` (device, then page_size a multiple of 64), or
// nullptr: what the default num_parts assumes.
const char* plan_unsupported(const PlanConfig& config);

// Why the Hopper kernel cannot serve the decode `args` (already checked by the API and the CUDA
// backend), or nullptr: the device, the decode's page size (a multiple of 64), then a cache that a
// tensor map cannot describe.
const char* decode_unsupported(const DecodeArgs& args);

// 64-row m-tiles of `rows` packed query rows per KV head.
int64_t m_tiles(int64_t rows);

// The tensor map of k_cache [num_blocks, page_size, h_kv, kDQK] as the kernel reads it: rank 5,
// innermost first {64 elements, page_size tokens, 9 chunks of 64, h_kv, num_blocks}, box
// {64, 64, 9, 1, 1} (one 64-token tile, 73,728 bytes), 128-byte swizzle. Throws openmla::Error when the
// driver refuses it.
CUtensorMap make_cache_map(const TensorView& k_cache);

void launch_decode(const cuda::DecodeParams& params, DType dtype, const CUtensorMap& cache_map, int64_t num_parts,
                   int64_t h_kv, cudaStream_t stream);

// The launch of one instance (instantiations/*.cu, one file per element type so they compile in parallel).
template <typename T>
void launch_instance(const cuda::DecodeParams& params, const CUtensorMap& cache_map, dim3 grid, cudaStream_t stream);

}  // namespace openmla::sm90
