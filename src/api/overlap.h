#pragma once
// Overlap checks for outputs: an output must not overlap itself (two indices, one element) nor share
// memory with an input or another output. Each failure throws openmla::Error like check.h.

#include <cstdint>

#include "openmla/tensor.h"

namespace openmla::detail {

// The bytes [begin, end) that the elements of `view` span; begin == end when it has none. Throws,
// naming `name`, when the span does not fit in 64 bits.
struct ByteSpan {
  uintptr_t begin = 0;
  uintptr_t end = 0;
};
ByteSpan byte_span(const char* name, const TensorView& view);

// Sorted by |stride|, every dim of size > 1 steps past the span of the dims below it. A sufficient
// test: interleaved layouts that happen not to collide are refused too.
void check_no_self_overlap(const char* name, const TensorView& view);

// The spans of `output` and `other` are disjoint (views on different devices never overlap).
void check_disjoint(const char* output_name, const TensorView& output, const char* other_name,
                    const TensorView& other);

}  // namespace openmla::detail
