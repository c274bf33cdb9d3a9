#pragma once
// The check every cache-write validation rule makes: the call throws exactly the rule's message and
// leaves the cache as it was.

#include <gtest/gtest.h>

#include <vector>

#include "openmla/cache.h"
#include "openmla/error.h"

namespace openmla::test {

// write_cache(args) must throw `message` and leave `cache` (the host memory args.k_cache views) unchanged.
template <typename Element>
void expect_refused_unwritten(const WriteCacheArgs& args, const std::vector<Element>& cache, const char* message) {
  const std::vector<Element> before = cache;
  try {
    write_cache(args);
    ADD_FAILURE() << "write_cache accepted the arguments";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), message);
  }
  EXPECT_EQ(cache, before) << "k_cache was written";
}

}  // namespace openmla::test
