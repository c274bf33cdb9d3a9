// openmla._C: the low-level functions behind the openmla package. openmla::Error becomes ValueError.

#include <nanobind/nanobind.h>

#include "bindings.h"
#include "openmla/error.h"
#include "openmla/version.h"

NB_MODULE(_C, m) {
  m.doc() = "openmla low-level bindings; use the functions of the openmla package instead.";
  m.attr("__version__") = OPENMLA_VERSION;
  nanobind::register_exception_translator([](const std::exception_ptr& error, void*) {
    try {
      std::rethrow_exception(error);
    } catch (const openmla::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  openmla::python::bind_info(m);
  openmla::python::bind_plan(m);
  openmla::python::bind_decode(m);
  openmla::python::bind_merge(m);
  openmla::python::bind_cache(m);
}
