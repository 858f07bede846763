"""The exact-read layer over real socketpairs and pipes: the body stays unread."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scgi_inetd.protocol import MIN_HEADER_SIZE, ProtocolError, RequestParser, encode_request
from scgi_inetd.reader import read_request

from .malformed import MALFORMED

BODY_SIZES = [0, 1, 64 * 1024, 10 * 1024 * 1024]


def body_of(size: int) -> bytes:
    return (hashlib.sha256(b"seed").digest() * (size // 32 + 1))[:size]


def request_for(body: bytes) -> bytes:
    return encode_request([("REQUEST_METHOD", "POST"), ("HTTP_COOKIE", "a=" + "x" * 900)], body)


def send_in_thread(write, data: bytes, pieces: int = 1, pause: float = 0.0, then=None) -> threading.Thread:
    def run():
        step = max(1, len(data) // pieces)
        for start in range(0, len(data), step):
            write(data[start : start + step])
            if pause:
                time.sleep(pause)
        if then:
            then()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("size", BODY_SIZES)
def test_socket_body_is_left_unread(size):
    body = body_of(size)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        def write(data):
            ours.sendall(data)
        thread = send_in_thread(write, request_for(body), then=lambda: ours.shutdown(socket.SHUT_WR))
        environ = read_request(theirs.fileno())
        assert environ["CONTENT_LENGTH"] == str(size)
        rest = read_all(theirs.fileno())
        thread.join()
        assert hashlib.sha256(rest).digest() == hashlib.sha256(body).digest()


@pytest.mark.parametrize("size", BODY_SIZES)
def test_pipe_body_is_left_unread(size):
    body = body_of(size)
    read_end, write_end = os.pipe()
    try:
        def write(data):
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view):]
        thread = send_in_thread(write, request_for(body), then=lambda: os.close(write_end))
        environ = read_request(read_end)
        assert environ["REQUEST_METHOD"] == "POST"
        rest = read_all(read_end)
        thread.join()
        assert rest == body
    finally:
        os.close(read_end)


@pytest.mark.parametrize("kind", ["socket", "pipe"])
def test_header_arriving_in_pieces_is_assembled(kind):
    data = request_for(b"tail")
    if kind == "socket":
        ours, theirs = socket.socketpair()
        write, fd, closers = ours.sendall, theirs.fileno(), (ours, theirs)
    else:
        r, w = os.pipe()
        write, fd = (lambda chunk: os.write(w, chunk)), r
        closers = ()
    thread = send_in_thread(write, data, pieces=40, pause=0.002)
    environ = read_request(fd)
    thread.join()
    assert environ["HTTP_COOKIE"].startswith("a=xxx")
    assert os.read(fd, 100) == b"tail"
    for closer in closers:
        closer.close()
    if kind == "pipe":
        os.close(r)
        os.close(w)


def test_header_that_never_completes_times_out_with_408():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(request_for(b"")[:30])
        started = time.monotonic()
        with pytest.raises(ProtocolError) as caught:
            read_request(theirs.fileno(), timeout=0.3)
        assert caught.value.status == 408
        assert 0.25 < time.monotonic() - started < 2.0


def test_silent_client_times_out_on_a_pipe_too():
    r, w = os.pipe()
    try:
        with pytest.raises(ProtocolError) as caught:
            read_request(r, timeout=0.2)
        assert caught.value.status == 408
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.parametrize("cut", [0, 2, 10, 100])
def test_eof_inside_the_header_is_a_400_not_a_hang(cut):
    ours, theirs = socket.socketpair()
    with theirs:
        ours.sendall(request_for(b"")[:cut])
        ours.close()
        with pytest.raises(ProtocolError) as caught:
            read_request(theirs.fileno(), timeout=5)
        assert caught.value.status == 400
        assert "closed inside the request header" in str(caught.value)


def test_oversized_header_is_refused_from_its_length_prefix():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(b"300000:" + b"x" * 1000)
        with pytest.raises(ProtocolError) as caught:
            read_request(theirs.fileno(), timeout=5)
        assert caught.value.status == 413
        assert len(theirs.recv(5000, socket.MSG_DONTWAIT)) == 1007 - MIN_HEADER_SIZE


@pytest.mark.parametrize("kind", ["socket", "pipe"])
def test_smallest_valid_header_leaves_its_body_whole(kind):
    """The first read takes MIN_HEADER_SIZE bytes: exactly a minimal header, never its body."""
    data = encode_request({}, b"body")
    assert len(data) == MIN_HEADER_SIZE + 4
    if kind == "socket":
        ours, theirs = socket.socketpair()
        ours.sendall(data)
        fd, closers = theirs.fileno(), (ours.close, theirs.close)
    else:
        r, w = os.pipe()
        os.write(w, data)
        fd, closers = r, (lambda: os.close(r), lambda: os.close(w))
    try:
        assert read_request(fd, timeout=5) == {"CONTENT_LENGTH": "4", "SCGI": "1"}
        assert os.read(fd, 100) == b"body"
    finally:
        for close in closers:
            close()


def test_malformed_header_is_a_400_with_its_offset():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(b"12:CONTENT_LEN\0,")
        with pytest.raises(ProtocolError) as caught:
            read_request(theirs.fileno(), timeout=5)
        assert caught.value.status == 400
        assert "at byte" in str(caught.value)


def test_descriptor_stays_blocking_for_the_program_that_inherits_it():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(request_for(b""))
        read_request(theirs.fileno())
        assert os.get_blocking(theirs.fileno())


@pytest.mark.skipif(not __import__("shutil").which("strace"), reason="strace is not installed")
def test_a_whole_header_costs_two_read_calls_on_a_socket(tmp_path):
    from tests.support import REPO, load_file
    bench = load_file(REPO / "bench" / "read_syscalls.py", "bench_read_syscalls")
    request = bench.encode_request(bench.NGINX_HEADERS, b"x" * 100)
    assert bench.count_reads(bench.READERS["read_request"], request, str(tmp_path)) == 2
    assert bench.count_reads(bench.READERS["digit at a time"], request, str(tmp_path)) >= 6


@pytest.mark.parametrize("kind", ["socket", "pipe"])
@pytest.mark.parametrize("data, status, fragment", MALFORMED)
def test_every_malformed_header_is_refused_by_the_reader(kind, data, status, fragment):
    """The parser's table through read_request on a real descriptor, the sender then closing."""
    if kind == "socket":
        ours, theirs = socket.socketpair()
        write, fd, done = ours.sendall, theirs.fileno(), lambda: ours.shutdown(socket.SHUT_WR)
        keep = (ours, theirs)
    else:
        fd, write_end = os.pipe()
        write, done = (lambda data: os.write(write_end, data)), (lambda: os.close(write_end))
        keep = ()
    try:
        write(data)
        done()
        with pytest.raises(ProtocolError) as caught:
            read_request(fd, timeout=5)
        assert (caught.value.status, fragment in str(caught.value)) == (status, True), str(caught.value)
    finally:
        for sock in keep:
            sock.close()
        if kind == "pipe":
            os.close(fd)


@given(st.binary(max_size=300).map(lambda b: b.replace(b"\0", b".")), st.binary(max_size=64))
def test_reading_what_the_parser_asks_for_never_passes_the_header(block, body):
    """RequestParser.needed() is the two-read rule: a reader following it never takes a body byte."""
    data = encode_request([("X", block.decode("latin-1"))], body)
    parser = RequestParser()
    taken, environ = 0, None
    while environ is None:
        chunk = data[taken:taken + parser.needed()]
        assert chunk, "the parser asked for more than the request holds"
        taken += len(chunk)
        environ = parser.feed(chunk)
    assert parser.rest == b"" and parser.needed() == 0
    assert data[taken:] == body and environ["X"] == block.decode("latin-1")
