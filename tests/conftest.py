"""With SCGI_INETD_TEST_INSTALLED=1 the suite tests the installed package (see tests/support.py).

The fixtures the test modules share are here: no test module imports
another's.
"""

from tests.support import INSTALLED, use_installed_package

if INSTALLED:
    use_installed_package()


import os  # noqa: E402

import pytest  # noqa: E402

from tests.cgi_support import EVIL_SCRIPT, OK_SCRIPT, write_script  # noqa: E402
from tests.support import ResidentServer  # noqa: E402


@pytest.fixture
def serving(tmp_path):
    """Start resident servers (tests.support.ResidentServer, or `kind`, a subclass); all ended afterwards.

    The socket is unix:tmp_path/PROGRAM-N.sock unless `listen` says otherwise;
    the log is tmp_path/`log`, or the server's stderr with log=None.
    """
    started: list[ResidentServer] = []

    def start(program: str, *args, listen: str | None = None, log: str | None = "server.log",
              kind: type[ResidentServer] = ResidentServer, **kwargs) -> ResidentServer:
        listen = listen or f"unix:{tmp_path / f'{program}-{len(started)}.sock'}"
        started.append(kind(program, *args, listen=listen, log=None if log is None else tmp_path / log, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def server(serving):
    """server(*ARGS, launcher=(), env=None): resident `scgi-run --listen unix:... --stderr server.log ARGS`."""
    def start(*args, **kwargs) -> ResidentServer:
        return serving("scgi-run", *args, **kwargs)

    return start


@pytest.fixture
def tree(tmp_path):
    """tmp/cgi (DIR), tmp/cgi-evil (prefix confusion) and tmp/outside, with traps."""
    cgi, evil, outside = tmp_path / "cgi", tmp_path / "cgi-evil", tmp_path / "outside"
    for folder in (cgi, evil, outside, cgi / "sub", cgi / "empty-dir"):
        folder.mkdir()
    write_script(cgi / "ok.sh", OK_SCRIPT)
    write_script(cgi / "sub" / "deep.sh", OK_SCRIPT)
    write_script(cgi / "plain.txt", "not executable\n", mode=0o644)
    write_script(evil / "x.sh", EVIL_SCRIPT)
    write_script(outside / "x.sh", EVIL_SCRIPT)
    os.symlink(outside / "x.sh", cgi / "link-out.sh")
    os.symlink(outside, cgi / "dir-link-out")
    os.symlink(cgi / "ok.sh", cgi / "link-in.sh")
    os.symlink("loop-b", cgi / "loop-a")
    os.symlink("loop-a", cgi / "loop-b")
    os.symlink("/nonexistent/target", cgi / "dangling")
    os.mkfifo(cgi / "fifo")
    return tmp_path
