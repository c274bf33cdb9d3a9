#!/usr/bin/env python3
"""Prints an openmla-bench result file as a Markdown table (for the README and docs).

usage: python3 bench/table.py RESULTS.jsonl
"""

import json
import sys
from pathlib import Path


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    records = [json.loads(line) for line in Path(argv[1]).read_text().splitlines() if line.strip()]
    roofline = next((r for r in records if r["type"] == "roofline"), None)
    if roofline is None:
        raise SystemExit(f"{argv[1]}: no roofline record")
    print(f"{roofline['device']}: copy {roofline['copy_gbps']:,.0f} GB/s, cuBLAS bf16 GEMM "
          f"{roofline['gemm_tflops']:,.0f} TFLOPS (measured in the same run); CUDA-graph timed, median.\n")
    print("| case | µs | GB/s | % copy | TFLOPS | % GEMM | plan µs | best peer µs (H200) | target | "
          "of target | vs peer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in records:
        if r["type"] != "case":
            continue
        if "error" in r:
            print(f"| {r['name']} | failed: {r['error']} ||||||||||")
            continue
        if "target" in r:
            peer = f"{r['target_peer_us']:,.1f} ({r['target_peer']})"
            met = " **met**" if r["target_met"] else ""
            target = f"{r['target']} | {r['of_target']:.2f}{met} | {r['vs_peer']:.2f}×"
        else:
            peer, target = "—", "— | — | —"
        print(f"| {r['name']} | {r['decode_us']:,.1f} | {r['gbps']:,.0f} | {r['pct_copy']:.0f}% | "
              f"{r['tflops']:,.0f} | {r['pct_gemm']:.0f}% | {r['plan_us']:.1f} | {peer} | {target} |")


if __name__ == "__main__":
    main(sys.argv)
