"""What the tests share: where the repository is, and how to start its programs.

Child processes import the package from this checkout (PYTHONPATH), so a test
run exercises the tree under test whether or not the package is installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parent.parent
BIN = REPO / "bin"
EXAMPLES = REPO / "examples"
PYTHON = sys.executable


def python_cmd(program: str, *args: str) -> list[str]:
    """argv running `bin/<program>` (or any script path) with this interpreter."""
    path = BIN / program if "/" not in program else Path(program)
    return [PYTHON, str(path), *map(str, args)]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that must import scgi_inetd from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env
