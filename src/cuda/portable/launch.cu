#include <cstdlib>
#include <optional>
#include <string>

#include "../common/cuda_check.h"
#include "../common/launch_ex.h"
#include "kernel.cuh"
#include "launch.h"

namespace openmla::portable {

namespace {

// Calls fn.template operator()<Traits>() with the instance that config, dtype and format name.
// FP8 instances stop at 2 slices: with 4 (64 rows) the q tile, the T tile and the raw stages need
// more shared memory than any GPU offers (227 KB).
template <CacheFormat kFormat>
constexpr int kMaxMSlices = kFormat == CacheFormat::plain ? 4 : 2;

template <typename T, int kKeys, CacheFormat kFormat, typename Fn>
void dispatch_m(int m_slices, Fn&& fn) {
  if (m_slices == 4 && kMaxMSlices<kFormat> == 4) {
    fn.template operator()<Traits<T, kMaxMSlices<kFormat>, kKeys, kFormat>>();
  } else if (m_slices == 2) {
    fn.template operator()<Traits<T, 2, kKeys, kFormat>>();
  } else {
    fn.template operator()<Traits<T, 1, kKeys, kFormat>>();
  }
}

template <typename T, CacheFormat kFormat, typename Fn>
void dispatch_keys(const KernelConfig& config, Fn&& fn) {
  config.keys == 64 ? dispatch_m<T, 64, kFormat>(config.m_slices, fn) : dispatch_m<T, 32, kFormat>(config.m_slices, fn);
}

template <typename T, typename Fn>
void dispatch_format(const KernelConfig& config, CacheFormat format, Fn&& fn) {
  if (format == CacheFormat::fp8_per_tensor) {
    dispatch_keys<T, CacheFormat::fp8_per_tensor>(config, fn);
  } else if (format == CacheFormat::fp8_656) {
    dispatch_keys<T, CacheFormat::fp8_656>(config, fn);
  } else {
    dispatch_keys<T, CacheFormat::plain>(config, fn);
  }
}

template <typename Fn>
void dispatch(const KernelConfig& config, DType dtype, CacheFormat format, Fn&& fn) {
  if (dtype == DType::bf16) {
    dispatch_format<__nv_bfloat16>(config, format, fn);
  } else {
    dispatch_format<__half>(config, format, fn);
  }
}

// Both dtypes have the same shared-memory plan; bf16 stands for either.
int shared_bytes(const KernelConfig& config, CacheFormat format) {
  int bytes = 0;
  dispatch(config, DType::bf16, format, [&]<class Tr>() { bytes = sizeof(typename Tr::Shared); });
  return bytes;
}

// OPENMLA_PORTABLE_SHARED_BYTES, read once: the most shared memory per block the instances may take
// (nothing when unset), or the text of a value that is not a positive number of bytes.
struct SharedCap {
  std::optional<int> bytes;
  std::string invalid;
};

const SharedCap& shared_cap() {
  static const SharedCap cap = [] {
    const char* env = std::getenv("OPENMLA_PORTABLE_SHARED_BYTES");
    if (env == nullptr || *env == '\0') {
      return SharedCap{};
    }
    char* end = nullptr;
    const long value = std::strtol(env, &end, 10);
    if (*end != '\0' || value <= 0 || value > (1L << 30)) {
      return SharedCap{std::nullopt, env};
    }
    return SharedCap{static_cast<int>(value), ""};
  }();
  return cap;
}

}  // namespace

KernelConfig select_config(int64_t rows, int device, CacheFormat format) {
  int max_smem = 0;
  OPENMLA_CUDA_CHECK(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const SharedCap& cap = shared_cap();
  if (!cap.invalid.empty()) {
    throw Error("openmla: OPENMLA_PORTABLE_SHARED_BYTES: expected a positive number of bytes, given '" + cap.invalid +
                "'");
  }
  if (cap.bytes && *cap.bytes < max_smem) {
    max_smem = *cap.bytes;
  }
  const int widest = format == CacheFormat::plain ? kMaxMSlices<CacheFormat::plain> : kMaxMSlices<CacheFormat::fp8_656>;
  const int wanted = rows <= 16 ? 1 : rows <= 32 || widest == 2 ? 2 : 4;
  for (int keys : {64, 32}) {
    for (int m = wanted; m >= 1; m /= 2) {
      if (shared_bytes(KernelConfig{m, keys}, format) <= max_smem) {
        return KernelConfig{m, keys};
      }
    }
  }
  throw Error("openmla: device: expected a GPU with at least " +
              std::to_string(shared_bytes(KernelConfig{1, 32}, format)) +
              " bytes of shared memory per block, given one with " + std::to_string(max_smem));
}

int ctas_per_sm(const KernelConfig& config) {
  int ctas = 0;
  dispatch(config, DType::bf16, CacheFormat::plain, [&]<class Tr>() {
    constexpr int kSmem = sizeof(typename Tr::Shared);
    cuda::allow_shared_memory<&decode_kernel<Tr>, kSmem>();
    OPENMLA_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ctas, &decode_kernel<Tr>, kThreads, kSmem));
  });
  return ctas;
}

int64_t m_tiles(int64_t rows, const KernelConfig& config) {
  const int64_t m = 16 * config.m_slices;
  return (rows + m - 1) / m;
}

// The decode kernel is launched without programmatic dependence (it reads what the kernels before it
// wrote from its first instruction on); it lets the combine kernel launch early instead.
void launch_decode(const cuda::DecodeParams& params, DType dtype, CacheFormat format, const KernelConfig& config,
                   int64_t num_parts, int64_t h_kv, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(m_tiles(params.rows, config)), static_cast<unsigned>(num_parts),
                  static_cast<unsigned>(h_kv));
  dispatch(config, dtype, format, [&]<class Tr>() {
    constexpr int kSmem = sizeof(typename Tr::Shared);
    cuda::allow_shared_memory<&decode_kernel<Tr>, kSmem>();
    cuda::launch_kernel(&decode_kernel<Tr>, grid, dim3(kThreads), kSmem, stream, false, params);
  });
}

}  // namespace openmla::portable
