#include "cache_row.h"

#include <cstring>

#include "fp8.h"
#include "half.h"

namespace openmla::cpu {

CacheReader cache_reader(const DecodeArgs& a) {
  const int64_t element = dtype_size(a.k_cache.dtype);
  return CacheReader{
      .data = static_cast<const char*>(a.k_cache.data),
      .stride = {a.k_cache.strides[0] * element, a.k_cache.strides[1] * element, a.k_cache.strides[2] * element},
      .format = a.cache_format,
      .rope_dtype = a.q.dtype,
      .scale = a.cache_format == CacheFormat::fp8_per_tensor ? *static_cast<const float*>(a.k_scale.data) : 1.0f,
      .d_qk = a.q.sizes[3],
  };
}

void CacheReader::read(int64_t block, int64_t slot, int64_t head, float* dst) const {
  const char* row = data + block * stride[0] + slot * stride[1] + head * stride[2];
  const auto* bytes = reinterpret_cast<const uint8_t*>(row);
  switch (format) {
    case CacheFormat::plain:
      for (int64_t d = 0; d < d_qk; ++d) {
        dst[d] = load_element(row, d, rope_dtype);
      }
      return;
    case CacheFormat::fp8_per_tensor:
      for (int64_t d = 0; d < d_qk; ++d) {
        dst[d] = e4m3_to_float(bytes[d]) * scale;
      }
      return;
    case CacheFormat::fp8_656: {
      // [512 e4m3][4 fp32 scales][64 RoPE values in q's dtype, bf16 for an fp32 q]; the scales are
      // memcpy'd: a token of 656 bytes keeps them 16-byte aligned only when the cache is.
      float scales[kFp8TokenValues / kFp8TokenTile];
      std::memcpy(scales, row + kFp8TokenValues, sizeof(scales));
      for (int64_t d = 0; d < kFp8TokenValues; ++d) {
        dst[d] = e4m3_to_float(bytes[d]) * scales[d / kFp8TokenTile];
      }
      const char* rope = row + kFp8TokenValues + sizeof(scales);
      for (int64_t d = 0; d < kFp8TokenRope; ++d) {
        uint16_t h;
        std::memcpy(&h, rope + 2 * d, 2);
        dst[kFp8TokenValues + d] = rope_dtype == DType::fp16 ? fp16_to_float(h) : bf16_to_float(h);
      }
      return;
    }
  }
}

}  // namespace openmla::cpu
