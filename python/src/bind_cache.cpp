// write_cache (each new token's latent row and RoPE part into its slot of the paged cache) and
// reset_status (its device status word).

#include <nanobind/stl/optional.h>

#include <cstdint>
#include <optional>
#include <string>

#include "arrays.h"
#include "bindings.h"
#include "openmla/cache.h"
#include "openmla/error.h"

namespace openmla::python {

namespace {

inline constexpr int64_t kStatusArrayBytes = kWriteStatusBytes + kWorkspaceAlignment - 1;

// A status array is aligned like a workspace (aligned_workspace), so that check_status reads both.
Buffer status_buffer(const Output& status) {
  const Buffer raw = to_buffer("status", status);
  const Buffer aligned = aligned_workspace(raw);
  if (aligned.bytes < kWriteStatusBytes) {
    throw Error("status", ">= " + std::to_string(kStatusArrayBytes) + " bytes (openmla.write_cache_status)",
                std::to_string(raw.bytes) + " bytes");
  }
  return aligned;
}

// k_cache_e4m3: k_cache's uint8 bytes carry float8_e4m3fn values (cache_view, arrays.h).
void run_write_cache(const Input& kv_c, const Input& k_pe, const Input& slot_mapping, const Output& k_cache,
                     const std::optional<Output>& status, int32_t cache_format, const std::optional<Input>& k_scale,
                     bool k_cache_e4m3, uintptr_t stream) {
  const WriteCacheArgs args{
      .kv_c = to_view("kv_c", kv_c, kDecodeDtypes),
      .k_pe = to_view("k_pe", k_pe, kDecodeDtypes),
      .slot_mapping = to_view("slot_mapping", slot_mapping, kInt64Dtype),
      .k_cache = cache_view(k_cache, k_cache_e4m3),
      .cache_format = static_cast<CacheFormat>(cache_format),
      .k_scale = k_scale ? to_view("k_scale", *k_scale, kFloat32Dtype) : TensorView{},
      .status = status ? status_buffer(*status) : Buffer{},
      .stream = to_stream(stream),
  };
  nb::gil_scoped_release unlocked;
  write_cache(args);
}

void run_reset_status(const Output& status, uintptr_t stream) {
  const Buffer buffer = status_buffer(status);
  nb::gil_scoped_release unlocked;
  reset_status(buffer, to_stream(stream));
}

}  // namespace

void bind_cache(nb::module_& m) {
  m.def("write_cache", &run_write_cache, nb::arg("kv_c"), nb::arg("k_pe"), nb::arg("slot_mapping"), nb::arg("k_cache"),
        nb::arg("status").none(), nb::arg("cache_format"), nb::arg("k_scale").none(), nb::arg("k_cache_e4m3"),
        nb::arg("stream"),
        "Checks every argument, then writes each token's [kv_c, k_pe] row into its slot of k_cache, quantized "
        "for an FP8 cache_format (a kernel on `stream` for CUDA); out-of-range slots are recorded in `status` "
        "when given.");
  m.def("reset_status", &run_reset_status, nb::arg("status"), nb::arg("stream"),
        "Sets a status array to ok (a 4-byte memset on `stream` for CUDA).");
  m.attr("write_status_bytes") = kStatusArrayBytes;
}

}  // namespace openmla::python
