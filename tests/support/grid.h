#pragma once
// The test grid (docs/design.md, Testing), shared by the CPU and GPU grid tests:
//   b ∈ {1,2,6,64}, s_q ∈ {1,2,4}, s_k ∈ {20,140,4096}, h_q ∈ {1,3,9,63,64,126,128}, h_kv ∈ {1,2,3,8}
//   (h_q % h_kv == 0), fixed and variable lengths, causal and not: 2304 cases.

#include <functional>
#include <string>
#include <vector>

#include "problem.h"

namespace openmla::test {

// The grid's cases that `keep` accepts, each with its own seed (stable whatever `keep` drops).
std::vector<ProblemSpec> design_grid(const std::function<bool(const ProblemSpec&)>& keep);

// A test-name-safe description, e.g. "b6_sq2_sk140_hq63_hkv3_varlen_causal".
std::string spec_name(const ProblemSpec& spec);

}  // namespace openmla::test
