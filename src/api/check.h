#pragma once
// Argument checks shared by every entry point. Each failure throws openmla::Error with the message
// "<argument>: expected <what>, given <what>".

#include <cstdint>
#include <initializer_list>
#include <string>

#include "openmla/error.h"
#include "openmla/tensor.h"

namespace openmla::detail {

[[noreturn]] void fail(const std::string& argument, const std::string& expected, const std::string& given);

// The refusal of a CUDA request by a build without the CUDA backend; `given` names the device asked for.
[[noreturn]] void fail_no_cuda(const std::string& argument, const std::string& given);

std::string shape_string(const TensorView& view);

// The given rank and device, one of the given dtypes, non-negative sizes.
void check_view(const char* name, const TensorView& view, int rank, const char* dims,
                std::initializer_list<DType> dtypes, const Device& device);

// Non-null data, unless a dimension is 0 (the view holds no element). Checked after the size rules, so
// that an empty view that breaks one gets that rule's message.
void check_data(const char* name, const TensorView& view);

// Whether a dimension of the view is 0, so that it holds no element.
bool is_empty(const TensorView& view);

// sizes[dim] == expected, where `what` names the expected size (e.g. "b from q").
void check_size(const char* name, const TensorView& view, int dim, int64_t expected, const char* what);

void check_last_dim_contiguous(const char* name, const TensorView& view);

// The data pointer is a multiple of the element size.
void check_element_aligned(const char* name, const TensorView& view);

void check_positive(const char* name, int64_t value);

// value <= limit, naming the limit (e.g. kMaxDim).
void check_at_most(const char* name, int64_t value, int64_t limit);

std::string device_string(const Device& device);

}  // namespace openmla::detail
