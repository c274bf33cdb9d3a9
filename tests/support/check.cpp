#include "check.h"

#include <cstring>

namespace openmla::test {

::testing::AssertionResult matches(const Reference& ref, const TensorView& out, const TensorView& lse,
                                   const Tolerance& tol) {
  const Comparison c = compare(ref, out, lse, tol);
  if (c.ok(tol)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << c.summary();
}

::testing::AssertionResult bitwise_equal(const Output& a, const Output& b) {
  if (a.out.size() != b.out.size() || a.lse.size() != b.lse.size()) {
    return ::testing::AssertionFailure() << "the outputs have different sizes";
  }
  for (size_t i = 0; i < a.out.size(); ++i) {
    if (a.out[i] != b.out[i]) {
      return ::testing::AssertionFailure()
             << "out differs first at flat index " << i << ": bits 0x" << std::hex << a.out[i] << " vs 0x" << b.out[i];
    }
  }
  if (std::memcmp(a.lse.data(), b.lse.data(), a.lse.size() * sizeof(float)) != 0) {
    return ::testing::AssertionFailure() << "lse differs bitwise";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace openmla::test
