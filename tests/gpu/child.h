#pragma once
// This test binary run again in a child process with an environment variable set, for the settings the
// library reads once per process (OPENMLA_SM90_SCHEDULE, OPENMLA_PORTABLE_SHARED_BYTES, ...).

#include <initializer_list>
#include <string>

namespace openmla::test {

// The value of environment variable `name` in this process, "" when unset.
std::string environment(const char* name);

struct ChildRun {
  int status;
  std::string output;
};

// Runs this test binary again with `assignments` (NAME=value, space-separated) in its environment and the
// tests of `filter`. The executable is resolved here (in the shell /proc/self/exe would be the shell), and
// the sharding variables of a sharded run are dropped, since they could leave the child no test to run.
ChildRun run_child(const std::string& assignments, const std::string& filter);

// The number of tests of the suites named in `suites` (a gtest filter's "Suite.*" terms are not parsed:
// the caller lists the suites whose every test its filter selects).
int tests_in_suites(std::initializer_list<const char*> suites);

}  // namespace openmla::test
