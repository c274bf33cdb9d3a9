#pragma once
// What memory a view spans, so that decode, plan and merge refuse outputs that overlap themselves or share
// memory with an input or another output.

#include <cstdint>
#include <initializer_list>

#include "openmla/tensor.h"

namespace openmla::detail {

// The bytes [begin, end) that a view's elements lie in; empty for a view with a zero dimension.
struct Span {
  uintptr_t begin = 0;
  uintptr_t end = 0;
};

// Throws when the view's elements do not fit in the address space (sizes and strides are checked).
Span span_of(const char* name, const TensorView& view);
Span span_of(const Buffer& buffer, int64_t bytes);

bool overlaps(const Span& a, const Span& b);

// Throws unless every element of the view has its own memory: sorted by stride, each dimension of
// size > 1 must step past everything the smaller ones span. Call after span_of, which bounds the
// products of sizes and strides.
void check_no_self_overlap(const char* name, const TensorView& view);

struct Named {
  const char* name;
  Span span;
};

// Throws naming `output` and the first of `others` it overlaps. `what` says what it must not share
// memory with, e.g. "no input or other output".
void check_disjoint(const Named& output, std::initializer_list<Named> others, const char* what);

}  // namespace openmla::detail
