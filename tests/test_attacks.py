"""Resident servers under attack from clients of the socket itself, without nginx in front.

Every resident mode (scgi-run spawning scripts, scgi-wsgi forking per
connection, the scgi-wsgi pool, scgi-bootmenu) with two slots faces clients
that never finish their header (slowloris), that are refused and then
trickle their body (drain-hold), and deaths of the server's parent process.
Legitimate requests must be served throughout, and nothing may be left
running. The timed version with latencies is bench/attack.py.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from scgi_inetd.client import build_params
from scgi_inetd.protocol import encode_request, parse_response
from tests.bootmenu_helpers import MAC, write_config
from tests.support import EXAMPLES, ResidentServer, alive, children_of, read_all, wait_for

#: The start of a header that never completes.
PARTIAL = b"70:CONTENT_LENGTH\x000\x00"
#: A header refused at once (a leading zero), longer than the reader's first read.
MALFORMED = b"012:" + b"x" * 40
SLOTS = ("--max-children", "2")

SNDTIMEO_CGI = """#!/usr/bin/env python3
import socket, struct
with socket.socket(fileno=1) as connection:
    seconds, micros = struct.unpack("ll", connection.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16))
    connection.sendall(f"Status: 200 OK\\r\\n\\r\\n{seconds}".encode())
    connection.detach()
"""
# A worker serves a connection on its own descriptor: the app finds it as the
# one connected stream socket it has (the listener listens; the pool's socketpair is SOCK_SEQPACKET).
SNDTIMEO_APP = """
import os, socket, struct
def connection():
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        if sock.type == socket.SOCK_STREAM and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return sock
        sock.close()
def app(environ, start_response):
    found = connection()
    seconds, micros = struct.unpack("ll", found.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16))
    found.close()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(seconds).encode()]
"""


class Mode:
    """A resident mode: the program, its arguments after the options, and a URI it answers with 200."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        if name == "scgi-run":
            self.program, self.target, self.uri = "scgi-run", [EXAMPLES / "cgi-bin" / "hello.sh"], "/"
        elif name == "scgi-bootmenu":
            self.program, self.target = "scgi-bootmenu", [write_config(tmp_path)]
            self.uri = f"/boot.ipxe?mac={MAC}"
        else:
            self.program, self.target, self.uri = "scgi-wsgi", [EXAMPLES / "hello_wsgi.py"], "/"
        self.options = ["--requests-per-child", "100"] if name == "pool" else []

    def start(self, serving, *options: str, listen: str | None = None) -> ResidentServer:
        return serving(self.program, *self.options, *options, *self.target, listen=listen)


MODES = ["scgi-run", "scgi-wsgi", "pool", "scgi-bootmenu"]


@pytest.fixture(params=MODES)
def mode(request, tmp_path) -> Mode:
    return Mode(request.param, tmp_path)


def open_connections(address: str, count: int, data: bytes) -> list[socket.socket]:
    connections = []
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(address.removeprefix("unix:"))
        sock.sendall(data)
        connections.append(sock)
    return connections


@contextlib.contextmanager
def trickling(socks: list[socket.socket], interval: float):
    """A thread sends a byte on each of `socks` every `interval` seconds while the block runs."""
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(interval):
            for sock in socks:
                try:
                    sock.send(b"x")
                except OSError:
                    pass

    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def served(server: ResidentServer, uri: str, count: int) -> list[int]:
    """The statuses of `count` requests made one after the other, each given 5 s."""
    return [server.call(uri=uri, timeout=5).status for _ in range(count)]


def test_slowloris_holds_no_slot(serving, mode):
    """64 headers that never complete, against 2 slots: every request is still served."""
    server = mode.start(serving, *SLOTS)
    attackers = open_connections(server.address, 64, PARTIAL)
    try:
        time.sleep(0.2)  # all accepted
        assert served(server, mode.uri, 20) == [200] * 20
        workers = 2 if mode.name == "pool" else 0  # and the last request's child, while it exits
        wait_for(lambda: len(server.children()) <= workers, 5, what="no process for the attackers")
    finally:
        for sock in attackers:
            sock.close()


def test_refused_clients_that_trickle_hold_no_slot(serving, mode):
    """16 refused headers whose clients go on sending a byte at a time: the drains take no slot."""
    server = mode.start(serving, *SLOTS)
    attackers = open_connections(server.address, 16, MALFORMED)
    try:
        with trickling(attackers, 0.2):
            assert served(server, mode.uri, 10) == [200] * 10
    finally:
        for sock in attackers:
            sock.close()
    # One line each, once each refused client has been answered (they may still be in the listen queue).
    wait_for(lambda: sum("leading zero" in line for line in server.log_lines()) >= 16, 10, what="16 refusals")
    assert sum("leading zero" in line for line in server.log_lines()) == 16


def test_a_refused_body_is_drained_for_a_bounded_time(serving):
    """A client that trickles after its 400 for ever is cut off after answer.DRAIN_LIMIT seconds."""
    from scgi_inetd.answer import DRAIN_IDLE, DRAIN_LIMIT

    assert DRAIN_IDLE > 0.3  # else the trickle below would end the drain as idle
    server = serving("scgi-wsgi", EXAMPLES / "hello_wsgi.py")
    with server.connect() as sock:
        sock.sendall(MALFORMED)
        started = time.monotonic()
        assert parse_response(read_all(sock)).status == 400  # the answer, then the server's half-close
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while time.monotonic() - started < DRAIN_LIMIT + 5:
                sock.send(b"x")  # a byte every 0.3 s: never idle for DRAIN_IDLE
                time.sleep(0.3)
        took = time.monotonic() - started
    assert DRAIN_LIMIT - 1 < took < DRAIN_LIMIT + 3


def test_one_shot_drain_has_an_absolute_deadline(monkeypatch):
    """answer.finish_connection, which a child's refusal uses, stops at DRAIN_LIMIT however the bytes trickle."""
    from scgi_inetd import answer

    monkeypatch.setattr(answer, "DRAIN_LIMIT", 0.5)
    ours, theirs = socket.socketpair()
    with ours, theirs, trickling([ours], 0.05):
        started = time.monotonic()
        answer.finish_connection(theirs.fileno(), theirs.fileno(), unread=1 << 20)
        took = time.monotonic() - started
    assert 0.4 < took < 1.5


@pytest.mark.parametrize("name", ["scgi-run", "scgi-wsgi", "pool"])
def test_every_connection_handed_on_has_a_send_timeout(serving, tmp_path, name):
    """A client that never reads cannot hold a process for ever: writes to it time out (SO_SNDTIMEO)."""
    from scgi_inetd.resident import SEND_TIMEOUT

    if name == "scgi-run":
        script = tmp_path / "sndtimeo.py"
        script.write_text(SNDTIMEO_CGI)
        script.chmod(0o755)
        server = serving("scgi-run", script)
    else:
        (tmp_path / "sndtimeo_app.py").write_text(SNDTIMEO_APP)
        pool = ["--requests-per-child", "10"] if name == "pool" else []
        server = serving("scgi-wsgi", *pool, f"{tmp_path / 'sndtimeo_app.py'}:app")
    assert server.call().body == str(int(SEND_TIMEOUT)).encode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sigkill_of_the_parent_leaves_no_process_and_the_port_free(serving, mode):
    """The parent killed outright: its workers and children end by themselves; a new server binds at once."""
    address = f"127.0.0.1:{free_port()}"
    server = mode.start(serving, *SLOTS, listen=address)
    assert served(server, mode.uri, 4) == [200] * 4
    workers = 2 if mode.name == "pool" else 0  # the last request's child may still be exiting
    wait_for(lambda: len(server.children()) == workers, 5, what=f"{workers} children")
    left = server.children()
    server.process.kill()
    server.process.wait()
    wait_for(lambda: not any(alive(pid) for pid in left), 5, what="the workers to end")
    again = mode.start(serving, *SLOTS, listen=address)
    assert served(again, mode.uri, 2) == [200] * 2


def test_sighup_stops_gracefully(serving, mode, tmp_path):
    """SIGHUP is a graceful stop: the request in flight is answered, then exit 0 and nothing left."""
    server = mode.start(serving, *SLOTS)
    assert served(server, mode.uri, 2) == [200] * 2
    left = server.children()
    with server.connect() as sock:
        sock.sendall(encode_request(build_params("POST", mode.uri), b"x" * 10)[:-10])  # in progress: no body yet
        time.sleep(0.3)
        server.process.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        sock.sendall(b"x" * 10)
        assert parse_response(read_all(sock)).status in (200, 405)
    assert server.process.wait(15) == 0
    assert not any(alive(pid) for pid in left | children_of(server.pid))
