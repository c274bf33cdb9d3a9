#pragma once
// The one exception type of openmla: every failed check throws it, naming the argument, what was
// expected and what was given. The library never exits, aborts or prints.

#include <stdexcept>
#include <string>

namespace openmla {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}

  // The form of every openmla message: "openmla: <argument>: expected <expected>, given <given>".
  Error(const std::string& argument, const std::string& expected, const std::string& given)
      : std::runtime_error("openmla: " + argument + ": expected " + expected + ", given " + given) {}
};

}  // namespace openmla
