"""What the tests share: where the repository is, and how to start its programs.

By default the tests exercise this checkout: child processes import the
package from it (PYTHONPATH) and the programs are its bin/ scripts, whether
or not the package is installed. With SCGI_INETD_TEST_INSTALLED=1 they
exercise what is installed in the running interpreter's environment instead
(the package in site-packages, the scripts and man pages pip put beside
it): .ci/run does that with the built wheel, so a file the wheel lacks
fails the suite. The examples, benchmarks and test data are still read from
this tree.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
PYTHON = sys.executable
#: Test the installed package and programs, not the checkout's.
INSTALLED = os.environ.get("SCGI_INETD_TEST_INSTALLED") == "1"
BIN = Path(sysconfig.get_path("scripts")) if INSTALLED else REPO / "bin"
MAN = Path(sys.prefix) / "share" / "man" / "man1" if INSTALLED else REPO / "man"


def use_installed_package() -> None:
    """Import scgi_inetd from site-packages before any test module can import the checkout's.

    pytest puts the repository first on sys.path to import the tests
    package; once scgi_inetd is in sys.modules, every submodule comes from
    the installed copy whatever sys.path holds.
    """
    checkout = [entry for entry in sys.path if Path(entry or ".").resolve() == REPO]
    for entry in checkout:
        sys.path.remove(entry)
    try:
        import scgi_inetd
    finally:
        sys.path[:0] = checkout
    if Path(scgi_inetd.__file__).resolve().parent == REPO / "scgi_inetd":
        raise RuntimeError(f"SCGI_INETD_TEST_INSTALLED=1 but scgi_inetd comes from the checkout: {scgi_inetd.__file__}")


def python_cmd(program: str, *args: str) -> list[str]:
    """argv running `bin/<program>` (or any script path) with this interpreter."""
    path = BIN / program if "/" not in program else Path(program)
    return [PYTHON, str(path), *map(str, args)]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that must import the scgi_inetd under test (the checkout's, or the installed one).

    Installed, the virtualenv's site-packages is named too: inetd starts
    `python` with argv[0] set to the program's name, and an interpreter
    that cannot find its own path does not find its virtualenv either.
    """
    env = dict(os.environ)
    first = sysconfig.get_path("purelib") if INSTALLED else str(REPO)
    env["PYTHONPATH"] = first + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
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


#: How many scgi_inetd modules a one-shot `scgi-run SCRIPT` and `scgi-wsgi` load:
#: the package, options, protocol, reader and logsink, and cgi_cli, cgi_exec,
#: cgi_env or wsgi_cli, wsgi, wsgi_input. Each is a file to find and load per request.
ONE_SHOT_MODULES = 8


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
