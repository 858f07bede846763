"""Draw bench/run's cost curves as small PNGs (600x400): python charts.py CHARTS.json DIR.

CHARTS.json is a list of bench/curves.py Chart objects (as dicts); each is
drawn to DIR/NAME.png. Needs matplotlib, a bench-only dependency (a full
bench/run installs it into the peers' virtualenv and runs this with it).
Our series are solid lines, the peers' dashed; the PNG is saved with a
palette of 256 colours, which keeps it small (a third of the RGB file).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's own dependency)

PLAIN = FuncFormatter(lambda value, _: f"{value:g}")
PALETTE = 256


def draw(chart: dict) -> Image.Image:
    """The chart, rendered (RGB)."""
    many = len(chart["series"]) > 5
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
        axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.yaxis.set_major_formatter(PLAIN)
        axes.yaxis.set_minor_formatter(NullFormatter())
    if chart["xticks"]:
        axes.set_xticks([x for x, _ in chart["xticks"]], [label for _, label in chart["xticks"]])
        axes.xaxis.set_minor_locator(NullLocator())
    axes.set_title(chart["title"], fontsize=10)
    axes.set_xlabel(chart["x"], fontsize=8)
    axes.set_ylabel(chart["y"], fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(True, alpha=0.3)
    if many:  # below the axes, in two columns, so no line is hidden
        axes.legend(fontsize=6, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    else:
        axes.legend(fontsize=6, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=100, format="png")
    plt.close(figure)
    return Image.open(buffer).convert("RGB")


def main() -> int:
    charts = json.loads(Path(sys.argv[1]).read_text())
    directory = Path(sys.argv[2])
    for chart in charts:
        draw(chart).quantize(colors=PALETTE, method=Image.Quantize.FASTOCTREE).save(
            directory / f"{chart['name']}.png", optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
