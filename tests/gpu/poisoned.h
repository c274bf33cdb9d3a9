#pragma once
// The result of a decode in which some sequences were found bad on the device: their rows are NaN,
// every other sequence is right.

#include <cstdint>
#include <vector>

#include "device.h"

namespace openmla::test {

// Every out element and lse of the sequences in `bad` is NaN; every other sequence is within the
// element bound of the reference (docs/design.md, Tolerances) and has no NaN lse. GoogleTest failures
// otherwise.
void expect_poisoned(const Problem& problem, const DeviceProblem& device, const Output& output,
                     const std::vector<int64_t>& bad);

}  // namespace openmla::test
