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


def load_file(path: Path, name: str):
    """Import the Python file at `path` (an example's or a benchmark's module) as module `name`, once.

    The tests reach into examples/ and bench/ this way, never by putting
    those folders on sys.path; whatever the file does to sys.path while it
    loads is undone.
    """
    import importlib.util

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    saved = sys.path[:]
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path[:] = saved
    return module


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


#: Modules a one-shot request must not import: each costs milliseconds at every
#: interpreter start (ARCHITECTURE.md, "Interpreter start is the floor"), or, for
#: the last ones, is needed only by resident mode or by an error answer.
EXPENSIVE_MODULES = frozenset({
    "socket", "signal", "re", "logging", "subprocess", "json", "argparse", "urllib.parse", "email",
    "tempfile", "tomllib", "sqlite3", "typing", "enum", "selectors", "traceback", "collections",
    "__future__", "_socket", "scgi_inetd.resident", "scgi_inetd.listener", "scgi_inetd.answer",
})


#: How many scgi_inetd modules a one-shot `scgi-run SCRIPT` and `scgi-wsgi` load:
#: the package, options, protocol, reader, logsink and paths, and cgi_cli,
#: cgi_exec, cgi_env or wsgi_cli, wsgi, wsgi_input. Each is a file to find and
#: load per request (paths, 0.2 M instructions, spares them os: 5 M).
ONE_SHOT_MODULES = 9
#: What os brings: neither front-end's one-shot path imports them (paths says why).
OS_MODULES = frozenset({"os", "posixpath", "stat", "_collections_abc"})


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


# Processes.

def wait_for(condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `condition` until it is true; fail the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """`pid` runs (exists and is no zombie)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def children_of(pid: int, zombies: bool = False) -> set[int]:
    """Live processes whose parent is `pid` (and, with `zombies`, those it has not reaped yet)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and int(fields[1]) == pid and (zombies or fields[0] != "Z"):
                found.add(int(entry))
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time `pid` has used."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_all(sock) -> bytes:
    """Everything the peer sends until it closes."""
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


class ResidentServer:
    """One of our programs serving resident on `listen` (unix:PATH or HOST:PORT), its log in `log`.

    Started from a test; `close()` (the `serving` fixture calls it) ends it
    and whatever it left running, so a failed test leaves no process behind.
    """

    def __init__(self, program: str, *args, listen: str, log: Path | None = None, env=None,
                 launcher: tuple[str, ...] = (), umask: int = -1, stdin=None) -> None:
        import subprocess

        self.address = listen
        self.log = log
        logging = ["--stderr", str(log)] if log is not None else []
        argv = python_cmd(program, "--listen", listen, *logging, *map(str, args))
        self.process = subprocess.Popen([*launcher, *argv], env=child_env(env), umask=umask,
                                        stdin=subprocess.DEVNULL if stdin is None else stdin)
        self.pid = self.process.pid
        wait_for(self.listening, 15, what=f"{program} to listen on {listen}")

    @property
    def path(self) -> Path:
        """The socket's path (a unix address)."""
        assert self.address.startswith("unix:"), self.address
        return Path(self.address[5:])

    def accepts(self) -> bool:
        """A connection to the address succeeds."""
        from scgi_inetd.client import connect

        try:
            connect(self.address, 1).close()
        except OSError:
            return False
        return True

    def listening(self) -> bool:
        assert self.process.poll() is None, "the server exited"
        if self.address.startswith("unix:"):
            return os.path.exists(self.address[5:])  # bound under another name, renamed once listening
        return self.accepts()  # the server logs one empty connection

    def call(self, *args, **kwargs):
        from scgi_inetd.client import call

        kwargs.setdefault("timeout", 20)
        return call(self.address, *args, **kwargs)

    def connect(self, timeout: float = 20):
        from scgi_inetd.client import connect

        return connect(self.address, timeout)

    def raw(self, data: bytes, timeout: float = 20) -> bytes:
        """Send `data` as it is; everything the server answers."""
        from scgi_inetd.client import exchange

        with self.connect(timeout) as sock:
            return exchange(sock, data)

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log is not None and self.log.exists() else []

    def children(self, zombies: bool = False) -> set[int]:
        """Its live child processes (with `zombies`, the unreaped ones too)."""
        return children_of(self.pid, zombies)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then its exit status."""
        import signal

        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def close(self) -> None:
        """End the server (SIGTERM, SIGKILL if need be) and any process it left."""
        import signal
        import subprocess

        left = self.children()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in left:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
