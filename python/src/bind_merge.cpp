// merge: partial attention results over disjoint key sets -> the attention over their union.

#include "arrays.h"
#include "bindings.h"
#include "openmla/merge.h"

namespace openmla::python {

namespace {

void run_merge(const Input& out_parts, const Input& lse_parts, const Output& out, const Output& lse, uintptr_t stream) {
  const MergeArgs args{
      .out_parts = to_view("out_parts", out_parts, kFloatDtypes),
      .lse_parts = to_view("lse_parts", lse_parts, kFloat32Dtype),
      .out = to_view("out", out, kFloatDtypes),
      .lse = to_view("lse", lse, kFloat32Dtype),
      .stream = to_stream(stream),
  };
  nb::gil_scoped_release unlocked;
  merge(args);
}

}  // namespace

void bind_merge(nb::module_& m) {
  m.def("merge", &run_merge, nb::arg("out_parts"), nb::arg("lse_parts"), nb::arg("out"), nb::arg("lse"),
        nb::arg("stream"),
        "Checks every argument, then writes out [b, s_q, h_q, d_v] and lse [b, h_q, s_q] from out_parts "
        "[n, b, s_q, h_q, d_v] and lse_parts [n, b, h_q, s_q] (a kernel on `stream` for CUDA).");
}

}  // namespace openmla::python
