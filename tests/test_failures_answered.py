"""Failures that used to get no answer: each now gets a status, a short body and a log line.

An app raising SystemExit or KeyboardInterrupt (in-process, one-shot and
resident); a --stderr log that cannot be opened, under inetd where fd 2 is
the connection (never a traceback down it) and resident with a real stderr
(one line there, exit 1); and an app failing after its first body chunk,
whose TCP connection must end in a reset rather than a clean,
complete-looking end (a unix socket has no reset once the body is read).
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from scgi_inetd.client import call, connect, exec_exchange
from scgi_inetd.protocol import parse_response
from tests.support import REPO, child_env, python_cmd
from tests.wsgi_support import exchange, request_bytes

APPS = str(REPO / "tests" / "wsgi_apps.py")
NOT_OURS = b"NOT OURS"


def exits(environ, start_response):
    raise SystemExit(0)


def interrupted(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    raise KeyboardInterrupt


class ExitingClose:
    def __iter__(self):
        return iter([b"body"])

    def close(self):
        raise SystemExit(1)


@pytest.mark.parametrize("app", [exits, interrupted])
def test_system_exit_and_keyboard_interrupt_get_a_500(app):
    result = exchange(app, request_bytes(), trailing=NOT_OURS)
    assert result.response.status == 500
    assert "Traceback" in result.log and b"Traceback" not in result.raw
    assert result.unread == NOT_OURS


def test_system_exit_in_close_is_logged():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return ExitingClose()

    result = exchange(app, request_bytes())
    assert result.response.body == b"body"
    assert "close() of the response iterable failed" in result.log and "SystemExit" in result.log


@pytest.mark.parametrize("path", ["/exit", "/interrupt"])
def test_system_exit_one_shot_is_a_500_and_a_log_line(tmp_path, path):
    log = tmp_path / "log"
    raw = exec_exchange(python_cmd("scgi-wsgi", APPS, "--stderr", log), request_bytes("GET", path),
                        timeout=20, env=child_env())
    assert parse_response(raw).status == 500
    assert "app raised an exception" in log.read_text()


@pytest.fixture
def resident(serving):
    """scgi-wsgi APPS --listen ADDRESS; the address it serves on."""
    def start(address: str, *args: str) -> str:
        return serving("scgi-wsgi", *args, APPS, listen=address, log="log").address

    return start


@pytest.mark.parametrize("args", [(), ("--requests-per-child", "5", "--max-children", "2")])
def test_system_exit_resident_is_a_500_and_the_server_serves_on(tmp_path, resident, args):
    address = resident(f"unix:{tmp_path}/wsgi.sock", *args)
    for path in ("/exit", "/interrupt", "/exit"):
        assert call(address, uri=path, timeout=20).status == 500
    assert call(address, uri="/", timeout=20).status == 200
    assert (tmp_path / "log").read_text().count("app raised an exception") == 3


UNOPENABLE = "/nonexistent-directory/gateway.log"


@pytest.mark.parametrize("program, args", [
    ("scgi-run", [str(REPO / "examples" / "cgi-bin" / "hello.sh")]),
    ("scgi-wsgi", [APPS]),
    ("scgi-bootmenu", [str(REPO / "tests" / "e2e" / "bootmenu-test.toml")]),
])
def test_an_unopenable_log_under_inetd_is_a_503_never_a_traceback(program, args):
    """fd 2 is the connection: nothing of the failure may go down it but the answer."""
    raw = exec_exchange(python_cmd(program, "--stderr", UNOPENABLE, *args), request_bytes("POST", body=b"x" * 10),
                        timeout=20, env=child_env())
    response = parse_response(raw)
    assert response.status == 503
    assert response.body == b"503 Service Unavailable: the gateway cannot open its log\n"
    assert b"Traceback" not in raw and b"nonexistent" not in raw


@pytest.mark.parametrize("program, args", [
    ("scgi-run", [str(REPO / "examples" / "cgi-bin" / "hello.sh")]),
    ("scgi-wsgi", [APPS]),
])
def test_an_unopenable_log_resident_is_one_line_on_stderr_and_exit_1(tmp_path, program, args):
    process = subprocess.run(python_cmd(program, "--listen", f"unix:{tmp_path}/s.sock", "--stderr", UNOPENABLE,
                                        *args),
                             env=child_env(), stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    assert process.returncode == 1
    [line] = process.stderr.decode().splitlines()
    assert f"cannot open the log '{UNOPENABLE}': No such file or directory" in line
    assert process.stdout == b""


def _read_until_reset(sock: socket.socket) -> tuple[bytes, bool]:
    """What the server sent, and whether the connection ended in a reset (not a clean end)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        return b"".join(chunks), True
    return b"".join(chunks), False


def test_failure_after_the_first_chunk_resets_a_tcp_connection(resident):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = resident(f"127.0.0.1:{port}")
    with connect(address, 20) as sock:
        sock.sendall(request_bytes("GET", "/cut"))
        data, reset = _read_until_reset(sock)
    assert reset, f"clean end after {data!r}"
    with connect(address, 20) as sock:  # a complete response still ends cleanly
        sock.sendall(request_bytes("GET", "/"))
        assert _read_until_reset(sock)[1] is False
