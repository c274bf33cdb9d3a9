"""openmla.write_cache into FP8 caches (docs/fp8.md): the bytes openmla.quantize_cache gives the same rows
(NumPy through ml_dtypes, torch on the CPU and, where there is a GPU, on CUDA, and the torch op), a cache
written token by token decodes like the reference of its dequantized keys, k_scale read on the device
under CUDA-graph replay, CuPy, and the format errors (nothing written)."""

import numpy as np
import pytest

import openmla
from mla_reference import assert_close, make_case, reference
from test_fp8 import dequantize_656

ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed: no NumPy float8 / bfloat16")

D_V, D_ROPE = 512, 64


def rows(tokens, dtype, seed=0, special=True):
    """kv_c [tokens, 512] and k_pe [tokens, 64] of N(0, sigma^2) values, sigma from 1e-6 to 1e3 by token;
    with `special`, a NaN, an infinity and 0s in a few rows."""
    rng = np.random.default_rng(seed)
    sigma = 10.0 ** rng.uniform(-6, 3, (tokens, 1))
    kv_c = (rng.normal(0, 1, (tokens, D_V)) * sigma).astype(np.float32)
    k_pe = (rng.normal(0, 1, (tokens, D_ROPE)) * sigma).astype(np.float32)
    if special and tokens >= 4:
        kv_c[1, 5] = np.nan
        kv_c[2, 300] = -np.inf
        kv_c[3, 128:256] = 0.0
    return kv_c.astype(dtype), k_pe.astype(dtype)


def plain_cache_with(kv_c, k_pe, slots, num_blocks, page_size):
    """The bfloat16/float16 cache [num_blocks, page_size, 1, 576] that holds each row at its slot (zeros
    elsewhere): what quantize_cache quantizes for comparison."""
    cache = np.zeros((num_blocks, page_size, 1, D_V + D_ROPE), kv_c.dtype)
    for t, s in enumerate(slots):
        if s >= 0:
            cache[s // page_size, s % page_size, 0] = np.concatenate([kv_c[t], k_pe[t]])
    return cache


def written(cache, slots):
    """The rows of the written slots, as bytes [tokens, row bytes]."""
    flat = cache.view(np.uint8).reshape(-1, cache.shape[-1])
    return flat[[s for s in slots if s >= 0]]


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
@pytest.mark.parametrize("fmt", ["fp8_per_tensor", "fp8_656"])
def test_numpy_write_equals_quantize_cache(fmt, dtype):
    kv_c, k_pe = rows(40, dtype)
    slots = np.random.default_rng(1).permutation(3 * 64)[:40].astype(np.int64)
    slots[7] = -1
    plain = plain_cache_with(kv_c, k_pe, slots, 3, 64)
    if fmt == "fp8_per_tensor":
        k_scale = np.array([0.37], np.float32)
        want, _ = openmla.quantize_cache(plain, fmt, scale=float(k_scale[0]))
        cache = np.zeros((3, 64, 1, D_V + D_ROPE), ml_dtypes.float8_e4m3fn)
        assert openmla.write_cache(kv_c, k_pe, cache, slots, k_scale=k_scale) is None
    else:
        want = openmla.quantize_cache(plain, fmt)
        cache = np.zeros((3, 64, 1, 656), np.uint8)
        openmla.write_cache(kv_c, k_pe, cache, slots)
    assert np.array_equal(written(cache, slots), written(want, slots))
    unwritten = np.ones(3 * 64, bool)
    unwritten[slots[slots >= 0]] = False
    assert not cache.view(np.uint8).reshape(3 * 64, -1)[unwritten].any()


def test_numpy_656_as_float8_view_with_explicit_format():
    kv_c, k_pe = rows(10, ml_dtypes.bfloat16, seed=2)
    slots = np.arange(10, dtype=np.int64)
    as_uint8 = np.zeros((1, 16, 1, 656), np.uint8)
    as_fp8 = np.zeros((1, 16, 1, 656), ml_dtypes.float8_e4m3fn)
    openmla.write_cache(kv_c, k_pe, as_uint8, slots)
    openmla.write_cache(kv_c, k_pe, as_fp8, slots, cache_format="fp8_656")
    assert np.array_equal(as_uint8, as_fp8.view(np.uint8))


@pytest.mark.parametrize("fmt", ["fp8_per_tensor", "fp8_656"])
def test_numpy_decode_reads_the_written_cache(fmt):
    """A DeepSeek case's cache written token by token (slots of its pages), then decoded: the reference
    of the dequantized cache, with the design tolerances."""
    case = make_case(3, 2, 16, 1, [100, 1, 257], d_qk=576, page_size=64, seed=4)
    q = case["q"].astype(ml_dtypes.bfloat16)
    page_size = 64
    slots, values = [], []
    for i, s_k in enumerate(case["cache_seqlens"]):
        for j in range(int(s_k)):
            page = case["block_table"][i, j // page_size]
            slots.append(page * page_size + j % page_size)
            values.append(case["k_cache"][page, j % page_size, 0])
    values = np.asarray(values).astype(ml_dtypes.bfloat16)
    slots = np.asarray(slots, np.int64)
    shape = case["k_cache"].shape[:3]
    args = (case["block_table"], case["cache_seqlens"])
    if fmt == "fp8_per_tensor":
        k_scale = np.array([1.0 / 448], np.float32)
        cache = np.zeros(shape + (576,), ml_dtypes.float8_e4m3fn)
        openmla.write_cache(values[:, :D_V], values[:, D_V:], cache, slots, k_scale=k_scale)
        exact = cache.astype(np.float64) * float(k_scale[0])
        out, lse = openmla.decode(q, cache, *args, causal=True, k_scale=k_scale)
    else:
        cache = np.zeros(shape + (656,), np.uint8)
        openmla.write_cache(values[:, :D_V], values[:, D_V:], cache, slots)
        exact = dequantize_656(cache, ml_dtypes.bfloat16)
        out, lse = openmla.decode(q, cache, *args, causal=True)
    ref_out, ref_lse = reference(q, exact, *args, 512, causal=True)
    assert_close(out, lse, ref_out, ref_lse)


def fp8_cache(fmt, num_blocks=2, page_size=4):
    if fmt == "fp8_per_tensor":
        return np.zeros((num_blocks, page_size, 1, D_V + D_ROPE), ml_dtypes.float8_e4m3fn)
    return np.zeros((num_blocks, page_size, 1, 656), np.uint8)


SCALE = np.array([0.5], np.float32)


@pytest.mark.parametrize(
    "fmt, change, error, message",
    [
        ("fp8_per_tensor", lambda a: {"kv_c": a["kv_c"].astype(np.float32), "k_pe": a["k_pe"].astype(np.float32)},
         ValueError, "openmla: kv_c: expected dtype bf16 or fp16, given fp32"),
        ("fp8_per_tensor", lambda a: {"k_scale": None}, ValueError,  # inferred as fp8_656
         r"openmla: k_cache.size\(3\): expected 656 \(bytes per token with cache_format fp8_656\), given 576"),
        ("fp8_per_tensor", lambda a: {"cache_format": "fp8_per_tensor", "k_scale": None}, ValueError,
         r"openmla: k_scale: expected rank 1 \[1\], given rank 0"),
        ("fp8_per_tensor", lambda a: {"k_scale": SCALE.astype(np.float16)}, ValueError,
         "openmla: k_scale: expected dtype fp32, given fp16"),
        ("fp8_656", lambda a: {"k_scale": SCALE}, ValueError,
         r"openmla: k_cache: expected dtype fp8_e4m3, given uint8"),
        ("fp8_656", lambda a: {"k_pe": a["k_pe"][:, :32]}, ValueError,
         r"openmla: kv_c.size\(1\) \+ k_pe.size\(1\) \(d_qk\): expected 576 with cache_format fp8_656, given 544"),
        ("fp8_656", lambda a: {"cache_format": "fp8"}, ValueError,
         "openmla: cache_format: expected one of plain, fp8_per_tensor, fp8_656 or None, given 'fp8'"),
        ("fp8_per_tensor", lambda a: {"cache_format": "plain"}, ValueError,
         "openmla: k_cache: expected dtype bf16 or fp16 or fp32, given fp8_e4m3"),
        ("plain", lambda a: {"k_scale": SCALE}, ValueError,  # a float16 cache is inferred as plain
         r"openmla: k_scale: expected none \(a rank-0 view with a null pointer\) with cache_format plain"),
    ],
)
def test_errors_write_nothing(fmt, change, error, message):
    kv_c, k_pe = rows(4, np.float16, special=False)
    k_cache = np.zeros((2, 4, 1, D_V + D_ROPE), np.float16) if fmt == "plain" else fp8_cache(fmt)
    args = {"kv_c": kv_c, "k_pe": k_pe, "k_cache": k_cache, "slot_mapping": np.arange(4, dtype=np.int64),
            "k_scale": SCALE if fmt == "fp8_per_tensor" else None, "cache_format": None}
    args.update(change(args))
    with pytest.raises(error, match=f"^{message}"):
        openmla.write_cache(args["kv_c"], args["k_pe"], args["k_cache"], args["slot_mapping"],
                            k_scale=args["k_scale"], cache_format=args["cache_format"])
    assert not k_cache.view(np.uint8).any()


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is not installed: torch FP8 write tests skipped")


def torch_rows(torch, tokens, dtype, device, seed=0):
    kv_c, k_pe = rows(tokens, np.float32, seed)
    return (torch.from_numpy(kv_c).to(dtype).to(device), torch.from_numpy(k_pe).to(dtype).to(device))


def torch_write_and_quantize(torch, fmt, dtype, device):
    """(written cache, quantize_cache of the plain cache holding the rows) as uint8 [slots, row bytes] of
    the written slots."""
    kv_c, k_pe = torch_rows(torch, 40, dtype, device)
    slots = torch.randperm(3 * 64, generator=torch.Generator().manual_seed(1))[:40].to(device)
    slots[7] = -1
    plain = torch.zeros(3, 64, 1, D_V + D_ROPE, dtype=dtype, device=device)
    used = slots[slots >= 0]
    plain.view(-1, D_V + D_ROPE)[used] = torch.cat([kv_c, k_pe], dim=1)[slots >= 0]
    if fmt == "fp8_per_tensor":
        k_scale = torch.tensor([0.37], device=device)
        want, _ = openmla.quantize_cache(plain, fmt, scale=0.37)
        cache = torch.zeros(3, 64, 1, D_V + D_ROPE, dtype=torch.float8_e4m3fn, device=device)
        openmla.write_cache(kv_c, k_pe, cache, slots, k_scale=k_scale)
    else:
        want = openmla.quantize_cache(plain, fmt)
        cache = torch.zeros(3, 64, 1, 656, dtype=torch.uint8, device=device)
        openmla.write_cache(kv_c, k_pe, cache, slots)
    as_rows = lambda x: x.view(torch.uint8).reshape(3 * 64, -1)[used].cpu()  # noqa: E731
    return as_rows(cache), as_rows(want)


@pytest.mark.parametrize("dtype_name", ["bfloat16", "float16"])
@pytest.mark.parametrize("fmt", ["fp8_per_tensor", "fp8_656"])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch_write_equals_quantize_cache(device, fmt, dtype_name):
    torch = torch_or_skip()
    if device == "cuda" and not (torch.cuda.is_available() and openmla.cuda_available()):
        pytest.skip("no CUDA device")
    got, want = torch_write_and_quantize(torch, fmt, getattr(torch, dtype_name), device)
    assert torch.equal(got, want)


def test_torch_cuda_write_equals_cpu_write():
    torch = torch_or_skip()
    if not (torch.cuda.is_available() and openmla.cuda_available()):
        pytest.skip("no CUDA device")
    for fmt in ("fp8_per_tensor", "fp8_656"):
        on_gpu, _ = torch_write_and_quantize(torch, fmt, torch.bfloat16, "cuda")
        on_cpu, _ = torch_write_and_quantize(torch, fmt, torch.bfloat16, "cpu")
        assert torch.equal(on_gpu, on_cpu), fmt


def test_torch_op_opcheck():
    torch = torch_or_skip()
    kv_c, k_pe = torch_rows(torch, 6, torch.bfloat16, "cpu")
    slots = torch.tensor([3, -1, 0, 5, 7, 1])
    cache = torch.zeros(2, 4, 1, 656, dtype=torch.uint8)
    torch.library.opcheck(torch.ops.openmla.write_cache_, (kv_c, k_pe, slots, cache, None, None, 2))
    # Without test_schema: torch's schema check compares tensors with a product float8_e4m3fn lacks on the CPU.
    scaled = torch.zeros(2, 4, 1, 576, dtype=torch.float8_e4m3fn)
    torch.library.opcheck(torch.ops.openmla.write_cache_, (kv_c, k_pe, slots, scaled, None, torch.tensor([0.5]), 1),
                          test_utils=("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"))


def test_torch_cuda_graph_replays_with_a_new_scale():
    torch = torch_or_skip()
    if not (torch.cuda.is_available() and openmla.cuda_available()):
        pytest.skip("no CUDA device")
    kv_c, k_pe = torch_rows(torch, 64, torch.bfloat16, "cuda", seed=3)
    slots = torch.arange(64, device="cuda")
    k_scale = torch.tensor([0.5], device="cuda")
    cache = torch.zeros(1, 64, 1, 576, dtype=torch.float8_e4m3fn, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        openmla.write_cache(kv_c, k_pe, cache, slots, k_scale=k_scale)  # warm-up before capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        openmla.write_cache(kv_c, k_pe, cache, slots, k_scale=k_scale)
    k_scale.fill_(0.01)
    graph.replay()
    torch.cuda.synchronize()
    plain = torch.cat([kv_c, k_pe], dim=1).view(1, 64, 1, 576)
    want, _ = openmla.quantize_cache(plain, "fp8_per_tensor", scale=0.01)
    assert torch.equal(cache.view(torch.uint8), want.view(torch.uint8))
