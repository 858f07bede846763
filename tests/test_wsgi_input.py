"""wsgi.input: bounded by CONTENT_LENGTH, never reading a byte past the body, over real sockets."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scgi_inetd.wsgi_input import BodyError, BodyInput

NOT_OURS = b"NEXT REQUEST BYTES"


def connected(body: bytes, trailing: bytes = NOT_OURS, *, close: bool = False):
    """A socketpair whose server end has `body` then `trailing` waiting to be read."""
    client, server = socket.socketpair()
    client.sendall(body + trailing)
    if close:
        client.shutdown(socket.SHUT_WR)
    return client, server


def leftover(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


def apply(stream, op):
    kind, arg = op
    if kind == "read":
        return stream.read(arg) if arg != "noarg" else stream.read()
    if kind == "readline":
        return stream.readline(arg) if arg != "noarg" else stream.readline()
    if kind == "readlines":
        return stream.readlines(arg) if arg != "noarg" else stream.readlines()
    if kind == "next":
        return next(stream, b"")
    raise AssertionError(kind)


BODY = b"first line\nsecond\n\nno newline at the end"

# (operations, expected results) on BODY: a line each, easy to extend.
CASES = [
    ([("read", "noarg")], [BODY]),
    ([("read", -1)], [BODY]),
    ([("read", None)], [BODY]),
    ([("read", 5), ("read", 6), ("read", 1000), ("read", 10)], [b"first", b" line\n", BODY[11:], b""]),
    ([("read", 0)], [b""]),
    ([("readline", "noarg")] * 5, [b"first line\n", b"second\n", b"\n", b"no newline at the end", b""]),
    ([("readline", 3), ("readline", 100), ("readline", 0)], [b"fir", b"st line\n", b""]),
    ([("readline", -1), ("readline", None)], [b"first line\n", b"second\n"]),
    ([("readlines", "noarg")], [[b"first line\n", b"second\n", b"\n", b"no newline at the end"]]),
    ([("readlines", 12), ("readlines", -1)], [[b"first line\n", b"second\n"], [b"\n", b"no newline at the end"]]),
    ([("next", None)] * 5, [b"first line\n", b"second\n", b"\n", b"no newline at the end", b""]),
    ([("read", 3), ("readline", -1), ("read", -1), ("readline", -1)], [b"fir", b"st line\n", BODY[11:], b""]),
]


@pytest.mark.parametrize("ops, expected", CASES)
def test_reads_return_the_body_and_leave_the_rest(ops, expected):
    client, server = connected(BODY)
    with client, server:
        stream = BodyInput(server.fileno(), len(BODY))
        assert [apply(stream, op) for op in ops] == expected
        model = io.BytesIO(BODY)
        for op in ops:
            apply(model, op)
        assert stream.read() == model.read()
        assert stream.read(10) == b"" and stream.readline() == b"" and list(stream) == []
        assert leftover(server) == NOT_OURS


def test_iteration_yields_lines():
    client, server = connected(BODY)
    with client, server:
        assert list(BodyInput(server.fileno(), len(BODY))) == io.BytesIO(BODY).readlines()
        assert leftover(server) == NOT_OURS


OPS = st.lists(st.tuples(st.sampled_from(["read", "readline", "readlines", "next"]),
                         st.one_of(st.integers(-2, 40), st.none(), st.just("noarg"))), max_size=12)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=200).map(lambda b: b.replace(b"\x01", b"\n")), ops=OPS, split=st.integers(0, 200))
def test_behaves_like_a_file_on_the_body_alone(body, ops, split):
    """Any sequence of reads gives what io.BytesIO over the body gives, and nothing beyond, whatever part
    of the body was read with the header (`received`, a pool worker's first read)."""
    split %= len(body) + 1
    client, server = connected(body[split:])
    with client, server:
        stream = BodyInput(server.fileno(), len(body), received=body[:split])
        model = io.BytesIO(body)
        for op in ops:
            assert apply(stream, op) == apply(model, op), op
        assert stream.read() == model.read()
        assert leftover(server) == NOT_OURS


def test_bytes_received_past_content_length_are_not_the_body():
    client, server = connected(b"", b"")
    with client, server:
        stream = BodyInput(server.fileno(), 3, received=b"abcdef")
        assert stream.read() == b"abc" and stream.read() == b""


@pytest.mark.parametrize("op", [("read", "noarg"), ("read", 100), ("readline", "noarg"),
                                ("readlines", "noarg"), ("next", None)])
def test_body_shorter_than_content_length_is_an_error(op):
    client, server = connected(b"only this", b"", close=True)
    with client, server:
        stream = BodyInput(server.fileno(), 100)
        with pytest.raises(BodyError) as caught:
            apply(stream, op)
        assert caught.value.status == 400
        assert "91 bytes short" in str(caught.value)


def test_stalled_body_times_out():
    client, server = connected(b"1234", b"")
    with client, server:
        stream = BodyInput(server.fileno(), 10, timeout=0.2)
        assert stream.read(4) == b"1234"
        started = time.monotonic()
        with pytest.raises(BodyError) as caught:
            stream.read(1)
        assert caught.value.status == 408
        assert time.monotonic() - started < 2


def test_empty_body_reads_nothing():
    client, server = connected(b"")
    with client, server:
        stream = BodyInput(server.fileno(), 0)
        assert stream.read() == b"" and stream.readline() == b"" and stream.readlines() == []
        assert leftover(server) == NOT_OURS


def test_100_mib_body_read_in_chunks():
    size = 100 << 20
    client, server = socket.socketpair()
    block = os.urandom(1 << 20)
    sent = hashlib.sha256()

    def send():
        for _ in range(size // len(block)):
            client.sendall(block)
            sent.update(block)
        client.sendall(NOT_OURS)

    sender = threading.Thread(target=send)
    sender.start()
    with client, server:
        stream = BodyInput(server.fileno(), size)
        received = hashlib.sha256()
        total = 0
        while chunk := stream.read(65536):
            assert len(chunk) == 65536
            received.update(chunk)
            total += len(chunk)
        sender.join()
        assert total == size and received.digest() == sent.digest()
        assert leftover(server) == NOT_OURS


def test_drain_reads_the_rest_of_the_body_only():
    body = b"x" * 300000
    client, server = socket.socketpair()
    sender = threading.Thread(target=client.sendall, args=(body + NOT_OURS,))
    sender.start()
    with client, server:
        stream = BodyInput(server.fileno(), len(body))
        assert stream.read(10) == b"x" * 10
        assert stream.unread == len(body) - 10
        assert stream.drain() == len(body) - 10
        sender.join()
        assert stream.unread == 0
        assert leftover(server) == NOT_OURS


def test_drain_gives_up_on_a_stalled_client_in_time():
    client, server = connected(b"abc", b"")
    with client, server:
        stream = BodyInput(server.fileno(), 1000)
        started = time.monotonic()
        assert stream.drain(time_limit=0.3) == 3
        assert 0.25 < time.monotonic() - started < 2


def test_drain_stops_at_eof_without_raising():
    client, server = connected(b"abc", b"", close=True)
    with client, server:
        assert BodyInput(server.fileno(), 1000).drain() == 3
