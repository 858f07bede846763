"""What the scgi-run tests share: running the shim as inetd would, and writing scripts."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from scgi_inetd.client import build_params, exec_exchange
from scgi_inetd.protocol import Response, encode_request, parse_response

from .support import child_env, python_cmd

#: The real interpreter, not a wrapper: scripts' shebang lines use it.
PYTHON = os.path.realpath(sys.executable)


def scgi_run(*args: str) -> list[str]:
    return python_cmd("scgi-run", *map(str, args))


def run_raw(args, request: bytes, *, timeout: float = 30.0, env=None) -> bytes:
    """Every byte scgi-run (with ``args``) wrote on the connection for ``request``."""
    return exec_exchange(scgi_run(*args), request, timeout=timeout, env=child_env(env))


def request(method: str = "GET", uri: str = "/", *, body: bytes = b"", params=None, headers=()) -> bytes:
    return encode_request(build_params(method, uri, headers, body, params), body)


def run(args, method: str = "GET", uri: str = "/", *, body: bytes = b"", params=None,
        headers=(), timeout: float = 30.0, env=None) -> Response:
    """One request through ``scgi-run ARGS`` spawned with the connection on fds 0, 1, 2."""
    raw = run_raw(args, request(method, uri, body=body, params=params, headers=headers),
                  timeout=timeout, env=env)
    return parse_response(raw)


def write_script(path: Path, text: str, mode: int = 0o755) -> Path:
    """A script file; ``{python}`` in the text is the real interpreter's path."""
    path.write_text(text.replace("{python}", PYTHON))
    path.chmod(mode)
    return path


def is_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (gone, or a zombie waiting for init)."""
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


EXECUTABLE = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
