#include "openmla/kernel.h"

namespace openmla {

const char* kernel_name(Kernel kernel) {
  switch (kernel) {
    case Kernel::automatic:
      return "automatic";
    case Kernel::portable:
      return "portable";
    case Kernel::sm90:
      return "sm90";
    case Kernel::cpu:
      return "cpu";
  }
  return "an unknown kernel value";
}

}  // namespace openmla
