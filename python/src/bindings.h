#pragma once
// The functions of openmla._C, one binder per file.

#include <nanobind/nanobind.h>

namespace openmla::python {

namespace nb = nanobind;

void bind_info(nb::module_& m);
void bind_plan(nb::module_& m);
void bind_decode(nb::module_& m);
void bind_merge(nb::module_& m);
void bind_cache(nb::module_& m);

}  // namespace openmla::python
