#pragma once
// Counter-based random numbers, the same on the host and the device: value i of stream `seed` is a pure
// function of (seed, i), so any grid can generate any slice and a rerun gives bitwise the same data.

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define BENCH_HD __host__ __device__ inline
#else
#define BENCH_HD inline
#endif

namespace openmla::bench {

// splitmix64's finalizer: a bijection of 64-bit words with full avalanche.
BENCH_HD uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in (0, 1]: 24 random bits, never 0 so that log() below is finite.
BENCH_HD float uniform01(uint64_t seed, uint64_t i) {
  return static_cast<float>((mix64(seed ^ mix64(i)) >> 40) + 1) * 0x1p-24f;
}

// Standard normal by Box-Muller over the uniforms 2i and 2i+1.
BENCH_HD float normal01(uint64_t seed, uint64_t i) {
  const float u1 = uniform01(seed, 2 * i);
  const float u2 = uniform01(seed, 2 * i + 1);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

}  // namespace openmla::bench
