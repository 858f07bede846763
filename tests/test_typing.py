"""The package type-checks (the [mypy] configuration in setup.cfg), and says so to its users (py.typed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import scgi_inetd
from tests.support import REPO


def test_mypy_passes(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install '.[test]' installs it)")
    # The source is what is typed: the checkout's, even when the suite tests the installed wheel.
    # Each run has its own cache: two suites run side by side on one checkout (.ci/run's 3.12 and
    # 3.13) would otherwise share .mypy_cache in it, and one mypy reading what the other is
    # writing stops with an INTERNAL ERROR.
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "setup.cfg"),
                             "--cache-dir", str(tmp_path / "mypy-cache"), str(REPO / "scgi_inetd")],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_ships_py_typed():
    """PEP 561: without the marker a user's type checker ignores our annotations (checkout or installed wheel)."""
    assert (Path(scgi_inetd.__file__).parent / "py.typed").is_file()
