"""exit_now: the bin/ entry points skip interpreter teardown but keep atexit and buffered output."""

from __future__ import annotations

import subprocess

from tests.support import PYTHON, child_env

PROGRAM = """
import atexit, sys
from scgi_inetd.logsink import exit_now
atexit.register(lambda: open(sys.argv[1], "w").write("atexit ran"))
sys.stdout.write("buffered, no newline")
sys.stderr.write("to stderr")
exit_now(7)
print("not reached")
"""


def test_exit_now_runs_atexit_flushes_and_keeps_the_status(tmp_path):
    marker = tmp_path / "marker"
    result = subprocess.run([PYTHON, "-c", PROGRAM, str(marker)], capture_output=True, text=True,
                            env=child_env(), timeout=30)
    assert result.returncode == 7
    assert result.stdout == "buffered, no newline"
    assert result.stderr == "to stderr"
    assert marker.read_text() == "atexit ran"
