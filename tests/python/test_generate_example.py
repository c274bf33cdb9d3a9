"""examples/generate.py: its step clock measures known intervals and refuses non-positive ones, and the tiny
CPU run reports sane figures (positive prefill seconds, positive finite decode rates, eager's tokens)."""

import importlib.util
import math
import pathlib
import time

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: examples/generate.py tests skipped")
pytest.importorskip("transformers", reason="transformers is not installed: examples/generate.py tests skipped")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "generate.py"
PREFILL_S, STEP_S, NEW_TOKENS = 0.05, 0.02, 4
SLACK_S = 0.5  # a sleep may overrun on a loaded machine, never fall short


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("generate_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeModel:
    """generate() sleeps PREFILL_S, then STEP_S per decode step, calling the logits processors after each
    'forward' as transformers does; `steps` of them in all."""

    def __init__(self, steps):
        self.steps, self.synced = steps, 0

    def sync(self):
        self.synced += 1

    def generate(self, logits_processor, **kwargs):
        scores = torch.zeros(1, 8)  # [b, vocab]
        for step in range(self.steps):
            time.sleep(PREFILL_S if step == 0 else STEP_S)
            scores = logits_processor(None, scores)
        return scores


def test_timed_generate_measures_known_sleeps(example):
    model = FakeModel(NEW_TOKENS)
    _, prefill, decode = example.timed_generate(model, torch.ones(1, 3, dtype=torch.long), NEW_TOKENS, model.sync)
    assert PREFILL_S <= prefill < PREFILL_S + SLACK_S
    decode_s = STEP_S * (NEW_TOKENS - 1)
    assert decode_s <= decode < decode_s + SLACK_S
    assert model.synced == NEW_TOKENS + 1  # before the run and after each step


def test_timed_generate_refuses_a_run_with_missing_steps(example):
    model = FakeModel(NEW_TOKENS - 1)
    with pytest.raises(RuntimeError, match="expected 4 steps, given 3"):
        example.timed_generate(model, torch.ones(1, 3, dtype=torch.long), NEW_TOKENS, model.sync)


@pytest.mark.parametrize("times", [(0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (0.0, 2.0, 1.0), (1.0, 0.0, 2.0)])
def test_step_clock_refuses_non_positive_intervals(example, times):
    ticks = iter(times)
    clock = example.StepClock(lambda: None, now=lambda: next(ticks))
    clock.start()
    for _ in times[1:]:
        clock(None, None)
    with pytest.raises(RuntimeError, match="expected positive prefill and decode intervals"):
        clock.intervals()


def test_step_clock_needs_a_start_and_two_steps(example):
    clock = example.StepClock(lambda: None)
    with pytest.raises(RuntimeError, match="given 0 steps"):
        clock.intervals()
    clock.start()
    clock(None, None)
    with pytest.raises(RuntimeError, match="given 1 steps"):
        clock.intervals()


def check_rows(rows, impls):
    assert [row["impl"] for row in rows] == impls
    for row in rows:
        assert row["prefill_s"] > 0
        assert math.isfinite(row["decode_tokens_per_s"]) and row["decode_tokens_per_s"] > 0
        assert 0 < row["attention_share"] <= 1
        assert row["kv_bytes_per_token"] > 0
        assert row["reference"] == impls[0]
        assert row["same_tokens_as_reference"] == 1.0 and row["first_step_differing"] is None  # fp32: exact


def test_tiny_run_reports_sane_figures(example, capsys):
    rows = example.main(["--tiny"])
    check_rows(rows, ["eager", "sdpa", "openmla"])
    assert "| openmla | 2 | 16 |" in capsys.readouterr().out


def test_tiny_run_of_chosen_impls_with_a_chunked_prefill(example):
    rows = example.main(["--tiny", "--impls", "sdpa,openmla", "--prefill-chunk", "4"])
    check_rows(rows, ["sdpa", "openmla"])
    assert all(row["prefill_chunk"] == 4 for row in rows)
