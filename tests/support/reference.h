#pragma once
// The ground truth of the tests (docs/design.md): a float64 naive MLA decode (gather the pages, dense softmax).

#include <vector>

#include "fp8_cache.h"
#include "openmla/tensor.h"
#include "problem.h"

namespace openmla::test {

struct Reference {
  std::vector<double> out;  // [b, s_q, h_q, d_v]; 0 for a row that sees no key
  std::vector<double> lse;  // [b, h_q, s_q]; +inf for a row that sees no key
};

Reference reference_decode(const Problem& problem);

// The same over an FP8 copy of the problem's cache: the reference of its dequantized values.
Reference reference_decode(const Problem& problem, const Fp8Cache& cache);

// A decode result read back as a Reference (host views out [b, s_q, h_q, d_v] bf16 | fp16 and
// lse [b, h_q, s_q] fp32, any strides), to compare two results with the same tolerances.
Reference reference_from_output(const TensorView& out, const TensorView& lse);

}  // namespace openmla::test
