#include "child.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string_view>

namespace openmla::test {

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

ChildRun run_child(const std::string& assignments, const std::string& filter) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string command = "env -u GTEST_TOTAL_SHARDS -u GTEST_SHARD_INDEX " + assignments + " '" + self +
                              "' --gtest_filter='" + filter + "' 2>&1";
  ChildRun run{-1, ""};
  FILE* child = popen(command.c_str(), "r");
  if (child == nullptr) {
    return run;
  }
  std::array<char, 4096> chunk{};
  while (fgets(chunk.data(), static_cast<int>(chunk.size()), child) != nullptr) {
    run.output += chunk.data();
  }
  run.status = pclose(child);
  return run;
}

int tests_in_suites(std::initializer_list<const char*> suites) {
  int count = 0;
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    for (const char* suite : suites) {
      if (std::string_view(unit.GetTestSuite(i)->name()) == suite) {
        count += unit.GetTestSuite(i)->total_test_count();
      }
    }
  }
  return count;
}

}  // namespace openmla::test
