#pragma once
// A fast, seeded PRNG (xoshiro256**, seeded by splitmix64): test data must be cheap on 2 cores.

#include <cstdint>

namespace openmla::test {

class Rng {
 public:
  explicit Rng(uint64_t seed);

  uint64_t next();
  double uniform();                           // [0, 1)
  double normal(double mean, double stddev);  // Box-Muller
  int64_t below(int64_t n);                   // [0, n), n > 0

 private:
  uint64_t s_[4];
};

}  // namespace openmla::test
