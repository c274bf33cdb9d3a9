#pragma once
// GoogleTest face of compare.h: a failed comparison is one test failure listing the first offences.

#include <gtest/gtest.h>

#include "compare.h"
#include "problem.h"

namespace openmla::test {

::testing::AssertionResult matches(const Reference& ref, const TensorView& out, const TensorView& lse,
                                   const Tolerance& tol = {});

// Copies of the same buffers: true when out and lse are bitwise equal.
::testing::AssertionResult bitwise_equal(const Output& a, const Output& b);

}  // namespace openmla::test
