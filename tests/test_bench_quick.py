"""bench/run --quick end to end, so the benchmark against the peers cannot rot.

Not a timed test: it checks that every path of the benchmark is set up,
answers what it should and is measured, not how fast. Peers that are not
installed (flup, scgi, uWSGI live in the benchmark's own virtualenv, which
--quick does not create) are skipped by bench/run itself, saying so.
"""

from __future__ import annotations

import os
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


def test_quick_run_measures_every_path_of_ours() -> None:
    require_programs()
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(REPO / "bench" / "run"), "--quick"],
                          capture_output=True, text=True, timeout=240)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"bench/run --quick exited {done.returncode}:\n{done.stderr[-3000:]}"
    report = done.stdout
    for row in ("floor: python -I -c pass, via nginx+inetd (502)", "scgi-wsgi hello", "scgi-run + hello.sh",
                "scgi-run + hello (C)", "fcgiwrap + hello.sh", "fcgiwrap + wsgiref CGIHandler hello",
                "scgi-run resident + hello (C)", "scgi-wsgi resident hello",
                "scgi-wsgi resident --requests-per-child 1000 hello",
                "scgi-wsgi download (wsgi.file_wrapper)", "scgi-run upload (exec; C discard)"):
        line = next((line for line in report.splitlines() if line.startswith(f"| {row} |")), None)
        assert line is not None, f"no row {row!r} in:\n{report}"
        assert "skipped" not in line, line
        assert " / " in line, f"no figures: {line}"
    assert "## Targets" in report and "## Machine, versions, commands" in report
    print(f"bench/run --quick took {elapsed:.0f} s")
