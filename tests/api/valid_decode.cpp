#include "valid_decode.h"

#include "host_decode.h"

namespace openmla::test {

void ValidDecode::SetUp() {
  set_up({.s_q = 2, .h_q = 4, .h_kv = 2, .page_size = 16, .seed = 41, .lengths = {40, 17}}, 3);
}

void ValidDecode::set_up(const ProblemSpec& spec, int64_t num_parts) {
  problem_ = make_problem(spec);
  output_ = make_output(problem_.spec);
  const ProblemSpec& s = problem_.spec;
  config_ = {
      .batch = s.b, .s_q = s.s_q, .h_q = s.h_q, .h_kv = s.h_kv, .page_size = s.page_size, .num_parts = num_parts};
  plan_memory_ = MappedBuffer(static_cast<size_t>(plan_buffer_size(config_)));
  plan_ = plan(config_, problem_.seqlens_view(), {plan_memory_.data(), plan_buffer_size(config_)});
  workspace_bytes_ = workspace_size(plan_.config, 512);
  workspace_ = MappedBuffer(static_cast<size_t>(workspace_bytes_ + 256));  // room to misalign
  args_ = host_args(problem_, output_);
  args_.plan = &plan_;
  args_.workspace = {workspace_.data(), workspace_bytes_};
}

void ValidDecode::expect_rejected(std::initializer_list<std::string> parts) {
  try {
    decode(args_);
    ADD_FAILURE() << "decode accepted the arguments";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "message: " << message << "\nlacks: " << part;
    }
  }
  for (uint16_t bits : output_.out) {
    ASSERT_EQ(bits, kOutSentinel) << "out was written";
  }
  for (float l : output_.lse) {
    ASSERT_EQ(l, kLseSentinel) << "lse was written";
  }
}

}  // namespace openmla::test
