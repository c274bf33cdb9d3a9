#pragma once
// The float64 reference of reference.h, computed on the GPU: the same naive algorithm (gather the
// pages, dense softmax), fast enough for the full test grid. reference_test checks it against the host
// reference.

#include "device.h"
#include "reference.h"

namespace openmla::test {

Reference gpu_reference(const Problem& problem, const DeviceProblem& device);

}  // namespace openmla::test
