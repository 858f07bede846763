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


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


EXECUTABLE = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


#: Writes the environment it gets, one NAME=value a line (read back with dumped()).
DUMP = "#!{python}\nimport os\nos.write(1, b'Status: 200 OK\\r\\n\\r\\n' + b''.join(k + b'=' + v + b'\\n' for k, v in sorted(os.environb.items())))\n"


def dumped(body: bytes) -> dict[bytes, bytes]:
    return dict(line.split(b"=", 1) for line in body.splitlines())


#: Leaves a `sleep 300` child (its pid in SCRIPT.pid), runs {before}, then sleeps itself.
HANG = """#!/bin/sh
sleep 300 &
echo $! > "$0.pid"
{before}
sleep 300
"""


OK_SCRIPT = "#!/bin/sh\nprintf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nran %s\\n' \"$SCRIPT_FILENAME\"\n"
EVIL_SCRIPT = "#!/bin/sh\ntouch \"$0.ran\"\nprintf 'Status: 200 OK\\r\\n\\r\\nevil\\n'\n"

# (SCRIPT_FILENAME relative to tmp_path, or absolute; expected status)
ATTACKS = [
    ("cgi/../outside/x.sh", 400),            # '..' segment
    ("cgi/sub/../../outside/x.sh", 400),     # '..' deeper down
    ("cgi/..", 400),                         # '..' alone
    ("cgi/%2e%2e/outside/x.sh", 404),        # percent-encoded dots are a literal name
    ("cgi/%2E%2E%2Foutside%2Fx.sh", 404),
    ("cgi/link-out.sh", 403),                # symlink to a file outside DIR
    ("cgi/dir-link-out/x.sh", 403),          # symlinked directory leading outside
    ("cgi/loop-a", 403),                     # symlink loop
    ("cgi/dangling", 403),                   # symlink to a path outside DIR
    ("/etc/passwd", 403),                    # absolute path elsewhere
    ("/bin/sh", 403),
    ("outside/x.sh", 403),
    ("cgi-evil/x.sh", 403),                  # prefix confusion: DIR-evil/
    ("cgi", 403),                            # DIR itself, no trailing slash
    ("cgi/", 403),                           # a directory as script
    ("cgi/sub", 403),
    ("cgi/empty-dir/", 403),
    ("cgi/plain.txt", 403),                  # not executable
    ("cgi/fifo", 403),                       # not a regular file
    ("cgi/missing.sh", 404),                 # no such script
    ("cgi/sub/missing/more", 404),
    ("", 400),                               # empty SCRIPT_FILENAME
    ("relative/x.sh", 403),                  # not under DIR at all
    ("cgi/ok.sh\x00.txt", 400),              # NUL byte (the protocol cannot even carry it)
]
