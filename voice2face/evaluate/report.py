"""Reports of either protocol: a table with intervals, JSON, and the duration-sweep plot.

A report is a dict with `description`, `chance` and `durations`: duration
label -> metric -> {value, ci95, n}.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def duration_label(d: float | None) -> str:
    return "whole" if d is None else f"{d:g}s"


def format_table(report: dict) -> str:
    """Rows: metrics; columns: durations; each cell value [95% CI]."""
    durations = list(report["durations"])
    metrics = list(next(iter(report["durations"].values())))
    lines = [f"{'metric':<32}" + "".join(f"{d:>22}" for d in durations)]
    for m in metrics:
        cells = []
        for d in durations:
            r = report["durations"][d][m]
            cells.append(f"{r['value']:.3f} [{r['ci95'][0]:.3f},{r['ci95'][1]:.3f}]")
        lines.append(f"{m:<32}" + "".join(f"{c:>22}" for c in cells))
    chance = ", ".join(f"{k} {v:.3f}" for k, v in report.get("chance", {}).items())
    lines.append(f"{report['description']}; chance: {chance}")
    return "\n".join(lines)


def sweep_plot(report: dict, path: str | Path) -> Path:
    """Each metric against the length of speech used."""
    durations = list(report["durations"])
    metrics = list(next(iter(report["durations"].values())))
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    x = np.arange(len(durations))
    paired = colormaps["tab20"].colors  # 10 dark, then 10 light colours: more metrics than the default 10
    ax.set_prop_cycle(color=list(paired[::2] + paired[1::2]))
    for m in metrics:
        values = [report["durations"][d][m]["value"] for d in durations]
        lo = [report["durations"][d][m]["ci95"][0] for d in durations]
        hi = [report["durations"][d][m]["ci95"][1] for d in durations]
        ax.plot(x, values, marker="o", label=m)
        ax.fill_between(x, lo, hi, alpha=0.12)
    ax.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xticks(x, durations)
    ax.set_xlabel("speech used (first N seconds)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"Duration sweep: {report['description']}", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(path))
    return Path(path)


def write_report(report: dict, json_path: str | Path, plot_path: str | Path) -> None:
    Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
    sweep_plot(report, plot_path)
