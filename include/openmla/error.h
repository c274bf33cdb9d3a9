#pragma once
// The one exception type of openmla: every failed check throws it, naming the argument, what was
// expected and what was given. The library never exits, aborts or prints.

#include <stdexcept>
#include <string>

namespace openmla {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace openmla
