#pragma once
// Host side of the Hopper kernel: whether it serves a call, the cache's tensor map, and the launch.

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/params.h"
#include "config.h"
#include "openmla/decode.h"
#include "openmla/plan.h"
#include "part_maps.h"

namespace openmla::sm90 {

// Why the Hopper kernel cannot run on `device` (a GPU of compute capability 9.0, and a build with
// sm_90a code), or nullptr when it can. Cached per device after the first call.
const char* device_unsupported(int device);

// Why the Hopper kernel cannot serve plans of `config` (device, then page_size a multiple of 64), or
// nullptr: what the default num_parts assumes.
const char* plan_unsupported(const PlanConfig& config);

// Why the Hopper kernel cannot serve the decode `args` (already checked by the API and the CUDA
// backend), or nullptr: the device, the decode's page size (a multiple of 64), then a cache that a
// tensor map cannot describe. Throws openmla::Error where it could serve it but OPENMLA_SM90_SCHEDULE
// (or on an FP8 cache OPENMLA_SM90_FP8_WIDE) names no schedule.
const char* decode_unsupported(const DecodeArgs& args);

// 64-row m-tiles of `rows` packed query rows per KV head.
int64_t m_tiles(int64_t rows);

// The consumer schedule Hopper decodes use in this process (config.h Schedule): the environment
// variable OPENMLA_SM90_SCHEDULE, read once, "asymmetric" (also when unset or empty: measured fastest
// on an H200), "seesaw" or "narrow", tuning switches for comparing schedules. Throws openmla::Error
// for any other value.
Schedule configured_schedule();

// The schedule of FP8 decodes of more than kFp8Rows rows per KV head in this process (config.h Fp8Wide):
// the environment variable OPENMLA_SM90_FP8_WIDE, read once, "converter" (also when unset or empty)
// or "transposed". Throws openmla::Error for any other value.
Fp8Wide configured_fp8_wide();

// The schedule of a decode with `rows` packed query rows per KV head (s_q * h_q / h_kv): the configured
// one, except that narrow takes at most kNarrowMaxRows rows and asymmetric serves larger ones.
Schedule schedule_for(int64_t rows);

// The tensor map of k_cache [num_blocks, page_size, h_kv, kDQK] as the kernels read it: rank 5,
// innermost first {64 elements, page_size tokens, 9 chunks of 64, h_kv, num_blocks}, box
// {64, 64, box_chunks, 1, 1} (64 tokens x box_chunks chunks from the chunk coordinate of each load),
// 128-byte swizzle. Throws openmla::Error when the driver refuses it.
CUtensorMap make_cache_map(const TensorView& k_cache, int box_chunks);

// The tensor map of an FP8 k_cache [num_blocks, page_size, h_kv, 576 or 656 bytes] as the narrow
// schedule reads it: rank 4, innermost first {the token's bytes as 4-byte words, page_size tokens,
// h_kv, num_blocks}, box {all of a token, 64, 1, 1}, no swizzle: 64 whole tokens, back to back.
CUtensorMap make_fp8_cache_map(const TensorView& k_cache);

// The tensor map of an FP8 k_cache [num_blocks, page_size, h_kv, 576 or 656 bytes] as the asymmetric
// schedule's converter reads its e4m3 values (sm90/fp8_convert.cuh RawTile): rank 5 over bytes {64,
// page_size tokens, pieces of 64 bytes, h_kv, num_blocks}, no swizzle, box {64, 64, box_chunks, 1, 1}:
// box_chunks pieces of [64 tokens][64 bytes]. Per tensor 9 pieces (a chunk's e4m3 values each), 656-byte
// tokens the 8 pieces of bytes 0-511; the kernel's map has boxes of 3 (a conversion step's chunks).
CUtensorMap make_fp8_chunk_map(const TensorView& k_cache, CacheFormat format, int box_chunks);

// The tensor maps of a 656-byte k_cache's scales (bytes 512-527) and RoPE values (528-655) as the
// converter reads them: rank 4 over bytes {16 or 128, page_size tokens, h_kv, num_blocks} from that
// byte of the first token, box {16 or 128, 64, 1, 1}: [64 tokens][16 or 128 bytes], no swizzle; and
// make_fp8_chunk_map's with boxes of the last step's 2 chunks.
Fp8PartMaps make_fp8_part_maps(const TensorView& k_cache);

// The tensor map of q [b, s_q, h_q, kDQK] (params.q, 16-bit) as the asymmetric kernel reads an m-tile's
// rows: rank 5, innermost first {64 elements, h_q heads, s_q, 9 chunks of 64 (128 bytes apart), b}, box
// {64, G, 64 / G, 9, 1} with G = min(group, 64), 128-byte swizzle, zeros past s_q: one box holds the
// m-tile's 64 packed rows as the 9 chunks of the shared-memory plan. Where q's layout or group does not
// allow it (group neither a multiple nor a divisor of 64, strides or address not multiples of 16 bytes,
// a map the driver refuses) returns false and the kernel copies q with cp.async.
bool make_q_map(const cuda::DecodeParams& params, DType dtype, CUtensorMap& map);

// Launches the decode kernel on `stream`: on a plain cache the one of schedule_for(params.rows), on an
// FP8 cache the narrow schedule's for at most kFp8Rows rows, for more the asymmetric schedule's with a
// converter warpgroup or the transposed schedule's (configured_fp8_wide).
void launch_decode(const cuda::DecodeParams& params, DType dtype, CacheFormat format, const TensorView& k_cache,
                   int64_t num_parts, int64_t h_kv, cudaStream_t stream);

// The launches of one element type (instantiations/*.cu, one file per element type so they compile in
// parallel): the asymmetric and narrow kernels with a map of whole tiles (box_chunks 9), the seesaw
// kernel with a map of single chunks (box_chunks 1); the narrow kernel on an FP8
// cache (kFormat) with make_fp8_cache_map's; the asymmetric kernel on an FP8 cache (kFormat) with
// make_fp8_chunk_map's (and on 656-byte tokens make_fp8_part_maps'); the transposed kernel (kFormat)
// with make_fp8_cache_map's.
template <typename T>
void launch_asymmetric(const cuda::DecodeParams& params, const CUtensorMap& tile_map, const CUtensorMap& q_map,
                       dim3 grid, cudaStream_t stream);
template <typename T, CacheFormat kFormat>
void launch_asymmetric_fp8(const cuda::DecodeParams& params, const CUtensorMap& raw_map, const Fp8PartMaps& part_maps,
                           dim3 grid, cudaStream_t stream);
template <typename T, CacheFormat kFormat>
void launch_transposed(const cuda::DecodeParams& params, const CUtensorMap& raw_map, dim3 grid, cudaStream_t stream);
template <typename T, int kRows, CacheFormat kFormat>
void launch_narrow(const cuda::DecodeParams& params, const CUtensorMap& tile_map, dim3 grid, cudaStream_t stream);
template <typename T>
void launch_seesaw(const cuda::DecodeParams& params, const CUtensorMap& chunk_map, dim3 grid, cudaStream_t stream);

}  // namespace openmla::sm90
