"""bench/run --quick end to end, so the benchmark against the peers cannot rot.

Not a timed test: it checks that every path of the benchmark is set up,
answers what it should and is measured, not how fast, and that the cost
curves are measured for our paths (and drawn, where matplotlib is there).
Peers that are not installed (flup, scgi, uWSGI, aioscgi live in the
benchmark's own virtualenv, which --quick does not create) are skipped by
bench/run itself, saying so.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import time

import pytest

from tests.support import REPO, load_file

stack = load_file(REPO / "examples" / "stack" / "stack.py", "scgi_stack")

PROGRAMS = ("nginx", "inetd", "wrk", "fcgiwrap", "curl", "cc")


def require_programs() -> None:
    """Skip with the reason when a program is missing; fail under CI, where it must run."""
    missing = stack.missing_programs(PROGRAMS)
    if not missing:
        return
    reason = "bench/run needs: " + "; ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def row(report: str, first_cell: str) -> list[str]:
    """The cells after the first of the table row that starts with `first_cell`."""
    line = next((line for line in report.splitlines() if line.startswith(f"| {first_cell} |")), None)
    assert line is not None, f"no row {first_cell!r} in:\n{report}"
    assert "skipped" not in line, line
    return [cell.strip() for cell in line.strip().strip("|").split("|")[1:]]


def figures(cell: str, count: int) -> list[float]:
    """The `count` numbers in a cell ("1234 / 2.5", "13, 11.4, 0.2"); fails on a cell without them."""
    numbers = re.findall(r"[-+]?\d+(?:\.\d+)?", cell)
    assert len(numbers) >= count, f"expected {count} figures in {cell!r}"
    return [float(number) for number in numbers[:count]]


def test_quick_run_measures_every_path_of_ours(tmp_path) -> None:
    require_programs()
    started = time.monotonic()
    charts = tmp_path / "charts"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "run"), "--quick", "--charts", str(charts)],
                          capture_output=True, text=True, timeout=240)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"bench/run --quick exited {done.returncode}:\n{done.stderr[-3000:]}"
    report = done.stdout
    for name in ("floor: python -I -c pass, via nginx+inetd (502)", "scgi-wsgi hello", "scgi-run + hello.sh",
                 "scgi-run + hello (C)", "fcgiwrap + hello.sh", "fcgiwrap + wsgiref CGIHandler hello",
                 "scgi-run resident + hello (C)", "scgi-wsgi resident hello",
                 "scgi-wsgi resident --requests-per-child 1000 hello",
                 "scgi-wsgi download (wsgi.file_wrapper)", "scgi-run upload (exec; C discard)"):
        assert " / " in row(report, name)[0], f"no figures for {name}"
    assert "## Targets" in report and "## Machine, versions, commands" in report
    curves = report.split("## Cost as work grows", 1)[-1].split("## Targets", 1)[0]
    assert curves != report, "no cost curves in the report"
    # Concurrency (--quick: 64 connections only): requests/s and p99 for every resident mode of ours.
    for name in ("scgi-wsgi resident hello", "scgi-wsgi resident --requests-per-child 1000 hello",
                 "scgi-run resident + hello (C)", "scgi-run resident + hello.sh"):
        cells = row(curves, name)
        assert len(cells) == 1 and min(figures(cells[0], 2)) > 0, cells
    # Header size: three figures per parser (µs per parse, per KB) from 0.5 to 256 KB, and the growth.
    for size in ("0.5 KB", "1.0 KB", "4.0 KB", "16.0 KB", "64.0 KB", "256.0 KB"):
        assert all(min(figures(cell, 2)) > 0 for cell in row(curves, size))
    assert "Growth from 4 to 256 KB" in curves
    # Body size: requests and CPU per request for both front-ends, up to 10 MiB.
    for size in ("0 B", "1 KiB", "64 KiB", "1 MiB", "10 MiB"):
        cells = row(curves, size)
        assert len(cells) == 2 and all(figures(cell, 3)[0] >= 2 for cell in cells), cells
    # Modules imported: the import series and the real programs, placed by their package modules.
    assert figures(row(curves, "import the first 0")[0], 1) == [0]
    for name in ("scgi-wsgi hello", "scgi-run SCRIPT (C hello)", "scgi-run DIR/ (C hello)",
                 "scgi-bootmenu menu (iPXE, known MAC)"):
        modules, _, cost, _ = (figures(cell, 1)[0] for cell in row(curves, name))
        assert modules >= 8 and cost > 0, (name, modules, cost)
    # Charts: drawn (a PNG each) where matplotlib can be imported, or said not to be.
    if "Charts drawn" in curves:
        drawn = sorted(path.name for path in charts.glob("*.png"))
        assert drawn == ["body-size.png", "concurrency-p99.png", "concurrency-rps.png", "header-size.png",
                         "modules.png"], drawn
        for path in charts.glob("*.png"):
            head = path.read_bytes()[:24]  # the signature, then the IHDR chunk: width, height
            assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (600, 400), path
    else:
        assert "Charts not drawn: matplotlib" in curves
    print(f"bench/run --quick took {elapsed:.0f} s")
