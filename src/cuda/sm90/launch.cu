#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "../common/cuda_check.h"
#include "launch.h"
#include "openmla/error.h"
#include "traits.h"

namespace openmla::sm90 {

namespace {

// Largest byte stride a tensor map takes (cuTensorMapEncodeTiled: strides below 2^40, multiples of 16).
constexpr int64_t kMaxStrideBytes = int64_t{1} << 40;
// Largest size of one tensor-map dimension.
constexpr int64_t kMaxDim = int64_t{1} << 32;

const char* check_device(int device) {
#if defined(OPENMLA_WITH_SM90A)
  int major = 0;
  int minor = 0;
  int max_smem = 0;
  OPENMLA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  OPENMLA_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  OPENMLA_CUDA_CHECK(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (major != 9 || minor != 0) {
    return "a GPU of compute capability 9.0";
  }
  using Plans = Traits<__nv_bfloat16>;
  constexpr size_t kPlanBytes = std::max(sizeof(Plans::AsymmetricShared), sizeof(Plans::SeesawShared));
  if (max_smem < static_cast<int>(kPlanBytes)) {
    return "a GPU with 227 KB of shared memory per block";
  }
  return nullptr;
#else
  (void)device;
  return "a build with sm_90a code (CMAKE_CUDA_ARCHITECTURES including 90a)";
#endif
}

// The byte stride of k_cache dimension `dim` for the tensor map. A dimension of size 1 is never
// stepped over, so any valid stride serves; `natural` is the one a contiguous cache would have.
int64_t stride_bytes(const TensorView& k_cache, int dim, int64_t natural) {
  return k_cache.sizes[dim] == 1 ? natural : k_cache.strides[dim] * dtype_size(k_cache.dtype);
}

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const auto encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    OPENMLA_CUDA_CHECK(
        cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    if (found != cudaDriverEntryPointSuccess || fn == nullptr) {
      throw Error(
          "openmla: CUDA driver: expected one with cuTensorMapEncodeTiled (CUDA 12.0 or later), given one without");
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

// An environment variable that picks one of a few options: the option its value names (an empty or
// unset variable names the first), or nothing for a value that names none.
template <typename Option>
struct Setting {
  std::optional<Option> option;
  std::string value;
};

template <typename Option, size_t N>
Setting<Option> read_setting(const char* variable, const std::array<std::pair<const char*, Option>, N>& options) {
  const char* env = std::getenv(variable);
  const std::string value = env == nullptr ? "" : env;
  if (value.empty()) {
    return {options[0].second, value};
  }
  for (const auto& [name, option] : options) {
    if (value == name) {
      return {option, value};
    }
  }
  return {std::nullopt, value};
}

// The setting's option, or openmla::Error naming the variable, the values it takes and the one given.
template <typename Option>
Option chosen(const Setting<Option>& setting, const char* variable, const char* expected) {
  if (!setting.option) {
    throw Error(std::string("openmla: ") + variable + ": expected " + expected + ", given '" + setting.value + "'");
  }
  return *setting.option;
}

}  // namespace

// Each variable is read once per process.
Fp8Wide configured_fp8_wide() {
  static const Setting<Fp8Wide> setting = read_setting<Fp8Wide, 2>(
      "OPENMLA_SM90_FP8_WIDE", {{{"converter", Fp8Wide::converter}, {"transposed", Fp8Wide::transposed}}});
  return chosen(setting, "OPENMLA_SM90_FP8_WIDE", "converter or transposed");
}

Schedule configured_schedule() {
  static const Setting<Schedule> setting = read_setting<Schedule, 3>(
      "OPENMLA_SM90_SCHEDULE",
      {{{"asymmetric", Schedule::asymmetric}, {"seesaw", Schedule::seesaw}, {"narrow", Schedule::narrow}}});
  return chosen(setting, "OPENMLA_SM90_SCHEDULE", "asymmetric, seesaw or narrow");
}

Schedule schedule_for(int64_t rows) {
  const Schedule schedule = configured_schedule();
  return schedule == Schedule::narrow && rows > kNarrowMaxRows ? Schedule::asymmetric : schedule;
}

const char* device_unsupported(int device) {
  constexpr int kMaxDevices = 64;
  static std::array<std::once_flag, kMaxDevices> once;
  static std::array<const char*, kMaxDevices> reasons{};
  if (device < 0 || device >= kMaxDevices) {
    return check_device(device);
  }
  std::call_once(once[device], [device] { reasons[device] = check_device(device); });
  return reasons[device];
}

const char* plan_unsupported(const PlanConfig& config) {
  if (const char* reason = device_unsupported(config.device.index)) {
    return reason;
  }
  if (config.page_size % kBlockN != 0) {
    return "page_size a multiple of 64";
  }
  return nullptr;
}

const char* decode_unsupported(const DecodeArgs& args) {
  const TensorView& k = args.k_cache;
  if (const char* reason = device_unsupported(args.q.device.index)) {
    return reason;
  }
  if (k.sizes[1] % kBlockN != 0) {  // the decode's page size: a plan serves any (openmla/plan.h)
    return "page_size a multiple of 64";
  }
  const bool fp8 = args.cache_format != CacheFormat::plain;
  if (k.sizes[0] < 1 || k.sizes[0] > kMaxDim) {
    return "a k_cache of 1 to 2^32 blocks (TMA tensor-map dimension)";
  }
  const int64_t row = fp8 ? k.sizes[3] : cuda::kDQK * 2;  // bytes of one token and KV head
  const int64_t token = stride_bytes(k, 1, k.sizes[2] * row);
  const int64_t strides[3] = {stride_bytes(k, 0, k.sizes[1] * token), token, stride_bytes(k, 2, row)};
  for (int64_t bytes : strides) {
    if (bytes <= 0 || bytes >= kMaxStrideBytes || (fp8 && bytes % 16 != 0)) {
      return fp8 ? "k_cache strides a TMA tensor map can describe (positive multiples of 16 bytes, below 2^40)"
                 : "k_cache strides a TMA tensor map can describe (positive, below 2^40 bytes)";
    }
  }
  configured_schedule();
  if (fp8) {
    configured_fp8_wide();
  }
  return nullptr;
}

int64_t m_tiles(int64_t rows) { return (rows + kBlockM - 1) / kBlockM; }

namespace {

// cuTensorMapEncodeTiled of k_cache with no interleave, 256-byte L2 promotion and no OOB fill; throws
// openmla::Error when the driver refuses the layout.
CUtensorMap encode_cache_map(const TensorView& k_cache, CUtensorMapDataType type, cuuint32_t rank,
                             const cuuint64_t* dims, const cuuint64_t* strides, const cuuint32_t* box,
                             CUtensorMapSwizzle swizzle) {
  const cuuint32_t element_strides[5] = {1, 1, 1, 1, 1};
  CUtensorMap map{};
  const CUresult result =
      encode_tiled()(&map, type, rank, k_cache.data, dims, strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                     swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (result != CUDA_SUCCESS) {
    throw Error(
        "openmla: k_cache: expected a layout a TMA tensor map can describe, given one that "
        "cuTensorMapEncodeTiled refuses (CUresult " +
        std::to_string(static_cast<int>(result)) + ")");
  }
  return map;
}

}  // namespace

CUtensorMap make_cache_map(const TensorView& k_cache, int box_chunks) {
  const int64_t element = dtype_size(k_cache.dtype);
  const int64_t token = stride_bytes(k_cache, 1, k_cache.sizes[2] * cuda::kDQK * element);
  // Innermost first: the 64 elements of a chunk, the page's tokens, the 9 chunks of a row (128 bytes
  // apart: the chunk dimension overlaps the token dimension, which TMA allows), KV heads, blocks.
  const cuuint64_t dims[5] = {kChunkCols, static_cast<cuuint64_t>(k_cache.sizes[1]), kChunks,
                              static_cast<cuuint64_t>(k_cache.sizes[2]), static_cast<cuuint64_t>(k_cache.sizes[0])};
  const cuuint64_t strides[4] = {static_cast<cuuint64_t>(token), static_cast<cuuint64_t>(kChunkCols * element),
                                 static_cast<cuuint64_t>(stride_bytes(k_cache, 2, cuda::kDQK * element)),
                                 static_cast<cuuint64_t>(stride_bytes(k_cache, 0, k_cache.sizes[1] * token))};
  const cuuint32_t box[5] = {kChunkCols, kBlockN, static_cast<cuuint32_t>(box_chunks), 1, 1};
  return encode_cache_map(
      k_cache, k_cache.dtype == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 5,
      dims, strides, box, CU_TENSOR_MAP_SWIZZLE_128B);
}

CUtensorMap make_fp8_cache_map(const TensorView& k_cache) {
  const int64_t row = k_cache.sizes[3];  // bytes of one token and KV head: 576 or 656
  const int64_t token = stride_bytes(k_cache, 1, k_cache.sizes[2] * row);
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(row / 4), static_cast<cuuint64_t>(k_cache.sizes[1]),
                              static_cast<cuuint64_t>(k_cache.sizes[2]), static_cast<cuuint64_t>(k_cache.sizes[0])};
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(token), static_cast<cuuint64_t>(stride_bytes(k_cache, 2, row)),
                                 static_cast<cuuint64_t>(stride_bytes(k_cache, 0, k_cache.sizes[1] * token))};
  const cuuint32_t box[4] = {static_cast<cuuint32_t>(row / 4), kBlockN, 1, 1};
  return encode_cache_map(k_cache, CU_TENSOR_MAP_DATA_TYPE_UINT32, 4, dims, strides, box, CU_TENSOR_MAP_SWIZZLE_NONE);
}

CUtensorMap make_fp8_chunk_map(const TensorView& k_cache, CacheFormat format, int box_chunks) {
  const int64_t row = k_cache.sizes[3];  // bytes of one token and KV head: 576 or 656
  const int64_t token = stride_bytes(k_cache, 1, k_cache.sizes[2] * row);
  const bool per_tensor = format == CacheFormat::fp8_per_tensor;
  constexpr cuuint32_t piece = kChunkCols;                                  // bytes: a chunk's e4m3 values
  const cuuint32_t pieces = per_tensor ? kChunks : cuda::kDV / kChunkCols;  // 9, or 8 before the scales
  const cuuint64_t dims[5] = {piece, static_cast<cuuint64_t>(k_cache.sizes[1]), pieces,
                              static_cast<cuuint64_t>(k_cache.sizes[2]), static_cast<cuuint64_t>(k_cache.sizes[0])};
  const cuuint64_t strides[4] = {static_cast<cuuint64_t>(token), piece,
                                 static_cast<cuuint64_t>(stride_bytes(k_cache, 2, row)),
                                 static_cast<cuuint64_t>(stride_bytes(k_cache, 0, k_cache.sizes[1] * token))};
  const cuuint32_t box[5] = {piece, kBlockN, static_cast<cuuint32_t>(box_chunks), 1, 1};
  return encode_cache_map(k_cache, CU_TENSOR_MAP_DATA_TYPE_UINT8, 5, dims, strides, box, CU_TENSOR_MAP_SWIZZLE_NONE);
}

Fp8PartMaps make_fp8_part_maps(const TensorView& k_cache) {
  const int64_t row = k_cache.sizes[3];  // 656
  const int64_t token = stride_bytes(k_cache, 1, k_cache.sizes[2] * row);
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(token), static_cast<cuuint64_t>(stride_bytes(k_cache, 2, row)),
                                 static_cast<cuuint64_t>(stride_bytes(k_cache, 0, k_cache.sizes[1] * token))};
  constexpr int64_t kScaleBytes = 16;  // 4 fp32 scales after the 512 e4m3 values
  Fp8PartMaps parts{};
  parts.maps[2] = make_fp8_chunk_map(k_cache, CacheFormat::fp8_656, kLastValueChunks656);
  const int64_t offsets[2] = {cuda::kDV, cuda::kDV + kScaleBytes};  // the scales, the RoPE values
  const cuuint32_t widths[2] = {kScaleBytes, static_cast<cuuint32_t>(row - cuda::kDV - kScaleBytes)};
  for (int i = 0; i < 2; ++i) {
    TensorView part = k_cache;
    part.data = static_cast<char*>(k_cache.data) + offsets[i];
    const cuuint64_t dims[4] = {widths[i], static_cast<cuuint64_t>(k_cache.sizes[1]),
                                static_cast<cuuint64_t>(k_cache.sizes[2]), static_cast<cuuint64_t>(k_cache.sizes[0])};
    const cuuint32_t box[4] = {widths[i], kBlockN, 1, 1};
    parts.maps[i] =
        encode_cache_map(part, CU_TENSOR_MAP_DATA_TYPE_UINT8, 4, dims, strides, box, CU_TENSOR_MAP_SWIZZLE_NONE);
  }
  return parts;
}

bool make_q_map(const cuda::DecodeParams& params, DType dtype, CUtensorMap& map) {
  constexpr int64_t kRowBytes = cuda::kDQK * 2;
  const int64_t group = params.group;
  if ((group % kBlockM != 0 && kBlockM % group != 0) || reinterpret_cast<uintptr_t>(params.q) % 16 != 0) {
    return false;
  }
  // A dimension of one entry is never stepped: its stride is any the driver takes.
  const int64_t sizes[3] = {params.h_q, params.s_q, params.batch};
  const int64_t natural[3] = {kRowBytes, params.h_q * kRowBytes, params.s_q * params.h_q * kRowBytes};
  const int64_t given[3] = {params.q_stride_h * 2, params.q_stride_s * 2, params.q_stride_b * 2};
  int64_t bytes[3];
  for (int d = 0; d < 3; ++d) {
    bytes[d] = sizes[d] == 1 ? natural[d] : given[d];
    if (bytes[d] <= 0 || bytes[d] % 16 != 0 || bytes[d] >= kMaxStrideBytes) {
      return false;
    }
  }
  const cuuint64_t dims[5] = {kChunkCols, static_cast<cuuint64_t>(params.h_q), static_cast<cuuint64_t>(params.s_q),
                              kChunks, static_cast<cuuint64_t>(params.batch)};
  const cuuint64_t strides[4] = {static_cast<cuuint64_t>(bytes[0]), static_cast<cuuint64_t>(bytes[1]), kChunkCols * 2,
                                 static_cast<cuuint64_t>(bytes[2])};
  const cuuint32_t heads = static_cast<cuuint32_t>(group < kBlockM ? group : kBlockM);
  const cuuint32_t box[5] = {kChunkCols, heads, kBlockM / heads, kChunks, 1};
  const cuuint32_t element_strides[5] = {1, 1, 1, 1, 1};
  const CUresult result =
      encode_tiled()(&map, dtype == DType::bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 5,
                     const_cast<void*>(params.q), dims, strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                     CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return result == CUDA_SUCCESS;
}

namespace {

// At most kFp8Rows rows: the narrow schedule; more: configured_fp8_wide's, the asymmetric schedule with
// its converter or the transposed schedule.
template <typename T>
void launch_fp8(const cuda::DecodeParams& params, CacheFormat format, const TensorView& k_cache, dim3 grid,
                cudaStream_t stream) {
  const bool wide = params.rows > kFp8Rows;
  const bool per_tensor = format == CacheFormat::fp8_per_tensor;
  if (wide && configured_fp8_wide() == Fp8Wide::transposed) {
    const CUtensorMap map = make_fp8_cache_map(k_cache);
    per_tensor ? launch_transposed<T, CacheFormat::fp8_per_tensor>(params, map, grid, stream)
               : launch_transposed<T, CacheFormat::fp8_656>(params, map, grid, stream);
    return;
  }
  const CUtensorMap map = wide ? make_fp8_chunk_map(k_cache, format, kChunksPerStep) : make_fp8_cache_map(k_cache);
  if (wide) {
    per_tensor ? launch_asymmetric_fp8<T, CacheFormat::fp8_per_tensor>(params, map, Fp8PartMaps{}, grid, stream)
               : launch_asymmetric_fp8<T, CacheFormat::fp8_656>(params, map, make_fp8_part_maps(k_cache), grid, stream);
  } else if (per_tensor) {
    launch_narrow<T, kFp8Rows, CacheFormat::fp8_per_tensor>(params, map, grid, stream);
  } else {
    launch_narrow<T, kFp8Rows, CacheFormat::fp8_656>(params, map, grid, stream);
  }
}

}  // namespace

void launch_decode(const cuda::DecodeParams& params, DType dtype, CacheFormat format, const TensorView& k_cache,
                   int64_t num_parts, int64_t h_kv, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(m_tiles(params.rows)), static_cast<unsigned>(num_parts),
                  static_cast<unsigned>(h_kv));
  const bool bf16 = dtype == DType::bf16;
  if (format != CacheFormat::plain) {
    bf16 ? launch_fp8<__nv_bfloat16>(params, format, k_cache, grid, stream)
         : launch_fp8<__half>(params, format, k_cache, grid, stream);
    return;
  }
  const Schedule schedule = schedule_for(params.rows);
  if (schedule == Schedule::narrow) {
    const CUtensorMap tile_map = make_cache_map(k_cache, kChunks);
    const bool n16 = params.rows <= 16;
    if (bf16) {
      n16 ? launch_narrow<__nv_bfloat16, 16, CacheFormat::plain>(params, tile_map, grid, stream)
          : launch_narrow<__nv_bfloat16, kNarrowMaxRows, CacheFormat::plain>(params, tile_map, grid, stream);
    } else {
      n16 ? launch_narrow<__half, 16, CacheFormat::plain>(params, tile_map, grid, stream)
          : launch_narrow<__half, kNarrowMaxRows, CacheFormat::plain>(params, tile_map, grid, stream);
    }
    return;
  }
  if (schedule == Schedule::asymmetric) {
    const CUtensorMap tile_map = make_cache_map(k_cache, kChunks);
    cuda::DecodeParams with_q = params;
    CUtensorMap q_map{};
    with_q.q_by_tma = make_q_map(params, dtype, q_map);
    if (bf16) {
      launch_asymmetric<__nv_bfloat16>(with_q, tile_map, q_map, grid, stream);
    } else {
      launch_asymmetric<__half>(with_q, tile_map, q_map, grid, stream);
    }
    return;
  }
  const CUtensorMap chunk_map = make_cache_map(k_cache, 1);
  if (bf16) {
    launch_seesaw<__nv_bfloat16>(params, chunk_map, grid, stream);
  } else {
    launch_seesaw<__half>(params, chunk_map, grid, stream);
  }
}

}  // namespace openmla::sm90
