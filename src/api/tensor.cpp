#include "openmla/tensor.h"

#include "check.h"

namespace openmla {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) {
    n *= sizes[d];
  }
  return n;
}

TensorView make_view(void* data, DType dtype, std::initializer_list<int64_t> sizes, Device device) {
  if (sizes.size() > static_cast<size_t>(kMaxRank)) {
    detail::fail("sizes", "at most " + std::to_string(kMaxRank) + " dims", std::to_string(sizes.size()) + " dims");
  }
  TensorView view;
  view.data = data;
  view.dtype = dtype;
  view.device = device;
  view.rank = static_cast<int32_t>(sizes.size());
  int d = 0;
  for (int64_t s : sizes) {
    view.sizes[d++] = s;
  }
  int64_t stride = 1;
  for (d = view.rank - 1; d >= 0; --d) {
    view.strides[d] = stride;
    stride *= view.sizes[d];
  }
  return view;
}

int64_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::fp8_e4m3:
    case DType::uint8:
      return 1;
    case DType::bf16:
    case DType::fp16:
      return 2;
    case DType::fp32:
    case DType::int32:
      return 4;
    case DType::int64:
      return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::bf16:
      return "bf16";
    case DType::fp16:
      return "fp16";
    case DType::fp32:
      return "fp32";
    case DType::int32:
      return "int32";
    case DType::int64:
      return "int64";
    case DType::fp8_e4m3:
      return "fp8_e4m3";
    case DType::uint8:
      return "uint8";
  }
  return "unknown";
}

const char* device_name(DeviceType type) { return type == DeviceType::cpu ? "cpu" : "cuda"; }

}  // namespace openmla
