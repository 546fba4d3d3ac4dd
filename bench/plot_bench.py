#!/usr/bin/env python3
"""Chart and comparison of a `hylora bench` run (and optionally its HF + PEFT peer, bench/hf_peer.py).

Writes a PNG with, per workload, hylora's measured time beside its floor (bytes and FLOP floors, log scale) and the
HF + PEFT time where the peer ran the same workload; appends the speed-up table to the markdown record if asked.

Usage: python3 bench/plot_bench.py --hylora r.json [--hf hf.json] --png r.png [--append r.md]
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hylora", required=True)
    ap.add_argument("--hf")
    ap.add_argument("--png", required=True)
    ap.add_argument("--append", help="markdown file to append the HF comparison to")
    args = ap.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = json.load(open(args.hylora))
    hf = {w["name"]: w for w in json.load(open(args.hf))["workloads"]} if args.hf else {}
    rows = h["workloads"]
    names = [w["name"] for w in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(rows)), 5))
    width = 0.2
    ax.bar([i - 1.5 * width for i in x], [w["bytes_floor_ms"] for w in rows], width, label="bytes floor")
    ax.bar([i - 0.5 * width for i in x], [w["flop_floor_ms"] for w in rows], width, label="FLOP floor")
    ax.bar([i + 0.5 * width for i in x], [w["ms_median"] for w in rows], width, label="hylora measured")
    if hf:
        ax.bar([i + 1.5 * width for i in x], [hf[n]["ms_median"] if n in hf else 0 for n in names], width,
               label="HF + PEFT measured")
    ax.set_yscale("log")
    ax.set_ylabel("ms per step")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_title(f"{h['architecture']} ({h['layers']}) on {h['card']}, {h['dtype']}, commit {h['commit']}",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)

    lines = []
    if hf:
        lines += ["", f"## HF transformers {json.load(open(args.hf))['transformers']} + PEFT "
                  f"{json.load(open(args.hf))['peft']} on the same card ({json.load(open(args.hf))['dtype']})", "",
                  "| workload | hylora ms | HF + PEFT ms | speed-up |", "|---|---|---|---|"]
        for w in rows:
            if w["name"] in hf:
                p = hf[w["name"]]["ms_median"]
                lines.append(f"| {w['name']} | {w['ms_median']:.3f} | {p:.3f} | {p / w['ms_median']:.2f}× |")
        skipped = json.load(open(args.hf)).get("skipped", [])
        if skipped:
            lines.append("")
            lines.append("HF peer skipped: " + "; ".join(skipped))
    lines.append("")
    lines.append(f"Chart: `{args.png.split('/')[-1]}` (measured vs floor per workload, log scale).")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(args.append, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
