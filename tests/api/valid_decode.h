#pragma once
// A small valid CPU decode (by default b=2, s_q=2, h_q=4, h_kv=2, page 16, lengths 40 and 17, 3 parts)
// that each validation test breaks in one way, and the check that a broken call writes nothing.

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "mapped_buffer.h"
#include "openmla/openmla.h"
#include "problem.h"

namespace openmla::test {

class ValidDecode : public ::testing::Test {
 protected:
  void SetUp() override;
  // Sets up the decode of `spec` with a plan of `num_parts` parts.
  void set_up(const ProblemSpec& spec, int64_t num_parts);

  // decode(args_) must throw an Error containing every one of `parts`, and out / lse keep their
  // sentinel values.
  void expect_rejected(std::initializer_list<std::string> parts);

  Problem problem_;
  Output output_;
  PlanConfig config_;
  MappedBuffer plan_memory_;
  Plan plan_;
  int64_t workspace_bytes_ = 0;
  MappedBuffer workspace_;
  DecodeArgs args_;
};

}  // namespace openmla::test
