#!/usr/bin/env python3
"""Plots target/bench/results.json (written by `venus-bench compare`) as a PNG.

    python3 tests/bench/plot.py RESULTS.json OUT.png

Left: speed relative to native lavapipe per row and column (native time / time, or
rate / native rate: 1 = as fast as native, above is faster), log scale, with the
targets' thresholds. Right: protocol encode and decode throughput against the
1 GB/s target.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "native_busy": "#7f7f7f",
    "ours_inproc": "#1f77b4",
    "ours_vtest": "#2ca02c",
    "mesa_ours": "#ff7f0e",
    "ours_virgl": "#9467bd",
    "mesa_virgl": "#d62728",
}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        res = json.load(f)
    columns = [c for c in res["columns"] if c["id"] != "native"]
    rows = [
        r
        for r in res["rows"]
        if any("speed_vs_native" in cell and cell["speed_vs_native"] for cell in r["cells"].values())
    ]

    fig, (ax, axp) = plt.subplots(
        1, 2, figsize=(15, 8), gridspec_kw={"width_ratios": [5, 1]}
    )
    width = 0.8 / max(1, len(columns))
    for i, col in enumerate(columns):
        xs, ys, labels = [], [], []
        for j, row in enumerate(rows):
            cell = row["cells"].get(col["id"], {})
            speed = cell.get("speed_vs_native")
            if speed:
                xs.append(j + (i - (len(columns) - 1) / 2) * width)
                ys.append(speed)
                labels.append(speed)
        bars = ax.bar(
            xs, ys, width, label=col["title"], color=COLORS.get(col["id"], None)
        )
        for b, v in zip(bars, labels):
            text = f"{v:.2g}" if v < 10 else f"{v:.0f}"
            ax.annotate(
                text,
                (b.get_x() + b.get_width() / 2, b.get_height()),
                ha="center",
                va="bottom",
                fontsize=6,
                rotation=90,
            )
    ax.set_yscale("log")
    ax.axhline(1.0, color="black", linewidth=1)
    ax.axhline(0.95, color="gray", linewidth=0.8, linestyle="--")
    ax.axhline(1 / 3, color="gray", linewidth=0.8, linestyle=":")
    ax.text(-0.5, 0.95, " 95 % of native", va="top", ha="left", fontsize=7, color="gray")
    ax.text(-0.5, 1 / 3, " 1/3 of native speed (3× the time)", va="top", ha="left", fontsize=7, color="gray")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["title"] for r in rows], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("speed relative to native lavapipe (log; 1 = native, higher is faster)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3)
    ax.set_title("Ratios to native (median of every run)", fontsize=10)

    proto = [r for r in res["rows"] if r["id"] in ("encode", "decode")]
    vals = []
    for r in proto:
        cell = r["cells"].get("ours_inproc", {})
        vals.append(cell.get("median") or 0)
    axp.bar([r["title"].replace("protocol ", "") for r in proto], vals, color="#2ca02c")
    axp.axhline(1000, color="gray", linestyle="--", linewidth=0.8)
    axp.text(-0.4, 1000, "1 GB/s target", va="bottom", fontsize=7, color="gray")
    for x, v in enumerate(vals):
        axp.annotate(f"{v:.0f}", (x, v), ha="center", va="bottom", fontsize=8)
    axp.set_ylabel("MB/s")
    axp.set_title("Protocol (our crate)", fontsize=10)

    machine = res.get("machine", {})
    commit = (res.get("commit") or "?")[:12]
    fig.suptitle(
        f"venus-rs benchmarks, {res.get('date', '?')}, commit {commit}, "
        f"{machine.get('cpu', '?')} ×{machine.get('nproc', '?')}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
