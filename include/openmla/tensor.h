#pragma once
// Non-owning views of caller memory: the only way data enters the library.

#include <cstdint>
#include <initializer_list>

namespace openmla {

// fp8_e4m3 is OCP float8 e4m3fn (torch.float8_e4m3fn, ml_dtypes.float8_e4m3fn): 1 sign, 4 exponent, 3
// mantissa bits, no infinities, 0x7f and 0xff NaN. uint8 carries raw bytes (FlashMLA's 656-byte cache
// tokens, workspaces).
enum class DType : int32_t { bf16, fp16, fp32, int32, int64, fp8_e4m3, uint8 };

enum class DeviceType : int32_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int32_t index = 0;  // CUDA ordinal; 0 for the CPU

  friend bool operator==(const Device&, const Device&) = default;
};

// 5 for merge's stacked partial outputs [n, b, s_q, h_q, d_v]; decode's views have rank <= 4.
inline constexpr int kMaxRank = 5;

// A strided tensor: sizes and strides in elements, 64-bit.
struct TensorView {
  void* data = nullptr;
  Device device{};
  DType dtype = DType::fp32;
  int32_t rank = 0;
  int64_t sizes[kMaxRank] = {};
  int64_t strides[kMaxRank] = {};

  int64_t size(int dim) const { return sizes[dim]; }
  int64_t stride(int dim) const { return strides[dim]; }
  int64_t numel() const;
};

// A row-major (contiguous) view of `data` with the given sizes.
TensorView make_view(void* data, DType dtype, std::initializer_list<int64_t> sizes, Device device = {});

// Raw bytes owned by the caller: the plan buffer and the workspace.
struct Buffer {
  void* data = nullptr;
  int64_t bytes = 0;
  Device device{};
};

int64_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* device_name(DeviceType type);

}  // namespace openmla
