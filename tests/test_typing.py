"""The package type-checks (the [mypy] configuration in setup.cfg), and says so to its users (py.typed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import scgi_inetd
from tests.support import REPO


def test_mypy_passes():
    pytest.importorskip("mypy", reason="mypy is not installed (pip install '.[test]' installs it)")
    # The source is what is typed: the checkout's, even when the suite tests the installed wheel.
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "setup.cfg"),
                             str(REPO / "scgi_inetd")],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_package_ships_py_typed():
    """PEP 561: without the marker a user's type checker ignores our annotations (checkout or installed wheel)."""
    assert (Path(scgi_inetd.__file__).parent / "py.typed").is_file()
