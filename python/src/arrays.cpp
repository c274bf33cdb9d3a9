#include "arrays.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "openmla/error.h"

namespace openmla::python {

namespace {

namespace dl = nb::dlpack;

constexpr uint8_t kDLFloat8E4m3fn = 10;  // DLPack 1.1's kDLFloat8_e4m3fn (torch.float8_e4m3fn)

std::string dtype_string(dl::dtype t) {
  static const char* const kCodes[] = {"int", "uint", "float", "opaque", "bfloat", "complex", "bool"};
  const std::string code = t.code < 7 ? kCodes[t.code] : "code " + std::to_string(t.code);
  return code + std::to_string(t.bits) + (t.lanes == 1 ? "" : "x" + std::to_string(t.lanes));
}

DType to_dtype(const char* name, dl::dtype t, const char* dtypes) {
  if (t == nb::dtype<float>()) return DType::fp32;
  if (t == nb::dtype<int32_t>()) return DType::int32;
  // int64 is slot_mapping's dtype: an int64 array where int32 is expected stays a TypeError.
  if (t == nb::dtype<int64_t>() && std::string_view(dtypes) == kInt64Dtype) return DType::int64;
  if (t == nb::dtype<uint16_t>()) return DType::bf16;
  if (t == dl::dtype{static_cast<uint8_t>(dl::dtype_code::Bfloat), 16, 1}) return DType::bf16;
  if (t == dl::dtype{static_cast<uint8_t>(dl::dtype_code::Float), 16, 1}) return DType::fp16;
  if (t == nb::dtype<uint8_t>()) return DType::uint8;
  if (t == dl::dtype{kDLFloat8E4m3fn, 8, 1}) return DType::fp8_e4m3;
  throw nb::type_error(Error(name, "dtype " + std::string(dtypes), dtype_string(t)).what());
}

Device to_device(const char* name, int32_t type, int32_t id) {
  if (type == nb::device::cpu::value) return Device{};
  if (type == nb::device::cuda::value) return Device{DeviceType::cuda, id};
  throw nb::type_error(Error(name, "a CPU or CUDA array", "DLPack device type " + std::to_string(type)).what());
}

template <typename Array>
TensorView view_of(const char* name, const Array& array, const char* dtypes) {
  if (array.ndim() > static_cast<size_t>(kMaxRank)) {
    throw Error(name, "at most " + std::to_string(kMaxRank) + " dims", std::to_string(array.ndim()));
  }
  TensorView view;
  view.data = const_cast<void*>(static_cast<const void*>(array.data()));
  view.device = to_device(name, array.device_type(), array.device_id());
  view.dtype = to_dtype(name, array.dtype(), dtypes);
  view.rank = static_cast<int32_t>(array.ndim());
  // NumPy gives an empty array zero strides; such an array has no layout, so it gets row-major ones.
  const bool empty = array.size() == 0;
  int64_t row_major = 1;
  for (int d = view.rank; d-- > 0;) {
    view.sizes[d] = static_cast<int64_t>(array.shape(d));
    view.strides[d] = empty ? row_major : array.stride(d);
    row_major *= std::max<int64_t>(view.sizes[d], 1);
  }
  return view;
}

template <typename Array>
Buffer buffer_of(const char* name, const Array& array) {
  int64_t expected_stride = 1;
  for (size_t d = array.ndim(); d-- > 0 && array.size() > 0;) {
    if (array.shape(d) > 1 && array.stride(d) != expected_stride) {
      throw Error(name, "a C-contiguous array",
                  "stride " + std::to_string(array.stride(d)) + " in dim " + std::to_string(d));
    }
    expected_stride *= static_cast<int64_t>(array.shape(d));
  }
  return Buffer{const_cast<void*>(static_cast<const void*>(array.data())), static_cast<int64_t>(array.nbytes()),
                to_device(name, array.device_type(), array.device_id())};
}

TensorView as_e4m3(TensorView view, bool e4m3) {
  if (e4m3 && view.dtype == DType::uint8) {
    view.dtype = DType::fp8_e4m3;
  }
  return view;
}

}  // namespace

TensorView to_view(const char* name, const Input& array, const char* dtypes) { return view_of(name, array, dtypes); }

TensorView to_view(const char* name, const Output& array, const char* dtypes) { return view_of(name, array, dtypes); }

TensorView cache_view(const Input& k_cache, bool k_cache_e4m3) {
  return as_e4m3(to_view("k_cache", k_cache, kCacheDtypes), k_cache_e4m3);
}

TensorView cache_view(const Output& k_cache, bool k_cache_e4m3) {
  return as_e4m3(to_view("k_cache", k_cache, kCacheDtypes), k_cache_e4m3);
}

Buffer to_buffer(const char* name, const Input& array) { return buffer_of(name, array); }

Buffer to_buffer(const char* name, const Output& array) { return buffer_of(name, array); }

Buffer aligned_workspace(const Buffer& raw) {
  const auto address = reinterpret_cast<uintptr_t>(raw.data);
  const auto skip = static_cast<int64_t>((kWorkspaceAlignment - address % kWorkspaceAlignment) % kWorkspaceAlignment);
  if (raw.data == nullptr || raw.bytes < skip) {
    return Buffer{raw.data, 0, raw.device};
  }
  return Buffer{static_cast<char*>(raw.data) + skip, raw.bytes - skip, raw.device};
}

Device to_device(const char* type, int32_t index) {
  const std::string t = type;
  if (t == "cpu") return Device{};
  if (t == "cuda") return Device{DeviceType::cuda, index};
  throw Error("device", "\"cpu\" or \"cuda\"", "\"" + t + "\"");
}

}  // namespace openmla::python
