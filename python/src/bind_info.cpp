// cuda_built, cuda_device_count and cuda_available: what this build and machine can run.

#include "bindings.h"
#include "openmla/info.h"

namespace openmla::python {

void bind_info(nb::module_& m) {
  m.def("cuda_built", &cuda_built, "Whether this build of openmla has its CUDA backend.");
  m.def("cuda_device_count", &cuda_device_count,
        "CUDA devices this process can use (0 without the CUDA backend, a driver or a device).");
  m.def("cuda_available", &cuda_available, "cuda_built() and cuda_device_count() > 0.");
}

}  // namespace openmla::python
