#!/usr/bin/env python3
"""Sums `ncu --csv --page raw --metrics gpu__time_duration.sum` output per kernel name and prints a markdown table:
kernel, launches per step, µs per step, share of the step. Used by scripts/gpu_profile.sh.
  python3 scripts/ncu_kernel_table.py NCU.csv --steps N [--title T] [--out FILE.md]"""
import argparse
import collections
import csv
import io
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--title", default="")
    ap.add_argument("--out")
    a = ap.parse_args()
    text = open(a.csv, errors="replace").read()
    start = text.find('"ID"')
    if start < 0:
        sys.exit("ncu_kernel_table: no kernel rows in the ncu output (did the profiled range run?)")
    rows = list(csv.reader(io.StringIO(text[start:])))
    head = rows[0]
    name_col, time_col = head.index("Kernel Name"), head.index("gpu__time_duration.sum")
    unit = rows[1][time_col] if len(rows) > 1 else ""
    scale = {"ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "nsecond": 1e-3}.get(unit, 1e-3)
    total = collections.Counter()
    count = collections.Counter()
    for r in rows[1:]:
        if len(r) <= time_col or not re.match(r"^[0-9.,]+$", r[time_col]):
            continue
        name = re.sub(r"\(.*", "", r[name_col])[:80]
        total[name] += float(r[time_col].replace(",", "")) * scale
        count[name] += 1
    step_us = sum(total.values()) / a.steps
    lines = [f"### {a.title}: GPU time {step_us:.1f} µs per step ({a.steps} steps profiled)", "",
             "| kernel | launches/step | µs/step | share |", "|---|---|---|---|"]
    for name, us in total.most_common(25):
        lines.append(f"| `{name}` | {count[name] / a.steps:g} | {us / a.steps:.1f} | {100 * us / a.steps / step_us:.1f}% |")
    out = "\n".join(lines) + "\n"
    print(out)
    if a.out:
        open(a.out, "a").write(out + "\n")


if __name__ == "__main__":
    main()
