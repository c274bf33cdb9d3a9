"""Bad input raises ValueError (the library's message) or TypeError, and writes nothing."""

import numpy as np
import pytest

import openmla
from mla_reference import make_case

SENTINEL = 7.0

DECODE_DTYPES = "bfloat16 or float16 (float32 too on the CPU)"  # as the TypeErrors name them


@pytest.fixture
def args():
    """A valid fp16 call with caller-owned out / lse filled with a sentinel."""
    case = make_case(2, 1, 4, 1, [30, 60])
    q = case["q"].astype(np.float16)  # [b, s_q, h_q, d_qk]
    k_cache = case["k_cache"].astype(np.float16)
    plan = openmla.plan(case["cache_seqlens"], h_q=4)
    return {
        "q": q,
        "k_cache": k_cache,
        "block_table": case["block_table"].copy(),
        "cache_seqlens": case["cache_seqlens"].copy(),
        "plan": plan,
        "workspace": np.empty(openmla.workspace_size(q, plan, d_v=32), np.uint8),
        "out": np.full((2, 1, 4, 32), SENTINEL, np.float16),  # [b, s_q, h_q, d_v]
        "lse": np.full((2, 4, 1), SENTINEL, np.float32),  # [b, h_q, s_q]
    }


def call(args, **changes):
    a = {**args, **changes}
    return openmla.decode(a.pop("q"), a.pop("k_cache"), a.pop("block_table"), a.pop("cache_seqlens"),
                          d_v=a.pop("d_v", 32), **a)


def untouched(args):
    return (args["out"] == SENTINEL).all() and (args["lse"] == SENTINEL).all()


def test_valid_call_writes(args):
    call(args)
    assert not untouched(args)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {"q": a["q"].astype(np.float32)}, "k_cache: expected dtype fp32, given fp16"),
        (lambda a: {"k_cache": a["k_cache"][:, :, :, :32]}, "k_cache.size(3): expected 64 (d_qk from q)"),
        (lambda a: {"q": np.repeat(a["q"], 2, axis=2)[:, :, :3]}, "h_q"),
        (lambda a: {"q": a["q"][0]}, "q: expected rank 4"),
        (lambda a: {"cache_seqlens": np.array([30, -1], np.int32)}, "cache_seqlens[1]: expected >= 0"),
        (lambda a: {"cache_seqlens": np.array([30, 1000], np.int32)}, "cache_seqlens[1]: expected <= "),
        (lambda a: {"block_table": np.where(a["block_table"] == a["block_table"][1, 1], 10**6,
                                            a["block_table"]).astype(np.int32)},
         "block_table[1, 1]: expected a page index in"),
        (lambda a: {"block_table": a["block_table"][:1]}, "block_table.size(0): expected 2 (b from q)"),
        (lambda a: {"out": np.full((2, 1, 4, 16), SENTINEL, np.float16)}, "out.size(3): expected 32 (d_v)"),
        (lambda a: {"lse": np.full((2, 4, 1), SENTINEL, np.float16)}, "lse: expected dtype fp32"),
        (lambda a: {"workspace": a["workspace"][:100]}, "(openmla.workspace_size)"),
        (lambda a: {"workspace": a["workspace"].reshape(-1, 1)[::2]}, "workspace: expected a C-contiguous"),
        (lambda a: {"softmax_scale": float("nan")}, "softmax_scale: expected a finite value"),
        (lambda a: {"plan": openmla.plan(np.array([5, 5, 5], np.int32), h_q=4)}, "plan.config.batch"),
        (lambda a: {"plan": openmla.Plan(a["plan"].tile_scheduler_metadata,
                                         openmla.plan(a["cache_seqlens"], h_q=4).num_splits)},
         "num_splits: expected the num_splits returned together"),
        (lambda a: {"plan": openmla.Plan(a["plan"].tile_scheduler_metadata[:1], a["plan"].num_splits)},
         "tile_scheduler_metadata: expected >= "),
    ],
)
def test_value_errors_write_nothing(args, change, message):
    with pytest.raises(ValueError, match=None) as error:
        call(args, **change(args))
    assert message in str(error.value)
    assert str(error.value).startswith("openmla: ")
    assert untouched(args)


def test_d_v_larger_than_d_qk(args):
    with pytest.raises(ValueError, match=r"d_v: expected 1 <= d_v <= d_qk = 64, given 65"):
        openmla.decode(args["q"], args["k_cache"], args["block_table"], args["cache_seqlens"], d_v=65)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {"q": a["q"].astype(np.float64)}, f"q: expected dtype {DECODE_DTYPES}, given float64"),
        (lambda a: {"q": a["q"].view(np.uint16)}, f"q: expected dtype {DECODE_DTYPES}, given uint16"),
        (lambda a: {"out": a["out"].view(np.uint16)}, f"out: expected dtype {DECODE_DTYPES}, given uint16"),
        (lambda a: {"lse": a["lse"].astype(np.float64)}, "lse: expected dtype float32, given float64"),
        (lambda a: {"q": a["q"].tolist()}, "q: expected a numpy.ndarray, torch.Tensor or cupy.ndarray"),
        (lambda a: {"block_table": a["block_table"].astype(np.int64)},
         "openmla: block_table: expected dtype int32, given int64"),
        (lambda a: {"cache_seqlens": a["cache_seqlens"].astype(np.int64)},
         "openmla: cache_seqlens: expected dtype int32, given int64"),
        (lambda a: {"plan": "plan"}, "plan: expected an openmla.Plan (tile_scheduler_metadata, num_splits), given str"),
        (lambda a: {"plan": tuple(a["plan"]) + (None,)}, "plan: expected an openmla.Plan (tile_scheduler_metadata, "
                                                         "num_splits), given a tuple of 3"),
        (lambda a: {"plan": ([0], [0])}, "openmla: tile_scheduler_metadata: expected a numpy.ndarray"),
        (lambda a: {"d_v": 32.0}, "openmla: d_v: expected an int, given float 32.0"),
        (lambda a: {"d_v": "32"}, "openmla: d_v: expected an int, given str '32'"),
        (lambda a: {"softmax_scale": "0.1"}, "openmla: softmax_scale: expected a float or None, given str '0.1'"),
        (lambda a: {"causal": 1}, "openmla: causal: expected a bool, given int 1"),
        (lambda a: {"check": None}, "openmla: check: expected a bool, given NoneType None"),
        (lambda a: {"plan": openmla.Plan(a["plan"].tile_scheduler_metadata.view(np.float32),
                                         a["plan"].num_splits)},
         "tile_scheduler_metadata: expected dtype int32"),
    ],
)
def test_type_errors_write_nothing(args, change, message):
    with pytest.raises(TypeError) as error:
        call(args, **change(args))
    assert message in str(error.value)
    assert untouched(args)


@pytest.mark.parametrize("name", ["out", "lse", "workspace"])
def test_read_only_output_is_refused(args, name):
    args[name].flags.writeable = False
    with pytest.raises(ValueError, match=rf"^openmla: {name}: expected a writable array, given a read-only one$"):
        call(args)
    assert untouched(args)


def test_read_only_plan_out_is_refused():
    lengths = np.array([3, 4], np.int32)
    schedule = np.empty_like(openmla.plan(lengths, h_q=4, num_parts=2).tile_scheduler_metadata)
    schedule.flags.writeable = False
    with pytest.raises(ValueError, match="^openmla: out: expected a writable array, given a read-only one$"):
        openmla.plan(lengths, h_q=4, num_parts=2, out=schedule)


def test_a_plain_tuple_is_a_plan(args):
    """The 2-tuple that FlashMLA's get_mla_metadata returns works wherever a Plan does."""
    plan = tuple(args["plan"])
    workspace = np.empty(openmla.workspace_size(args["q"], plan, d_v=32), np.uint8)
    call(args, plan=plan, workspace=workspace)
    assert not untouched(args)


def test_huge_d_v_is_refused_before_any_allocation(args):
    """d_v = 2^40 would size a 48 TiB workspace: the d_v <= d_qk rule is checked first."""
    with pytest.raises(ValueError, match=r"^openmla: d_v: expected 1 <= d_v <= d_qk = 64, given 1099511627776$"):
        openmla.decode(args["q"], args["k_cache"], args["block_table"], args["cache_seqlens"], d_v=2**40)
    with pytest.raises(ValueError, match=r"^openmla: d_v: expected 1 <= d_v <= d_qk = 64, given 1099511627776$"):
        openmla.workspace_size(args["q"], args["plan"], d_v=2**40)
    with pytest.raises(ValueError, match=r"^openmla: d_v: expected 1 <= d_v <= d_qk = 64, given 0$"):
        openmla.workspace_size(args["q"], args["plan"], d_v=0)


def test_page_size_zero(args):
    """The message NumPy, torch and C++ share for a cache without slots."""
    with pytest.raises(ValueError, match=r"k_cache.size\(1\) \(page_size\): expected >= 1, given 0"):
        call(args, k_cache=args["k_cache"][:, :0])
    assert untouched(args)


def test_plan_errors():
    lengths = np.array([3, 4], np.int32)
    with pytest.raises(ValueError, match="h_q: expected a multiple of h_kv = 2, given 3"):
        openmla.plan(lengths, h_q=3, h_kv=2)
    with pytest.raises(ValueError, match="num_parts: expected >= 0"):
        openmla.plan(lengths, h_q=4, num_parts=-1)
    with pytest.raises(ValueError, match="cache_seqlens: expected rank 1"):
        openmla.plan(lengths.reshape(1, 2), h_q=4)
    with pytest.raises(TypeError, match="cache_seqlens: expected dtype"):
        openmla.plan(lengths.astype(np.int64), h_q=4)
    with pytest.raises(ValueError, match=r"out: expected shape \(2, "):
        openmla.plan(lengths, h_q=4, num_parts=2, out=np.empty((2, 1), np.int32))
    with pytest.raises(ValueError, match=r"^openmla: cache_format: expected one of plain, fp8_per_tensor, fp8_656, "
                                         r"given 'fp8'$"):
        openmla.plan(lengths, h_q=4, cache_format="fp8")
    with pytest.raises(TypeError, match="h_q"):
        openmla.plan(lengths)
    with pytest.raises(TypeError, match="^openmla: cache_seqlens: expected dtype int32, given int64$"):
        openmla.plan(lengths.astype(np.int64), h_q=4)
    with pytest.raises(TypeError, match="^openmla: h_q: expected an int, given float 4.0$"):
        openmla.plan(lengths, h_q=4.0)
    with pytest.raises(TypeError, match="^openmla: num_parts: expected an int, given NoneType None$"):
        openmla.plan(lengths, h_q=4, num_parts=None)


def test_flash_mla_with_foreign_metadata(args):
    """Metadata that is not a pair from get_mla_metadata is refused (FlashMLA's own, say)."""
    foreign_metadata = np.zeros((132, 8), np.int32)  # FlashMLA: [num_sm_parts, 8]
    foreign_splits = np.zeros(3, np.int32)  # [b + 1]
    with pytest.raises(ValueError, match="num_splits: expected the num_splits returned together"):
        openmla.flash_mla_with_kvcache(args["q"], args["k_cache"], args["block_table"], args["cache_seqlens"],
                                       32, foreign_metadata, foreign_splits)
