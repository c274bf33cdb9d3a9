#!/usr/bin/env python3
"""Draws an openmla-bench result file: GB/s and TFLOPS per case against the measured roofline.

usage: python3 bench/plot.py RESULTS.jsonl [OUT.png]   (OUT defaults to RESULTS with .png)
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    roofline, cases = None, []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record["type"] == "roofline":
            roofline = record
        elif record["type"] == "case" and "error" not in record:
            cases.append(record)
    if roofline is None:
        raise SystemExit(f"{path}: no roofline record")
    if not cases:
        raise SystemExit(f"{path}: no measured case")
    return roofline, cases


def panel(ax, cases, key, ceiling, ceiling_label, unit, reference, work):
    """Bars of cases[key]; a line at the ceiling; each case's target as a marker."""
    xs = range(len(cases))
    values = [c[key] for c in cases]
    bars = ax.bar(xs, values, color=["tab:blue" if c["bound"] == key_bound(key) else "tab:gray"
                                     for c in cases])
    ax.bar_label(bars, labels=[f"{v:.0f}" for v in values], label_type="center", color="white", fontsize=8)
    ax.axhline(ceiling, color="tab:red", linestyle="--", label=f"{ceiling_label}: {ceiling:.0f} {unit}")
    ref = [(x, reference(c)) for x, c in zip(xs, cases) if "target_kind" in c]
    if ref:
        ax.scatter([x for x, _ in ref], [v for _, v in ref], marker="_", s=400, color="black", zorder=3,
                   label=f"target: the best H200 peer's speed times the required ratio, over the same {work}")
    ax.set_ylabel(unit)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([c["name"] for c in cases], rotation=35, ha="right", fontsize=8)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)


def target_us(c, roofline):
    """The case's target as a time: given for fixed lengths, from the rate over the ceiling for varlen."""
    kind, value = c["target_kind"], c["target_value"]
    if kind == "max_us":
        return value
    if kind == "min_pct_copy":
        return c["bytes"] / (value / 100 * roofline["copy_gbps"] * 1e3)
    return c["flops"] / (value / 100 * roofline["gemm_tflops"] * 1e6)


def key_bound(key):
    return "memory" if key == "gbps" else "compute"


def main(argv):
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    src = Path(argv[1])
    dst = Path(argv[2]) if len(argv) == 3 else src.with_suffix(".png")
    roofline, cases = read(src)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, 1.1 * len(cases) + 3), 10), sharex=True)
    panel(top, cases, "gbps", roofline["copy_gbps"], "device copy", "GB/s",
          lambda c: c["bytes"] / (target_us(c, roofline) * 1e3), "bytes")
    panel(bottom, cases, "tflops", roofline["gemm_tflops"], "cuBLAS bf16 GEMM", "TFLOPS",
          lambda c: c["flops"] / (target_us(c, roofline) * 1e6), "FLOPs")
    top.set_title(f"openmla {roofline['openmla_version']} MLA decode on {roofline['device']} "
                  f"(blue: the case's binding ceiling)")
    fig.tight_layout()
    fig.savefig(dst, dpi=120)
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(sys.argv)
