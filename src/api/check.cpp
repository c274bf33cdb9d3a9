#include "check.h"

#include <sstream>

namespace openmla::detail {

void fail(const std::string& argument, const std::string& expected, const std::string& given) {
  throw Error(argument, expected, given);
}

void fail_no_cuda(const std::string& argument, const std::string& given) {
  fail(argument, "cpu (this build of openmla has no CUDA backend)", given);
}

std::string shape_string(const TensorView& view) {
  std::ostringstream s;
  s << '[';
  for (int d = 0; d < view.rank; ++d) {
    s << (d ? ", " : "") << view.sizes[d];
  }
  s << ']';
  return s.str();
}

std::string device_string(const Device& device) {
  return device.type == DeviceType::cpu ? std::string("cpu") : std::string("cuda:") + std::to_string(device.index);
}

void check_view(const char* name, const TensorView& view, int rank, const char* dims,
                std::initializer_list<DType> dtypes, const Device& device) {
  if (view.rank != rank) {
    fail(name, "rank " + std::to_string(rank) + " " + dims, "rank " + std::to_string(view.rank));
  }
  for (int d = 0; d < rank; ++d) {
    if (view.sizes[d] < 0) {
      fail(name, std::string("non-negative sizes ") + dims, shape_string(view));
    }
  }
  bool dtype_ok = false;
  std::string allowed;
  for (DType t : dtypes) {
    dtype_ok = dtype_ok || t == view.dtype;
    allowed += (allowed.empty() ? "" : " or ") + std::string(dtype_name(t));
  }
  if (!dtype_ok) {
    fail(name, "dtype " + allowed, dtype_name(view.dtype));
  }
  if (!(view.device == device)) {
    fail(name, "device " + device_string(device), device_string(view.device));
  }
}

bool is_empty(const TensorView& view) {
  for (int d = 0; d < view.rank; ++d) {
    if (view.sizes[d] == 0) {
      return true;
    }
  }
  return false;
}

void check_data(const char* name, const TensorView& view) {
  if (view.data == nullptr && !is_empty(view)) {
    fail(name, "a non-null data pointer", "nullptr");
  }
}

void check_size(const char* name, const TensorView& view, int dim, int64_t expected, const char* what) {
  if (view.sizes[dim] != expected) {
    fail(std::string(name) + ".size(" + std::to_string(dim) + ")", std::to_string(expected) + " (" + what + ")",
         std::to_string(view.sizes[dim]));
  }
}

void check_last_dim_contiguous(const char* name, const TensorView& view) {
  const int last = view.rank - 1;
  if (view.sizes[last] > 1 && view.strides[last] != 1) {
    fail(std::string(name) + ".stride(" + std::to_string(last) + ")", "1 (last dim contiguous)",
         std::to_string(view.strides[last]));
  }
}

void check_element_aligned(const char* name, const TensorView& view) {
  if (reinterpret_cast<uintptr_t>(view.data) % static_cast<uintptr_t>(dtype_size(view.dtype)) != 0) {
    fail(name, "data aligned to its element size (" + std::to_string(dtype_size(view.dtype)) + " bytes)",
         "a misaligned pointer");
  }
}

void check_positive(const char* name, int64_t value) {
  if (value < 1) {
    fail(name, ">= 1", std::to_string(value));
  }
}

void check_at_most(const char* name, int64_t value, int64_t limit) {
  if (value > limit) {
    fail(name, "<= " + std::to_string(limit), std::to_string(value));
  }
}

}  // namespace openmla::detail
