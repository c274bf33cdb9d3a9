#pragma once
// The functions of openmla._C, one binder per file.

#include <nanobind/nanobind.h>

namespace openmla::python {

void bind_plan(nanobind::module_& m);
void bind_decode(nanobind::module_& m);
void bind_merge(nanobind::module_& m);

}  // namespace openmla::python
