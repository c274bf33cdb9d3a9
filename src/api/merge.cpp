#include "openmla/merge.h"

#include <cstdint>
#include <string>

#include "backends.h"
#include "check.h"
#include "merge_backends.h"
#include "overlap.h"

namespace openmla {

namespace {

using detail::check_size;

void check_args(const MergeArgs& a) {
  const Device device = a.out_parts.device;
  const auto values = {DType::bf16, DType::fp16, DType::fp32};
  detail::check_view("out_parts", a.out_parts, 5, "[n, b, s_q, h_q, d_v]", values, device);
  detail::check_view("lse_parts", a.lse_parts, 4, "[n, b, h_q, s_q]", {DType::fp32}, device);
  detail::check_view("out", a.out, 4, "[b, s_q, h_q, d_v]", values, device);
  detail::check_view("lse", a.lse, 3, "[b, h_q, s_q]", {DType::fp32}, device);

  const int64_t n = a.out_parts.sizes[0];
  const int64_t b = a.out_parts.sizes[1];
  const int64_t s_q = a.out_parts.sizes[2];
  const int64_t h_q = a.out_parts.sizes[3];
  const int64_t d_v = a.out_parts.sizes[4];
  detail::check_positive("out_parts.size(0) (n)", n);
  detail::check_positive("out_parts.size(4) (d_v)", d_v);
  check_size("lse_parts", a.lse_parts, 0, n, "n from out_parts");
  check_size("lse_parts", a.lse_parts, 1, b, "b from out_parts");
  check_size("lse_parts", a.lse_parts, 2, h_q, "h_q from out_parts");
  check_size("lse_parts", a.lse_parts, 3, s_q, "s_q from out_parts");
  check_size("out", a.out, 0, b, "b from out_parts");
  check_size("out", a.out, 1, s_q, "s_q from out_parts");
  check_size("out", a.out, 2, h_q, "h_q from out_parts");
  check_size("out", a.out, 3, d_v, "d_v from out_parts");
  check_size("lse", a.lse, 0, b, "b from out_parts");
  check_size("lse", a.lse, 1, h_q, "h_q from out_parts");
  check_size("lse", a.lse, 2, s_q, "s_q from out_parts");
  detail::check_data("out_parts", a.out_parts);
  detail::check_data("lse_parts", a.lse_parts);
  detail::check_data("out", a.out);
  detail::check_data("lse", a.lse);
  detail::check_last_dim_contiguous("out_parts", a.out_parts);
  detail::check_last_dim_contiguous("out", a.out);
  detail::check_element_aligned("out_parts", a.out_parts);
  detail::check_element_aligned("lse_parts", a.lse_parts);
  detail::check_element_aligned("out", a.out);
  detail::check_element_aligned("lse", a.lse);

  using detail::span_of;
  const detail::Named out{"out", span_of("out", a.out)};
  const detail::Named lse{"lse", span_of("lse", a.lse)};
  const detail::Named out_parts{"out_parts", span_of("out_parts", a.out_parts)};
  const detail::Named lse_parts{"lse_parts", span_of("lse_parts", a.lse_parts)};
  detail::check_no_self_overlap("out", a.out);
  detail::check_no_self_overlap("lse", a.lse);
  detail::check_disjoint(out, {lse, out_parts, lse_parts}, "no input or other output");
  detail::check_disjoint(lse, {out_parts, lse_parts}, "no input");

  if (device.type == DeviceType::cuda && !cuda::available()) {
    detail::fail_no_cuda("out_parts.device", detail::device_string(device));
  }
}

}  // namespace

void merge(const MergeArgs& args) {
  check_args(args);
  if (args.out_parts.device.type == DeviceType::cpu) {
    cpu::merge(args);
  } else {
    cuda::check_merge_args(args);
    cuda::merge(args);
  }
}

}  // namespace openmla
