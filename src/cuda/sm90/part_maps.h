#pragma once
// The tensor maps of a 656-byte token's scales, RoPE values and last two chunks of e4m3 values, which the
// asymmetric schedule's FP8 kernel receives by value beside the map of the e4m3 values (sm90/launch.h
// make_fp8_part_maps).

#include <cuda.h>

namespace openmla::sm90 {

struct Fp8PartMaps {
  CUtensorMap maps[3];  // [0] the 16 scale bytes, [1] the 128 RoPE bytes, [2] chunks 6-7's values, of 64 tokens a box
};

}  // namespace openmla::sm90
