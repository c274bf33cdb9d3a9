// The demo's GPU entry points in a build without the CUDA backend: no device to run on.

#include "openmla/error.h"
#include "run.h"

namespace openmla::demo {

int cuda_device_count() { return 0; }

Run run_on_cuda(const test::Problem&) {
  throw Error("openmla-demo: device: expected cpu (this build has no CUDA backend), given cuda");
}

}  // namespace openmla::demo
