#pragma once
// What src/api/merge.cpp asks of each backend. Arguments reach these already checked.

#include "openmla/merge.h"

namespace openmla::cpu {

void merge(const MergeArgs& args);

}  // namespace openmla::cpu

namespace openmla::cuda {

void check_merge_args(const MergeArgs& args);  // device pointers and index, beyond the common checks
void merge(const MergeArgs& args);

}  // namespace openmla::cuda
