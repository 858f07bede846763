"""Resident mode with --requests-per-child N > 1: a pool of pre-forked workers, in real processes.

Each test starts bin/scgi-wsgi --listen on a unix socket and talks to it with
the SCGI client. The app (tests/prefork_apps.py) answers with its pid and how
many requests that process has served, so the tests see which worker served
what, and that a worker's state carries over from one request to the next.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from scgi_inetd.client import build_params, call
from scgi_inetd.options import UsageError, parse_serve_options
from scgi_inetd.protocol import encode_request, parse_response
from tests.support import REPO, ResidentServer, alive, child_env, cpu_seconds, python_cmd, read_all, wait_for

APP = str(REPO / "tests" / "prefork_apps.py")


class Pool(ResidentServer):
    """A running scgi-wsgi --requests-per-child server."""

    def get(self, uri: str = "/", body: bytes = b"", timeout: float = 10.0) -> dict:
        response = self.call("POST" if body else "GET", uri, body=body, timeout=timeout)
        assert response.status == 200, response
        return json.loads(response.body)

    def workers(self, count: int) -> set[int]:
        """The pool's workers, once there are `count` of them."""
        wait_for(lambda: len(self.children()) == count, what=f"{count} workers")
        return self.children()


@pytest.fixture
def pool(serving):
    def start(*args: str) -> Pool:
        return serving("scgi-wsgi", *args, APP, log="log", kind=Pool)

    return start


def test_a_header_that_trickles_in_is_passed_back_to_a_worker(pool):
    """A worker that gets a connection without its header hands it to the frame and serves on; the frame
    reads the rest and passes it back whole, to a worker, which serves it like any other."""
    server = pool("--max-children", "1", "--requests-per-child", "100")
    (worker,) = server.workers(1)
    data = encode_request(build_params("POST", "/n/7"), b"7")
    with server.connect() as sock:
        sock.sendall(data[:5])
        time.sleep(0.2)  # held by the frame now, not by the one worker, which serves others meanwhile
        assert [server.get(timeout=5)["pid"] for _ in range(4)] == [worker] * 4
        for piece in (data[5:40], data[40:]):
            sock.sendall(piece)
            time.sleep(0.2)
        answer = json.loads(parse_response(read_all(sock)).body)
    assert answer["body"] == "7" and answer["pid"] == worker
    assert server.log_lines() == []


@pytest.fixture
def worker_side(tmp_path: Path):
    """A pool worker's side (resident._WorkerSide) on a real unix listener, its socketpair's other end, the address."""
    from scgi_inetd import resident

    address = str(tmp_path / "side.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(8)
    listener.setblocking(False)
    channel, frame_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    activity = memoryview(bytearray(8)).cast("d")
    with listener, channel, frame_end:
        yield resident._WorkerSide(listener, channel, activity, 0, 65536), frame_end, address


def connect_and_send_later(address: str, data: bytes | None, delay: float) -> socket.socket:
    """A client connected now that sends `data` after `delay` seconds from a thread (never, for None)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(address)
    if data is not None:
        threading.Timer(delay, client.sendall, (data,)).start()
    return client


def test_a_worker_waits_briefly_for_a_header_on_its_way_instead_of_passing_it(worker_side, monkeypatch):
    """A client connects, then writes: a worker woken by the connect waits HEADER_WAIT for the header and
    serves it itself, and the frame hears nothing of the connection."""
    from scgi_inetd import resident

    monkeypatch.setattr(resident, "HEADER_WAIT", 5.0)
    side, frame_end, address = worker_side
    request = encode_request(build_params("POST", "/on-its-way", body=b"xyz"), b"xyz")
    with connect_and_send_later(address, request, 0.2):
        started = time.monotonic()
        accepted = side.accept()
        waited = time.monotonic() - started
        assert accepted is not None, "the connection was passed to the frame"
        sock, environ, received = accepted
        sock.close()
    assert environ["REQUEST_URI"] == "/on-its-way" and 0.15 < waited < 4
    assert received == b"xyz"  # the body came with the header, in the worker's first read
    with pytest.raises(BlockingIOError):
        frame_end.recv(1, socket.MSG_DONTWAIT)


def test_a_header_that_does_not_come_within_the_wait_goes_to_the_frame(worker_side, monkeypatch):
    from scgi_inetd import resident

    monkeypatch.setattr(resident, "HEADER_WAIT", 0.1)
    side, frame_end, address = worker_side
    with connect_and_send_later(address, b"70:CONT", 0.0) as client:
        time.sleep(0.05)  # the first bytes are in when the worker accepts; the rest never come
        started = time.monotonic()
        assert side.accept() is None
        waited = time.monotonic() - started
        data, ancillary, _, _ = frame_end.recvmsg(100, socket.CMSG_LEN(4), socket.MSG_DONTWAIT)
        assert data == resident.HOLD + b"70:CONT" and len(ancillary) == 1
        os.close(int.from_bytes(ancillary[0][2][:4], "little"))
    assert 0.05 < waited < 2


@pytest.mark.parametrize("cookie", [0, 3000, 4096, 20000])
def test_a_header_sent_whole_is_served_by_the_worker_whatever_its_size(worker_side, cookie):
    """The first read takes up to FIRST_READ bytes and parses them at once; a longer header is read on,
    and in both the body bytes that came with it are handed on, none lost and none taken twice."""
    side, frame_end, address = worker_side
    headers = [("Cookie", "c" * cookie)] if cookie else []
    request = encode_request(build_params("POST", "/whole", headers, body=b"body"), b"body")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(address)
        client.sendall(request)  # all of it is in when the worker accepts
        accepted = side.accept()
        assert accepted is not None, "the connection was passed to the frame"
        sock, environ, received = accepted
        sock.settimeout(2)  # a body byte lost would leave the read below waiting
        rest = b""
        while len(received) + len(rest) < 4:
            rest += sock.recv(4 - len(received) - len(rest))
        sock.close()
    assert environ["REQUEST_URI"] == "/whole" and environ.get("HTTP_COOKIE", "") == "c" * cookie
    assert received + rest == b"body"
    with pytest.raises(BlockingIOError):
        frame_end.recv(1, socket.MSG_DONTWAIT)


@pytest.mark.parametrize("request_bytes", [
    b"36:CONTENT_LENGTH\x000\x00REQUEST_METHOD\x00GET\x00,",  # no SCGI=1
    b"12:CONTENT_LENGTH\x000\x00;",  # a netstring that does not end in ','
    b"0012:xyz",  # a leading zero in the length
])
def test_a_malformed_header_goes_to_the_frame_with_every_byte_read(worker_side, request_bytes):
    """The worker does not answer a bad header itself: the frame gets the connection and all that was
    read of it, to answer from."""
    from scgi_inetd import resident

    side, frame_end, address = worker_side
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(address)
        client.sendall(request_bytes)
        assert side.accept() is None
        data, ancillary, _, _ = frame_end.recvmsg(1000, socket.CMSG_LEN(4), socket.MSG_DONTWAIT)
        assert data == resident.HOLD + request_bytes and len(ancillary) == 1
        os.close(int.from_bytes(ancillary[0][2][:4], "little"))


def test_200_requests_from_50_clients_reuse_at_most_n_per_worker(pool):
    server = pool("--max-children", "4", "--requests-per-child", "10")
    with ThreadPoolExecutor(50) as clients:
        answers = list(clients.map(lambda n: server.get(f"/n/{n}", body=b"%d" % n), range(200)))
    assert [a["body"] for a in answers] == [str(n) for n in range(200)]
    assert all(a["run_once"] is False and a["multiprocess"] is True for a in answers)
    per_worker = Counter(a["pid"] for a in answers)
    assert server.process.pid not in per_worker
    assert max(per_worker.values()) <= 10
    assert len(per_worker) >= 20  # 200 requests, 10 each: workers were replaced
    assert len(per_worker) < 200  # and reused
    for pid, count in per_worker.items():  # a worker's state is seen by its next request
        assert sorted(a["served"] for a in answers if a["pid"] == pid) == list(range(1, count + 1))
    assert len(server.workers(4)) == 4
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(10) == 0


def test_a_worker_is_replaced_after_n_requests_and_the_pool_stays_full(pool):
    server = pool("--max-children", "1", "--requests-per-child", "3")
    first = server.workers(1)
    answers = [server.get() for _ in range(7)]
    pids = [a["pid"] for a in answers]
    assert [a["served"] for a in answers] == [1, 2, 3, 1, 2, 3, 1]
    assert pids[0] == pids[2] != pids[3] == pids[5] != pids[6]
    assert {pids[0]} == first and not alive(pids[0])
    assert server.workers(1) == {pids[6]}


def test_default_is_a_fresh_child_per_connection(pool):
    server = pool("--max-children", "2")
    answers = [server.get() for _ in range(4)]
    assert len({a["pid"] for a in answers}) == 4 and {a["served"] for a in answers} == {1}


def test_connection_is_closed_after_each_response_and_no_descriptor_of_it_stays(pool):
    """The client sees EOF while the worker lives on: fds 0 and 1 are /dev/null, no socket but the listener
    and the socketpair to the frame."""
    server = pool("--max-children", "1", "--requests-per-child", "100")
    (worker,) = server.workers(1)
    for _ in range(3):
        assert server.get(timeout=5)["pid"] == worker  # call() reads until EOF: a kept dup would time out
    assert alive(worker)
    fds = {fd: os.readlink(f"/proc/{worker}/fd/{fd}") for fd in os.listdir(f"/proc/{worker}/fd")}
    assert fds["0"] == fds["1"] == "/dev/null"
    assert Path(fds["2"]) == server.log
    assert sum(target.startswith("socket:") for target in fds.values()) == 2  # the listener, its socketpair


def test_listening_socket_on_fds_0_to_2_as_inetd_wait_passes_it(tmp_path):
    """The workers put each connection on fds 0 and 1, where inetd `wait` put the listener."""
    path = str(tmp_path / "wait.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    with listener:
        process = subprocess.Popen(python_cmd("scgi-wsgi", "--max-children", "2", "--requests-per-child", "3",
                                              APP), stdin=listener, stdout=listener, stderr=listener,
                                   env=child_env())
    try:
        answers = [json.loads(call(f"unix:{path}", "GET", "/", timeout=5).body) for _ in range(8)]
        assert max(Counter(a["pid"] for a in answers).values()) == 3
        assert process.pid not in {a["pid"] for a in answers}
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_idle_timeout_stops_the_pool_and_exits_0(pool):
    server = pool("--max-children", "3", "--requests-per-child", "5", "--idle-timeout", "0.5")
    workers = server.workers(3)
    server.get()
    started = time.monotonic()
    assert server.process.wait(10) == 0
    assert time.monotonic() - started >= 0.4
    assert not any(alive(pid) for pid in workers)
    assert "idle for 0.5s, exiting" in server.log.read_text()


def test_a_request_in_flight_is_activity(pool):
    """The idle timeout counts from the end of the last request, not its start."""
    server = pool("--max-children", "2", "--requests-per-child", "5", "--idle-timeout", "1")
    assert server.get("/sleep/2.5")["served"] == 1
    assert server.get()["served"] >= 1  # within a second of the first one's end: still serving
    assert server.process.wait(10) == 0


def test_the_pool_exits_when_idle_after_a_long_request(pool):
    """The end of a request a worker accepted itself wakes nobody: the frame still sees the pool go idle."""
    server = pool("--max-children", "2", "--requests-per-child", "5", "--idle-timeout", "1")
    started = time.monotonic()
    assert server.get("/sleep/2")["served"] == 1
    assert server.process.wait(10) == 0
    assert time.monotonic() - started < 6  # 2 s of request, 1 s idle, and the frame's next look


def test_sigterm_lets_the_request_in_flight_complete(pool, tmp_path):
    server = pool("--max-children", "3", "--requests-per-child", "50")
    workers = server.workers(3)
    started = tmp_path / "started"
    result = {}
    caller = threading.Thread(target=lambda: result.update(answer=server.get(f"/slow?{started}", timeout=20)))
    caller.start()
    wait_for(started.exists, what="the request to start")
    server.process.send_signal(signal.SIGTERM)
    caller.join(20)
    assert result["answer"]["pid"] in workers
    assert server.process.wait(10) == 0
    assert not any(alive(pid) for pid in workers)
    with pytest.raises(OSError):
        call(server.address, "GET", "/", timeout=2)


def test_sigterm_ends_a_request_that_outlasts_the_grace(pool, tmp_path):
    server = pool("--max-children", "2", "--requests-per-child", "50", "--grace", "0.2")
    workers = server.workers(2)
    started = tmp_path / "started"
    caller = threading.Thread(target=lambda: pytest.raises(Exception, server.get, f"/slow?{started}"))
    caller.start()
    wait_for(started.exists, what="the request to start")
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(0.9) == 0  # the request would need 1 s
    caller.join(10)
    assert not any(alive(pid) for pid in workers)
    assert any("still running after 0.2s" in line for line in server.log_lines())


def test_a_handler_that_ends_its_worker_is_replaced(pool):
    server = pool("--max-children", "1", "--requests-per-child", "100")
    (worker,) = server.workers(1)
    assert server.get()["pid"] == worker
    time.sleep(1.0)  # past the respawn delay of a worker that fails young
    with pytest.raises(Exception):
        server.get("/die")
    wait_for(lambda: not alive(worker), what="the worker to end")
    answer = server.get()
    assert answer["pid"] != worker and answer["served"] == 1
    assert [line for line in server.log_lines() if "handler failed" in line] == []


def test_system_exit_from_the_app_is_a_500_and_the_worker_serves_on(pool):
    server = pool("--max-children", "1", "--requests-per-child", "100")
    (worker,) = server.workers(1)
    assert call(server.address, uri="/exit", timeout=10).status == 500
    answer = server.get()
    assert answer["pid"] == worker and answer["served"] == 2
    assert any("app raised an exception" in line for line in server.log_lines())


@pytest.mark.parametrize("size", [1, 3000, 4096, 5000, 300_000])
def test_body_bytes_read_with_the_header_are_the_start_of_wsgi_input(pool, size):
    """A worker's first read takes up to FIRST_READ bytes: the body bytes in them reach the app first, in order,
    and the rest comes from the socket (sizes inside, at and past that read)."""
    server = pool("--max-children", "1", "--requests-per-child", "100")
    body = bytes(index * 7 % 251 for index in range(size))
    for _ in range(3):
        assert server.get("/echo", body=body)["body"] == body.decode("latin-1")


def test_a_client_that_never_sends_its_header_does_not_hold_a_worker(pool):
    """Both workers stuck on silent clients answer them 408 after --header-timeout and serve on."""
    server = pool("--max-children", "2", "--requests-per-child", "100", "--header-timeout", "0.5")
    server.workers(2)
    silent = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
    try:
        for sock in silent:
            sock.settimeout(10)
            sock.connect(str(server.path))
        started = time.monotonic()
        assert server.get(timeout=10)["served"] >= 1
        assert time.monotonic() - started < 5
        for sock in silent:
            assert parse_response(sock.recv(4096)).status == 408
    finally:
        for sock in silent:
            sock.close()


def test_unread_body_is_drained_between_requests(pool):
    """A body the app never reads is drained, and the next request on that worker starts clean."""
    server = pool("--max-children", "1", "--requests-per-child", "10")
    request = encode_request(build_params("POST", "/unread", (), b"x" * 100000, None), b"x" * 100000)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(server.path))
        sock.sendall(request)
        data = read_all(sock)
    assert parse_response(data).status == 200
    assert server.get(body=b"next")["body"] == "next"


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_requests_per_child_must_be_a_positive_integer(value):
    with pytest.raises(UsageError):
        parse_serve_options(["--requests-per-child", value])


def test_requests_per_child_is_parsed():
    options, rest = parse_serve_options(["--requests-per-child", "1000", "app"])
    assert (options.requests_per_child, rest) == (1000, ["app"])
    assert parse_serve_options([])[0].requests_per_child == 1


@pytest.mark.parametrize("delay", [0.01 * step for step in range(0, 24, 2)])
def test_sigterm_while_the_workers_are_being_forked_stops_them_all(tmp_path, delay):
    """A SIGTERM that reaches a worker before it has its own handler must not be lost.

    16 workers are forked once the socket appears; SIGTERM lands among them
    (or, at the very start, before the loop's handlers: then the default
    action ends the parent before it forks). A lost SIGTERM leaves its worker
    in accept() and the pool waits out its 30 s grace.
    """
    (tmp_path / "pool").mkdir()
    server = Pool("scgi-wsgi", "--requests-per-child", "50", "--max-children", "16", "--grace", "30", APP,
                  listen=f"unix:{tmp_path / 'pool' / 'pool.sock'}", log=tmp_path / "pool" / "log")
    time.sleep(delay)
    workers = server.children()
    server.process.send_signal(signal.SIGTERM)
    try:
        assert server.process.wait(10) in (0, -signal.SIGTERM)
    finally:
        for pid in server.children() | workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        server.close()
    assert not any(alive(pid) for pid in workers)


@pytest.mark.parametrize("pool", [False, True])
def test_out_of_descriptors_the_wsgi_server_waits_instead_of_dying_or_spinning(tmp_path, pool):
    """accept() failing with EMFILE: resident scgi-wsgi (either strategy) pauses, then serves on.

    The process that accepts (the frame, or the pool's one worker) has its
    descriptor limit lowered to its lowest free descriptor number, so its
    next accept() fails.
    """
    extra = ["--requests-per-child", "100", "--max-children", "1"] if pool else []
    server = ResidentServer("scgi-wsgi", *extra, f"{REPO}/examples/hello_wsgi.py",
                            listen=f"unix:{tmp_path / 'w.sock'}", log=tmp_path / "w.log")
    log = server.log
    try:
        assert server.call(timeout=20).status == 200  # every process up and settled
        acceptor = server.children().pop() if pool else server.pid
        held = _settled_descriptors(acceptor)
        soft, hard = _nofile(acceptor)  # only the soft limit moves: raising a hard one takes privilege
        subprocess.run(["prlimit", f"--pid={acceptor}", f"--nofile={held}:{hard}"], check=True)
        with server.connect() as waiting:
            waiting.sendall(encode_request(build_params("GET", "/")))
            wait_for(lambda: "cannot accept" in (log.read_text() if log.exists() else ""), what="EMFILE")
            before = cpu_seconds(acceptor)
            time.sleep(1.0)
            assert cpu_seconds(acceptor) - before < 0.3, "the server spins on accept()"
            assert server.process.poll() is None, "the server died of EMFILE"
            subprocess.run(["prlimit", f"--pid={acceptor}", f"--nofile={soft}:{hard}"], check=True)
            waiting.settimeout(20)
            assert parse_response(read_all(waiting)).body == b"Hello, world!\n"
        assert log.read_text().count("cannot accept") == 1
        assert server.stop(30) == 0
    finally:
        server.close()


def _settled_descriptors(pid: int) -> int:
    """The lowest descriptor number free in `pid`, once its descriptors stop changing (a request's are closed).

    A descriptor limit of that number makes its next open or accept fail,
    whatever gaps there are among the numbers it holds.
    """
    seen = [None]
    while True:
        seen.append(frozenset(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")))
        if seen[-1] == seen[-2]:
            return min(set(range(len(seen[-1]) + 1)) - seen[-1])
        time.sleep(0.1)


def _nofile(pid: int) -> tuple[str, str]:
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max open files"))
    return line.split()[3], line.split()[4]
