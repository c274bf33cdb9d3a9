#pragma once
// One decode of a Problem on the CPU backend through the public API: plan, workspace, decode.

#include <cstdint>

#include "fp8_cache.h"
#include "openmla/decode.h"
#include "problem.h"

namespace openmla::test {

// Arguments for decode over the problem's host buffers; plan and workspace are the caller's.
DecodeArgs host_args(const Problem& problem, const Output& output);

// num_parts 0 lets openmla pick. With `cache`, decode reads that FP8 copy of the problem's cache.
Output host_decode(const Problem& problem, int64_t num_parts = 0, const Fp8Cache* cache = nullptr);

// Decode with a plan the caller made (for other shapes, say); the workspace is sized for the problem.
Output host_decode_with(const Problem& problem, const Plan& plan, const Fp8Cache* cache = nullptr);

}  // namespace openmla::test
