"""openmla.merge through NumPy (CPU backend): the merge formula for every dtype, the union of disjoint
page sets decoded apart, the rules for +inf / -inf / NaN parts, any strides, lists of parts, and the
errors (nothing written)."""

import numpy as np
import pytest

import openmla
from mla_reference import assert_close, make_case, reference

SENTINEL = 7.0


def bf16():
    return pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed: no NumPy bfloat16").bfloat16


def random_parts(n, b, s_q, h_q, d_v, seed=0):
    rng = np.random.default_rng(seed)
    out_parts = rng.uniform(-1, 1, (n, b, s_q, h_q, d_v)).astype(np.float32)  # [n, b, s_q, h_q, d_v]
    lse_parts = rng.uniform(-3, 3, (n, b, h_q, s_q)).astype(np.float32)  # [n, b, h_q, s_q]
    return out_parts, lse_parts


def formula(out_parts, lse_parts):
    """float64 merge; parts with an infinite lse left out; rows without a part: out 0, lse +inf; rows
    with a NaN lse: NaN."""
    lse = np.asarray(lse_parts, np.float64).transpose(0, 1, 3, 2)  # [n, b, s_q, h_q]
    finite = np.isfinite(lse)
    top = np.where(finite, lse, -np.inf).max(axis=0)  # [b, s_q, h_q]
    weights = np.where(finite, np.exp(lse - np.where(np.isfinite(top), top, 0)), 0.0)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (weights[..., None] * np.where(finite[..., None], np.asarray(out_parts, np.float64), 0)).sum(axis=0)
        out = np.where(total[..., None] > 0, out / np.where(total > 0, total, 1)[..., None], 0.0)
        merged = np.where(total > 0, top + np.log(np.where(total > 0, total, 1)), np.inf)
    nan_row = np.isnan(lse).any(axis=0)  # [b, s_q, h_q]
    out = np.where(nan_row[..., None], np.nan, out)
    return out, np.where(nan_row, np.nan, merged).transpose(0, 2, 1)


@pytest.mark.parametrize("parts_dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("out_dtype", ["float32", "float16", "bfloat16"])
def test_matches_the_formula(parts_dtype, out_dtype):
    dtypes = {"float32": np.float32, "float16": np.float16}
    parts_t = dtypes.get(parts_dtype) or bf16()
    out_t = dtypes.get(out_dtype) or bf16()
    out_parts, lse_parts = random_parts(3, 2, 2, 5, 40)
    out_parts = out_parts.astype(parts_t)
    out, lse = openmla.merge(out_parts, lse_parts, out=np.empty((2, 2, 5, 40), out_t))
    want_out, want_lse = formula(out_parts.astype(np.float32), lse_parts)
    ulp = {np.dtype(np.float32): 2.0**-23, np.dtype(np.float16): 2.0**-10}.get(np.dtype(out_t), 2.0**-7)
    assert np.all(np.abs(out.astype(np.float64) - want_out) <= 1e-6 + ulp * np.abs(want_out))
    assert np.allclose(lse, want_lse, rtol=1e-6, atol=1e-6)


def test_default_out_follows_the_parts():
    out_parts, lse_parts = random_parts(2, 1, 1, 2, 8)
    out, lse = openmla.merge(out_parts.astype(np.float16), lse_parts)
    assert out.dtype == np.float16 and out.shape == (1, 1, 2, 8) and lse.dtype == np.float32 and lse.shape == (1, 2, 1)


def test_union_of_disjoint_page_sets():
    """Even pages to part 0, odd pages to part 1: two decodes over two block tables, one merge."""
    case = make_case(3, 1, 8, 1, [40, 150, 7], d_qk=48, page_size=16)
    q, k_cache = case["q"].astype(np.float16), case["k_cache"].astype(np.float16)
    table, s_k = case["block_table"], case["cache_seqlens"]
    outs, lses = [], []
    for parity in (0, 1):
        part_table = np.full_like(table, 2147480000)
        lengths = np.zeros_like(s_k)
        for i, n in enumerate(s_k):
            pages = [j for j in range(-(-int(n) // 16)) if j % 2 == parity]
            part_table[i, : len(pages)] = table[i, pages]
            lengths[i] = sum(min(16, int(n) - 16 * j) for j in pages)
        out, lse = openmla.decode(q, k_cache, part_table, lengths, d_v=32)
        outs.append(out)
        lses.append(lse)
    out, lse = openmla.merge(outs, lses)
    assert_close(out, lse, *reference(q, k_cache, table, s_k, 32))


def test_infinite_parts_contribute_nothing_and_are_not_read():
    out_parts, lse_parts = random_parts(2, 2, 1, 3, 16)
    with_empty = np.concatenate([out_parts[:1], np.full((2, 2, 1, 3, 16), np.nan, np.float32), out_parts[1:]])
    lse_with_empty = np.concatenate([lse_parts[:1], np.full((1, 2, 3, 1), np.inf, np.float32),
                                     np.full((1, 2, 3, 1), -np.inf, np.float32), lse_parts[1:]])
    want = openmla.merge(out_parts, lse_parts)
    got = openmla.merge(with_empty, lse_with_empty)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_rows_no_part_saw_and_nan():
    out_parts, lse_parts = random_parts(3, 2, 2, 2, 8)
    lse_parts[:, 0, 1, 0] = np.inf  # row (0, h 1, i 0): no part saw a key
    out_parts[:, 0, 0, 1] = np.nan
    lse_parts[1, 1, 0, 1] = np.nan  # row (1, h 0, i 1): NaN
    out_parts[2, 0, 1, 0, 3] = np.nan  # a contributing part's NaN: element (0, 1, 0, 3) only
    out, lse = openmla.merge(out_parts, lse_parts)
    assert lse[0, 1, 0] == np.inf and (out[0, 0, 1] == 0).all()
    assert np.isnan(lse[1, 0, 1]) and np.isnan(out[1, 1, 0]).all()
    assert np.isnan(out[0, 1, 0, 3]) and np.isfinite(lse[0, 0, 1]) and np.isfinite(np.delete(out[0, 1, 0], 3)).all()


def test_strided_views():
    """out_parts a slice of a wider buffer, lse_parts a transpose, out and lse slices: no copy needed."""
    out_parts, lse_parts = random_parts(3, 2, 2, 4, 16)
    want = openmla.merge(out_parts, lse_parts)
    wide = np.full((3, 2, 2, 6, 20), np.nan, np.float32)
    wide[:, :, :, 1:5, 2:18] = out_parts
    lse_bshq = np.ascontiguousarray(lse_parts.transpose(0, 1, 3, 2))  # [n, b, s_q, h_q]
    out = np.full((2, 2, 5, 16), SENTINEL, np.float32)
    lse = np.full((2, 2, 4), SENTINEL, np.float32)  # [b, s_q, h_q]
    openmla.merge(wide[:, :, :, 1:5, 2:18], lse_bshq.transpose(0, 1, 3, 2), out=out[:, :, :4], lse=lse.transpose(0, 2, 1))
    assert np.array_equal(out[:, :, :4], want[0]) and (out[:, :, 4] == SENTINEL).all()
    assert np.array_equal(lse.transpose(0, 2, 1), want[1])


@pytest.fixture
def arrays():
    out_parts, lse_parts = random_parts(2, 2, 1, 4, 8)
    return {"out_parts": out_parts, "lse_parts": lse_parts, "out": np.full((2, 1, 4, 8), SENTINEL, np.float32),
            "lse": np.full((2, 4, 1), SENTINEL, np.float32)}


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda a: {"out_parts": a["out_parts"][0]}, ValueError,
         r"out_parts: expected rank 5 \[n, b, s_q, h_q, d_v\], given rank 4"),
        (lambda a: {"lse_parts": a["lse_parts"].astype(np.float16)}, ValueError,
         "lse_parts: expected dtype fp32, given fp16"),
        (lambda a: {"lse_parts": a["lse_parts"][:, :, :2]}, ValueError,
         r"lse_parts.size\(2\): expected 4 \(h_q from out_parts\), given 2"),
        (lambda a: {"out_parts": a["out_parts"].astype(np.int32)}, ValueError,
         "out_parts: expected dtype bf16 or fp16 or fp32, given int32"),
        (lambda a: {"out_parts": a["out_parts"].astype(np.float64)}, TypeError, "out_parts: expected dtype"),
        (lambda a: {"out_parts": a["out_parts"].astype(np.uint16)}, TypeError,
         "out_parts: expected dtype bfloat16, float16 or float32, given uint16"),
        (lambda a: {"out": a["out"].view(np.uint16)}, TypeError, "out: expected dtype bfloat16, float16 or float32, "
         "given uint16"),
        (lambda a: {"out_parts": a["out_parts"][..., ::2], "out": a["out"][..., :4]}, ValueError,
         r"out_parts.stride\(4\): expected 1 \(last dim contiguous\), given 2"),
        (lambda a: {"out": np.lib.stride_tricks.as_strided(a["out"], strides=(128, 128, 0, 4))}, ValueError,
         r"out: expected strides under which no two elements share memory, given strides \[32, 32, 0, 1\]"),
        (lambda a: {"lse": a["out"][:, 0, :, :1]}, ValueError,
         "out: expected memory that no input or other output shares, given memory overlapping lse"),
        (lambda a: {"out_parts": []}, ValueError, "out_parts: expected at least one part, given an empty sequence"),
        (lambda a: {"lse": list(a["lse"])}, TypeError, "lse: expected a numpy.ndarray"),
    ],
)
def test_errors_write_nothing(arrays, change, error, message):
    a = {**arrays, **change(arrays)}
    with pytest.raises(error, match=message):
        openmla.merge(a.pop("out_parts"), a.pop("lse_parts"), **a)
    assert (arrays["out"] == SENTINEL).all() and (arrays["lse"] == SENTINEL).all()


def test_output_inside_an_input_is_refused(arrays):
    out_parts = arrays["out_parts"]
    with pytest.raises(ValueError, match="out: expected memory that no input or other output shares, "
                                         "given memory overlapping out_parts"):
        openmla.merge(out_parts, arrays["lse_parts"], out=out_parts[1], lse=arrays["lse"])
    assert (arrays["lse"] == SENTINEL).all()
