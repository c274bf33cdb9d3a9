#include "overlap.h"

#include <utility>
#include <string>

#include "check.h"

namespace openmla::detail {

namespace {

// |stride| * (size - 1) in elements, or -1 when it does not fit in int64.
int64_t reach(int64_t size, int64_t stride) {
  if (size <= 1) {
    return 0;
  }
  int64_t r = 0;
  const int64_t magnitude = stride < 0 ? -stride : stride;
  if (stride == INT64_MIN || __builtin_mul_overflow(size - 1, magnitude, &r)) {
    return -1;
  }
  return r;
}

// True when some size is 0 (numel() could overflow on sizes that are checked later).
bool has_no_elements(const TensorView& view) {
  for (int d = 0; d < view.rank; ++d) {
    if (view.sizes[d] == 0) {
      return true;
    }
  }
  return false;
}

[[noreturn]] void fail_span(const char* name, const TensorView& view) {
  fail(name, "sizes and strides whose memory span fits in 64 bits", shape_string(view) + " with larger strides");
}

}  // namespace

ByteSpan byte_span(const char* name, const TensorView& view) {
  if (has_no_elements(view)) {
    return {};
  }
  const int64_t element = dtype_size(view.dtype);
  int64_t below = 0;  // elements before data, reached through negative strides
  int64_t above = 0;  // elements after data
  for (int d = 0; d < view.rank; ++d) {
    const int64_t r = reach(view.sizes[d], view.strides[d]);
    int64_t& side = view.strides[d] < 0 ? below : above;
    if (r < 0 || __builtin_add_overflow(side, r, &side)) {
      fail_span(name, view);
    }
  }
  int64_t below_bytes = 0;
  int64_t above_bytes = 0;
  if (__builtin_mul_overflow(below, element, &below_bytes) ||
      __builtin_mul_overflow(above + 1, element, &above_bytes)) {
    fail_span(name, view);
  }
  const auto base = reinterpret_cast<uintptr_t>(view.data);
  if (base < static_cast<uintptr_t>(below_bytes) || UINTPTR_MAX - base < static_cast<uintptr_t>(above_bytes)) {
    fail_span(name, view);
  }
  return {base - static_cast<uintptr_t>(below_bytes), base + static_cast<uintptr_t>(above_bytes)};
}

void check_no_self_overlap(const char* name, const TensorView& view) {
  if (has_no_elements(view)) {
    return;
  }
  int dims[kMaxRank];
  int count = 0;
  for (int d = 0; d < view.rank; ++d) {
    if (view.sizes[d] > 1) {
      dims[count++] = d;
    }
  }
  const auto magnitude = [&](int d) { return view.strides[d] < 0 ? -view.strides[d] : view.strides[d]; };
  for (int k = 1; k < count; ++k) {  // insertion sort by |stride|: at most kMaxRank dims
    for (int j = k; j > 0 && magnitude(dims[j]) < magnitude(dims[j - 1]); --j) {
      std::swap(dims[j], dims[j - 1]);
    }
  }
  int64_t span = 1;  // elements spanned by the dims checked so far
  for (int k = 0; k < count; ++k) {
    const int d = dims[k];
    if (magnitude(d) < span) {
      fail(std::string(name) + ".stride(" + std::to_string(d) + ")",
           "a stride under which no two elements share memory (an output)", std::to_string(view.strides[d]));
    }
    const int64_t r = reach(view.sizes[d], view.strides[d]);
    if (r < 0 || __builtin_add_overflow(span, r, &span)) {
      fail_span(name, view);
    }
  }
}

void check_disjoint(const char* output_name, const TensorView& output, const char* other_name,
                    const TensorView& other) {
  if (!(output.device == other.device)) {
    return;
  }
  const ByteSpan a = byte_span(output_name, output);
  const ByteSpan b = byte_span(other_name, other);
  if (a.begin < a.end && b.begin < b.end && a.begin < b.end && b.begin < a.end) {
    fail(output_name, std::string("memory disjoint from ") + other_name, "views that overlap");
  }
}

}  // namespace openmla::detail
