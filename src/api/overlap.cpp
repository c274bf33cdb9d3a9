#include "overlap.h"

#include <algorithm>
#include <string>
#include <vector>

#include "check.h"
#include "checked.h"

namespace openmla::detail {

namespace {

std::string list(const int64_t* values, int rank) {
  std::string s = "[";
  for (int d = 0; d < rank; ++d) {
    s += (d ? ", " : "") + std::to_string(values[d]);
  }
  return s + "]";
}

}  // namespace

Span span_of(const char* name, const TensorView& view) {
  // Element offsets of the lowest and highest element relative to data, then bytes.
  int64_t low = 0;
  int64_t high = 0;
  bool fits = true;
  for (int d = 0; d < view.rank; ++d) {
    if (view.sizes[d] == 0) {
      return Span{};
    }
    int64_t reach = 0;
    fits = fits && checked_product({view.sizes[d] - 1, view.strides[d]}, reach) &&
           checked_sum({reach < 0 ? low : high, reach}, reach < 0 ? low : high);
  }
  const int64_t element = dtype_size(view.dtype);
  int64_t low_bytes = 0;
  int64_t high_bytes = 0;
  fits = fits && checked_product({low, element}, low_bytes) && checked_product({high + 1, element}, high_bytes);
  const auto begin = reinterpret_cast<uintptr_t>(view.data);
  if (!fits || static_cast<uintptr_t>(-low_bytes) > begin || static_cast<uintptr_t>(high_bytes) > UINTPTR_MAX - begin) {
    fail(name, "sizes and strides within the address space",
         "sizes " + list(view.sizes, view.rank) + " and strides " + list(view.strides, view.rank));
  }
  return Span{begin - static_cast<uintptr_t>(-low_bytes), begin + static_cast<uintptr_t>(high_bytes)};
}

Span span_of(const Buffer& buffer, int64_t bytes) {
  const auto begin = reinterpret_cast<uintptr_t>(buffer.data);
  return bytes == 0 ? Span{} : Span{begin, begin + static_cast<uintptr_t>(bytes)};
}

bool overlaps(const Span& a, const Span& b) {
  return a.begin < a.end && b.begin < b.end && a.begin < b.end && b.begin < a.end;
}

void check_no_self_overlap(const char* name, const TensorView& view) {
  struct Dim {
    int64_t size;
    int64_t stride;  // absolute
  };
  std::vector<Dim> dims;
  for (int d = 0; d < view.rank; ++d) {
    if (view.sizes[d] == 0) {
      return;
    }
    if (view.sizes[d] > 1) {
      dims.push_back({view.sizes[d], view.strides[d] < 0 ? -view.strides[d] : view.strides[d]});
    }
  }
  std::sort(dims.begin(), dims.end(), [](const Dim& a, const Dim& b) { return a.stride < b.stride; });
  int64_t spanned = 0;  // elements the smaller dimensions reach past their first
  for (const Dim& dim : dims) {
    if (dim.stride <= spanned) {
      fail(name, "strides under which no two elements share memory",
           "strides " + list(view.strides, view.rank) + " for sizes " + list(view.sizes, view.rank));
    }
    spanned += (dim.size - 1) * dim.stride;
  }
}

void check_disjoint(const Named& output, std::initializer_list<Named> others, const char* what) {
  for (const Named& other : others) {
    if (overlaps(output.span, other.span)) {
      fail(output.name, std::string("memory that ") + what + " shares",
           std::string("memory overlapping ") + other.name);
    }
  }
}

}  // namespace openmla::detail
