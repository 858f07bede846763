"""Request bodies: delivered whole before the program's answer is relayed, in every mode.

nginx 1.22 stops sending the request body as soon as the first response
byte arrives (ARCHITECTURE.md), so each exchange here sends the body the
way nginx does: only until the gateway starts to answer. A program that
prints its header before reading its body then gets its whole body only
if the gateway took it first. Real processes over real sockets: scgi-run
and scgi-wsgi one-shot (a socketpair on fds 0, 1, 2, as inetd gives) and
resident (--listen).
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest

from scgi_inetd.protocol import parse_response

from .cgi_support import log_lines, request, write_script
from .support import REPO, alive, child_env, python_cmd, read_all, wait_for

# Prints its header, then reads its body: the natural order in a shell script.
HEADER_FIRST_SUM = ("#!/bin/sh\nprintf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n'\n"
                    "head -c \"$CONTENT_LENGTH\" | sha256sum | cut -d' ' -f1\n")
IGNORES_BODY = "#!/bin/sh\nprintf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nignored\\n'\n"
STDIN_KIND = ("#!/bin/sh\ntouch \"$0.ran\"\nprintf 'Status: 200 OK\\r\\n\\r\\n'\n"
              "readlink /proc/self/fd/0\n")

CGI_MODES = {
    "exec": (),
    "fix-status": ("--fix-status",),
    "resident": ("--listen",),
    "resident-fix-status": ("--listen", "--fix-status"),
}


def nginx_exchange(sock: socket.socket, data: bytes, timeout: float = 30.0) -> bytes:
    """Send ``data`` as nginx does (stop sending once the answer begins), then read to EOF.

    nginx never half-closes its side: neither does this.
    """
    sock.settimeout(timeout)
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while view:
        readable, writable, _ = select.select([sock], [sock], [], max(deadline - time.monotonic(), 0))
        if readable:
            break
        if not writable:
            raise TimeoutError("the gateway neither read the request nor answered")
        view = view[sock.send(view[:1 << 16]):]
    return read_all(sock)


class OneShot:
    """A program started per connection with the connection on fds 0, 1 and 2, as inetd does."""

    def __init__(self, argv: list[str], log: Path, launcher: tuple[str, ...] = ()) -> None:
        self.argv = [*launcher, *argv]
        self.log = log
        self.processes: list[subprocess.Popen] = []

    def connect(self) -> socket.socket:
        ours, theirs = socket.socketpair()
        with theirs:
            self.processes.append(subprocess.Popen(self.argv, stdin=theirs, stdout=theirs,
                                                   stderr=theirs, env=child_env()))
        return ours

    def children(self, zombies: bool = False) -> set[int]:
        """The programs started that still run (one that has exited is done, reaped or not)."""
        return {p.pid for p in self.processes if alive(p.pid)}

    def close(self) -> None:
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def gateway(tmp_path, serving):
    """start(program, mode_flags, *args): the program one-shot, or resident when the flags say --listen."""
    started = []

    def start(program: str, flags: tuple[str, ...], *args, launcher: tuple[str, ...] = ()):
        log = f"{program}-{len(started)}.log"
        options = [flag for flag in flags if flag != "--listen"]
        if "--listen" in flags:
            started.append(serving(program, *options, *args, log=log, launcher=launcher))
        else:
            argv = python_cmd(program, "--stderr", tmp_path / log, *options, *args)
            started.append(OneShot(argv, tmp_path / log, launcher))
        return started[-1]

    yield start
    for each in started:
        if isinstance(each, OneShot):
            each.close()
        else:
            assert each.process.poll() is None, "the resident server died"
            each.stop(20)  # serving ends it for good if this fails


def cgi(gateway, tmp_path: Path, mode: str, text: str, *args, launcher=()):
    script = write_script(tmp_path / "script.sh", text)
    return gateway("scgi-run", CGI_MODES[mode], *args, script, launcher=launcher), script


def ask(server, body: bytes = b"", method: str = "POST", **kwargs):
    with server.connect() as sock:
        return parse_response(nginx_exchange(sock, request(method, "/x", body=body, **kwargs)))


@pytest.mark.parametrize("mode", CGI_MODES)
def test_a_script_that_answers_before_reading_gets_its_whole_body(gateway, tmp_path, mode):
    body = os.urandom(10 << 20)
    server, _ = cgi(gateway, tmp_path, mode, HEADER_FIRST_SUM)
    response = ask(server, body)
    assert response.status == 200
    assert response.body.strip() == hashlib.sha256(body).hexdigest().encode()


@pytest.mark.parametrize("mode", CGI_MODES)
def test_a_script_that_ignores_its_body_leaves_no_reset(gateway, tmp_path, mode):
    """Unread data on the socket at exit would make the kernel reset the connection."""
    server, _ = cgi(gateway, tmp_path, mode, IGNORES_BODY)
    for size in (60_000, 4 << 20):
        response = ask(server, b"b" * size)
        assert (response.status, response.body) == (200, b"ignored\n")


@pytest.mark.parametrize("mode", CGI_MODES)
def test_stdin_is_the_spool_or_dev_null(gateway, tmp_path, mode):
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    server, _ = cgi(gateway, tmp_path, mode, STDIN_KIND, "--spool-dir", spool_dir)
    assert ask(server, method="GET").body == b"/dev/null\n"
    assert ask(server, b"small").body.startswith(b"/memfd:scgi-body")
    on_disk = ask(server, b"L" * (2 << 20)).body.decode()
    assert on_disk.startswith(f"{spool_dir}/") and on_disk.endswith(" (deleted)\n"), on_disk
    assert list(spool_dir.iterdir()) == []


@pytest.mark.parametrize("mode", ["exec", "resident"])
def test_stream_body_leaves_the_body_on_the_connection(gateway, tmp_path, mode):
    server, _ = cgi(gateway, tmp_path, mode, STDIN_KIND, "--stream-body")
    assert ask(server, method="GET").body.startswith(b"socket:[")


@pytest.mark.parametrize("mode", CGI_MODES)
def test_max_body_refuses_before_reading(gateway, tmp_path, mode):
    server, script = cgi(gateway, tmp_path, mode, STDIN_KIND, "--max-body", "1000")
    assert ask(server, b"x" * 1000).status == 200
    Path(f"{script}.ran").unlink()
    response = ask(server, b"x" * 1001)
    assert response.status == 413 and ("Content-Type", "text/plain; charset=utf-8") in response.headers
    assert b"over the limit of 1000" in response.body
    assert not Path(f"{script}.ran").exists()
    assert [line for line in log_lines(server.log) if "413" in line] != []


def send_then_stop(server, data: bytes, *, close: bool) -> bytes:
    """Send ``data`` (a request cut short), then half-close or go silent; the whole answer."""
    with server.connect() as sock:
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(20)
        return read_all(sock)


@pytest.mark.parametrize("mode", CGI_MODES)
@pytest.mark.parametrize("close, status", [(True, 400), (False, 408)])
def test_a_body_cut_short_or_stalled_runs_nothing(gateway, tmp_path, mode, close, status):
    server, script = cgi(gateway, tmp_path, mode, STDIN_KIND, "--body-timeout", "0.5")
    full = request("POST", "/x", body=b"y" * (3 << 20))
    started = time.monotonic()
    response = parse_response(send_then_stop(server, full[:-(1 << 20)], close=close))
    assert response.status == status, response.body
    assert time.monotonic() - started < 10
    assert not Path(f"{script}.ran").exists()
    wait_for(lambda: server.children(zombies=True) == set(), 5, what="the request's processes to end")
    assert ask(server, b"next").status == 200  # a resident server goes on serving


@pytest.mark.parametrize("mode", CGI_MODES)
def test_a_spool_that_cannot_be_written_is_503_and_runs_nothing(gateway, tmp_path, mode):
    # A file-size limit stands in for a full disk (EFBIG where ENOSPC would be).
    server, script = cgi(gateway, tmp_path, mode, STDIN_KIND, launcher=("prlimit", "--fsize=1048576", "--"))
    response = ask(server, b"z" * (2 << 20))
    assert response.status == 503 and b"cannot spool the request body" in response.body
    assert not Path(f"{script}.ran").exists()
    missing, _ = cgi(gateway, tmp_path, mode, STDIN_KIND, "--spool-dir", tmp_path / "missing")
    assert ask(missing, b"z" * (2 << 20)).status == 503
    assert any("missing" in line for line in log_lines(missing.log))
    assert ask(missing, b"small, in memory").status == 200


WSGI_MODES = {"one-shot": (), "resident": ("--listen",), "pool": ("--listen", "--requests-per-child", "50")}


@pytest.mark.parametrize("mode", WSGI_MODES)
def test_an_app_that_answers_before_reading_gets_its_whole_body(gateway, mode):
    body = os.urandom(10 << 20)
    server = gateway("scgi-wsgi", WSGI_MODES[mode], f"{REPO}/tests/body_apps.py:answer_first")
    response = ask(server, body)
    assert response.status == 200
    assert response.body.splitlines()[1] == hashlib.sha256(body).hexdigest().encode()


@pytest.mark.parametrize("mode", WSGI_MODES)
def test_an_app_that_ignores_its_body_leaves_no_reset(gateway, mode):
    server = gateway("scgi-wsgi", WSGI_MODES[mode], f"{REPO}/tests/body_apps.py:ignore_body")
    for size in (60_000, 4 << 20):
        response = ask(server, b"b" * size)
        assert (response.status, response.body) == (200, b"ignored\n")


@pytest.mark.parametrize("mode", WSGI_MODES)
def test_wsgi_max_body_refuses_before_reading(gateway, mode):
    server = gateway("scgi-wsgi", WSGI_MODES[mode], "--max-body", "10",
                     f"{REPO}/tests/body_apps.py:ignore_body")
    assert ask(server, b"x" * 10).status == 200
    response = ask(server, b"x" * 11)
    assert response.status == 413 and b"over the limit of 10" in response.body


def test_a_pool_worker_closes_each_spool(gateway):
    """A worker serves many requests: every spooled body's descriptor must go with its request."""
    server = gateway("scgi-wsgi", ("--listen", "--requests-per-child", "50", "--max-children", "1"),
                     f"{REPO}/tests/body_apps.py:answer_first")
    pids = {int(ask(server, os.urandom(size)).body.split()[1]) for size in (10, 2 << 20)}
    assert len(pids) == 1
    pid = pids.pop()
    before = len(os.listdir(f"/proc/{pid}/fd"))
    for size in (100, 2 << 20) * 5:
        assert ask(server, b"s" * size).status == 200
    assert len(os.listdir(f"/proc/{pid}/fd")) == before


def test_a_slow_upload_blocks_nobody_in_resident_scgi_run(gateway, tmp_path):
    """Resident scgi-run reads bodies in its poll loop: a client stalled mid-body holds one slot only."""
    server, _ = cgi(gateway, tmp_path, "resident", IGNORES_BODY)
    with server.connect() as slow:
        slow.sendall(request("POST", "/x", body=b"q" * (1 << 20))[:-(512 << 10)])
        started = time.monotonic()
        for _ in range(5):
            assert ask(server, b"quick").body == b"ignored\n"
        assert time.monotonic() - started < 5
