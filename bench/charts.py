"""Draw bench/run's cost curves as small PNGs (600x400): python charts.py CHARTS.json DIR.

CHARTS.json is a list of bench/curves.py Chart objects (as dicts); each is
drawn to DIR/NAME.png. Needs matplotlib, a bench-only dependency (a full
bench/run installs it into the peers' virtualenv and runs this with it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullLocator  # noqa: E402

PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


def draw(chart: dict, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    for series in chart["series"]:
        xs = [x for x, _ in series["points"]]
        ys = [y for _, y in series["points"]]
        style = "none" if not series["line"] else "--" if series["dashed"] else "-"
        axes.plot(xs, ys, linestyle=style, marker="o" if series["line"] else "D", markersize=3 if series["line"] else 5,
                  linewidth=1.2, label=series["label"])
    if chart["xlog"]:
        axes.set_xscale("log", base=2)
    if chart["ylog"]:
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(PLAIN)
        axes.yaxis.set_minor_formatter(PLAIN)
    if chart["xticks"]:
        axes.set_xticks([x for x, _ in chart["xticks"]], [label for _, label in chart["xticks"]])
        axes.xaxis.set_minor_locator(NullLocator())
    axes.set_title(chart["title"], fontsize=10)
    axes.set_xlabel(chart["x"], fontsize=8)
    axes.set_ylabel(chart["y"], fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=6, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> int:
    charts = json.loads(Path(sys.argv[1]).read_text())
    directory = Path(sys.argv[2])
    for chart in charts:
        draw(chart, directory / f"{chart['name']}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
