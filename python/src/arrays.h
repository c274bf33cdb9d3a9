#pragma once
// DLPack arrays (numpy, torch, cupy, jax through nanobind) as openmla views. Nothing is copied.

#include <nanobind/ndarray.h>

#include <cstdint>

#include "openmla/tensor.h"

namespace openmla::python {

namespace nb = nanobind;

// Inputs may be read-only; outputs must be writable.
using Input = nb::ndarray<nb::ro>;
using Output = nb::ndarray<>;

// Workspaces are aligned by the binding: Python's workspace_size adds this slack to the library's.
inline constexpr int64_t kWorkspaceAlignment = 256;

// The dtypes an argument accepts, as its TypeError names them when a dtype is none the library has a
// name for (int64, float64, ...). Dtypes the library knows are checked by the library itself.
inline constexpr const char* kDecodeDtypes = "bfloat16 or float16 (float32 too on the CPU)";
inline constexpr const char* kFloat32Dtype = "float32";
inline constexpr const char* kInt32Dtype = "int32";
inline constexpr const char* kInt64Dtype = "int64";  // read as DType::int64 only where it is the one accepted
inline constexpr const char* kFloatDtypes = "bfloat16, float16 or float32";
inline constexpr const char* kCacheDtypes = "bfloat16, float16 (float32 too on the CPU), float8_e4m3fn or uint8";

// A strided view of `array`. Throws TypeError "expected dtype <dtypes>" for a dtype the library has no
// name for, TypeError for a device it has no name for (uint16 is read as bf16: it carries numpy's
// ml_dtypes.bfloat16, which DLPack cannot export), and openmla::Error for more than kMaxRank dims.
TensorView to_view(const char* name, const Input& array, const char* dtypes);
TensorView to_view(const char* name, const Output& array, const char* dtypes);

// k_cache of decode or write_cache (kCacheDtypes): with k_cache_e4m3, a uint8 array carries
// float8_e4m3fn values (NumPy's ml_dtypes.float8_e4m3fn, which DLPack cannot export, travels so; torch's
// is sent the same way) and becomes an fp8_e4m3 view.
TensorView cache_view(const Input& k_cache, bool k_cache_e4m3);
TensorView cache_view(const Output& k_cache, bool k_cache_e4m3);

// The bytes of a C-contiguous array (throws openmla::Error when it is not contiguous).
Buffer to_buffer(const char* name, const Input& array);
Buffer to_buffer(const char* name, const Output& array);

// `raw` advanced to the next kWorkspaceAlignment boundary, its size shrunk to match (0 if too small).
Buffer aligned_workspace(const Buffer& raw);

// A device named as in Python: "cpu" or "cuda" and an ordinal.
Device to_device(const char* type, int32_t index);

inline void* to_stream(uintptr_t stream) { return reinterpret_cast<void*>(stream); }

}  // namespace openmla::python
