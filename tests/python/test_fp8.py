"""FP8 caches (docs/fp8.md) through NumPy (ml_dtypes.float8_e4m3fn), torch on the CPU and, where there is
a GPU, torch on CUDA: decode against the float64 reference of the dequantized cache, quantize_cache's
byte layout, FlashMLA's is_fp8_kvcache call, and the format errors."""

import numpy as np
import pytest

import openmla
from mla_reference import assert_close, make_case, reference

ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed: no NumPy float8 / bfloat16")


def dequantize_656(cache, rope_dtype):
    """float64 [..., 576] from FlashMLA's tokens [..., 656] (uint8), written from docs/fp8.md."""
    cache = np.ascontiguousarray(cache).view(np.uint8)
    values = cache[..., :512].view(ml_dtypes.float8_e4m3fn).astype(np.float64)
    scales = cache[..., 512:528].view("<f4").astype(np.float64)  # [..., 4]
    rope = cache[..., 528:656].view(rope_dtype).astype(np.float64)  # [..., 64]
    return np.concatenate([values * np.repeat(scales, 128, axis=-1), rope], axis=-1)


def deepseek_case(seed=0, seqlens=(100, 0, 257), s_q=2, h_q=16):
    return make_case(len(seqlens), s_q, h_q, 1, list(seqlens), d_qk=576, page_size=64, seed=seed)


def check_numpy(fmt, dtype, causal):
    case = deepseek_case()
    q = case["q"].astype(dtype)
    k_cache = case["k_cache"].astype(dtype)
    if fmt == "fp8_per_tensor":
        cache, k_scale = openmla.quantize_cache(k_cache, "fp8_per_tensor")
        assert cache.dtype == ml_dtypes.float8_e4m3fn and k_scale.dtype == np.float32 and k_scale.shape == (1,)
        exact = cache.astype(np.float64) * float(k_scale[0])
        out, lse = openmla.decode(q, cache, case["block_table"], case["cache_seqlens"], causal=causal, k_scale=k_scale)
    else:
        cache = openmla.quantize_cache(k_cache, "fp8_656")
        assert cache.dtype == np.uint8 and cache.shape == k_cache.shape[:3] + (656,)
        exact = dequantize_656(cache, dtype)
        out, lse = openmla.decode(q, cache, case["block_table"], case["cache_seqlens"], causal=causal)
    ref_out, ref_lse = reference(q, exact, case["block_table"], case["cache_seqlens"], 512, causal=causal)
    assert_close(out, lse, ref_out, ref_lse)


@pytest.mark.parametrize("fmt", ["fp8_per_tensor", "fp8_656"])
@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
def test_numpy_matches_reference_of_dequantized_cache(fmt, dtype):
    check_numpy(fmt, dtype, causal=True)


def test_numpy_float32_queries_read_the_656_rope_as_bf16():
    """A float32 cache's 656-byte tokens hold the RoPE part as bf16 (2 bytes a value; quantize_cache's
    rule), and a float32 decode on the CPU reads it so."""
    case = deepseek_case(seed=3)
    q = case["q"].astype(np.float32)
    cache = openmla.quantize_cache(case["k_cache"].astype(np.float32), "fp8_656")
    exact = dequantize_656(cache, ml_dtypes.bfloat16)
    out, lse = openmla.decode(q, cache, case["block_table"], case["cache_seqlens"], causal=True)
    ref_out, ref_lse = reference(q, exact, case["block_table"], case["cache_seqlens"], 512, causal=True)
    assert_close(out, lse, ref_out, ref_lse)


def test_quantize_656_layout_byte_by_byte():
    k = np.zeros((1, 1, 1, 576), np.float32)
    k[..., 0] = 448.0  # tile 0: scale 1
    k[..., 130] = -2.0  # tile 1: scale 2^-7 (448 * 2^-8 < 2 <= 448 * 2^-7), value -256
    k[..., 256] = np.nan  # tile 2: NaN scale, NaN values
    k[..., 512] = 1.5  # first RoPE value
    cache = openmla.quantize_cache(k.astype(ml_dtypes.bfloat16), "fp8_656")[0, 0, 0]  # [656]
    assert cache[0] == 0x7E and cache[130] == 0xF8 and cache[131] == 0  # 448, -256, 0 in e4m3
    assert cache[256] == 0x7F and cache[257] == 0x7F  # NaN
    assert cache[512:516].view("<u4")[0] == 0x3F800000  # 1.0
    assert cache[516:520].view("<u4")[0] == 0x3C000000  # 2^-7
    assert cache[520:524].view("<u4")[0] == 0x7FC00000  # NaN
    assert cache[524:528].view("<u4")[0] == 0x09800000  # 2^-108, the smallest holding 1e-30: an all-zero tile
    assert cache[528:530].view(ml_dtypes.bfloat16)[0] == 1.5


def test_quantize_656_scales_are_powers_of_two_so_keys_are_exact_in_bf16():
    """The portable GPU kernel rounds each dequantized value (e4m3 x scale) to q's dtype before its
    products. With scales that are not powers of two that rounding moves a score by ~1e-5, beyond the lse
    bound of a row that sees one key (an H200 failed test_torch_matches_reference[cuda-fp8_656] so); a
    power-of-two scale makes every product exact in bf16 and fp16."""
    case = deepseek_case(seed=5)
    for dtype in (ml_dtypes.bfloat16, np.float16):
        cache = openmla.quantize_cache(case["k_cache"].astype(dtype), "fp8_656")
        scales = cache[..., 512:528].view("<f4")
        finite = scales[np.isfinite(scales)]
        mantissa, _ = np.frexp(finite)
        assert finite.size and (mantissa == 0.5).all()
        keys = dequantize_656(cache, dtype)
        used = np.isfinite(keys).all(axis=-1)
        assert np.array_equal(keys[used].astype(dtype).astype(np.float64), keys[used])


def test_fp8_dtype_view_of_the_656_cache():
    case = deepseek_case(seed=1, s_q=1)
    q = case["q"].astype(ml_dtypes.bfloat16)
    cache = openmla.quantize_cache(case["k_cache"].astype(ml_dtypes.bfloat16), "fp8_656")
    as_uint8 = openmla.decode(q, cache, case["block_table"], case["cache_seqlens"])
    as_fp8 = openmla.decode(q, cache.view(ml_dtypes.float8_e4m3fn), case["block_table"], case["cache_seqlens"],
                            cache_format="fp8_656")
    assert np.array_equal(as_uint8[0].view(np.uint16), as_fp8[0].view(np.uint16))


def test_flash_mla_is_fp8_kvcache():
    case = deepseek_case(seed=2, s_q=1, seqlens=(40, 300))
    q = case["q"].astype(ml_dtypes.bfloat16)
    cache = openmla.quantize_cache(case["k_cache"].astype(ml_dtypes.bfloat16), "fp8_656")
    metadata = openmla.get_mla_metadata(case["cache_seqlens"], 16, 1, is_fp8_kvcache=True)
    out, lse = openmla.flash_mla_with_kvcache(q, cache, case["block_table"], case["cache_seqlens"], 512, *metadata,
                                              is_fp8_kvcache=True)
    ref_out, ref_lse = reference(q, dequantize_656(cache, ml_dtypes.bfloat16), case["block_table"],
                                 case["cache_seqlens"], 512)
    assert_close(out, lse, ref_out, ref_lse)
    with pytest.raises(ValueError, match="^openmla: k_cache: expected dtype bf16, given uint8"):
        openmla.flash_mla_with_kvcache(q, cache, case["block_table"], case["cache_seqlens"], 512, *metadata)


def test_format_errors():
    case = deepseek_case(seed=3, s_q=1)
    q = case["q"].astype(ml_dtypes.bfloat16)
    cache, k_scale = openmla.quantize_cache(case["k_cache"].astype(ml_dtypes.bfloat16), "fp8_per_tensor")
    args = (case["block_table"], case["cache_seqlens"])
    with pytest.raises(ValueError, match=r"^openmla: k_scale: expected rank 1 \[1\], given rank 0"):
        openmla.decode(q, cache, *args, cache_format="fp8_per_tensor")
    with pytest.raises(ValueError, match=r"^openmla: k_cache.size\(3\): expected 656"):
        openmla.decode(q, cache, *args)  # no k_scale: read as the 656-byte format
    with pytest.raises(ValueError, match="^openmla: k_scale: expected dtype fp32, given bf16"):
        openmla.decode(q, cache, *args, k_scale=k_scale.astype(ml_dtypes.bfloat16))
    with pytest.raises(ValueError, match="^openmla: cache_format: expected one of plain, fp8_per_tensor, fp8_656"):
        openmla.decode(q, cache, *args, k_scale=k_scale, cache_format="fp8")


def torch_or_skip():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("fmt", ["fp8_per_tensor", "fp8_656"])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch_matches_reference(fmt, device):
    torch = torch_or_skip()
    if device == "cuda" and not (torch.cuda.is_available() and openmla.cuda_available()):
        pytest.skip("no CUDA device")
    case = deepseek_case(seed=4, seqlens=(70, 1, 0, 400))
    to = lambda x: torch.from_numpy(x).to(device)  # noqa: E731
    q = to(case["q"]).bfloat16()
    k_cache = to(case["k_cache"]).bfloat16()
    block_table, cache_seqlens = to(case["block_table"]), to(case["cache_seqlens"])
    if fmt == "fp8_per_tensor":
        cache, k_scale = openmla.quantize_cache(k_cache, fmt)
        assert cache.dtype == torch.float8_e4m3fn and k_scale.device == q.device
        exact = cache.cpu().double().numpy() * float(k_scale[0])
    else:
        cache, k_scale = openmla.quantize_cache(k_cache, fmt), None
        assert cache.dtype == torch.uint8 and cache.shape[-1] == 656
        exact = dequantize_656(cache.cpu().numpy(), ml_dtypes.bfloat16)
    out, lse = openmla.decode(q, cache, block_table, cache_seqlens, causal=True, k_scale=k_scale)
    q64 = q.float().cpu().numpy()
    ref_out, ref_lse = reference(q64, exact, case["block_table"], case["cache_seqlens"], 512, causal=True)
    assert_close(out.float().cpu().numpy(), lse.cpu().numpy(), ref_out, ref_lse)


def test_torch_quantize_matches_numpy():
    """Both frameworks write the same bytes for the same cache (its used page: NaN payloads may differ)."""
    torch = torch_or_skip()
    case = make_case(1, 1, 1, 2, [64], d_qk=576, page_size=64)
    page = case["block_table"][0, 0]
    k = case["k_cache"].astype(ml_dtypes.bfloat16)
    k_t = torch.from_numpy(k.view(np.uint16)).view(torch.bfloat16)
    for fmt in ("fp8_per_tensor", "fp8_656"):
        from_numpy, from_torch = openmla.quantize_cache(k, fmt), openmla.quantize_cache(k_t, fmt)
        if fmt == "fp8_per_tensor":
            assert from_numpy[1][0] == from_torch[1][0].item()
            from_numpy, from_torch = from_numpy[0].view(np.uint8), from_torch[0].view(torch.uint8)
        assert np.array_equal(from_numpy[page], from_torch.numpy()[page])
