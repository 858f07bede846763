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


def stop_server(process) -> None:
    """SIGTERM a resident server and wait, so a pool's workers go with it (SIGKILL leaves them behind)."""
    import subprocess

    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


#: Modules a one-shot request must not import: each costs milliseconds at every
#: interpreter start (ARCHITECTURE.md, "Interpreter start is the floor"), or, for
#: the last ones, is needed only by resident mode or by an error answer.
EXPENSIVE_MODULES = frozenset({
    "socket", "signal", "re", "logging", "subprocess", "json", "argparse", "urllib.parse", "email",
    "tempfile", "tomllib", "sqlite3", "typing", "enum", "selectors", "traceback", "collections",
    "__future__", "_socket", "scgi_inetd.resident", "scgi_inetd.answer",
})


def one_shot_imports(argv: list[str], request: bytes, log: Path) -> tuple[set[str], bytes]:
    """Modules imported by `argv` (a Python program taking `--stderr LOG`) serving `request` on a socketpair.

    The program runs with -X importtime, whose lines go to fd 2: the pipe until the
    program points fd 2 at `log`, then `log`. Returns the module names and the response.
    """
    import socket
    import subprocess

    argv = [argv[0], "-X", "importtime", *argv[1:]]
    ours, theirs = socket.socketpair()
    with ours, theirs:
        process = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=subprocess.PIPE, env=child_env())
        theirs.close()
        ours.sendall(request)
        ours.settimeout(20)
        chunks = []
        while chunk := ours.recv(65536):
            chunks.append(chunk)
        early = process.communicate(timeout=20)[1].decode()
    lines = (early + log.read_text()).splitlines()
    return {line.rpartition("|")[2].strip() for line in lines if line.startswith("import time:")}, b"".join(chunks)
