"""Read exactly the SCGI header from a file descriptor, never a byte of the body.

The CGI shim execs the script with the connection still on its stdin, so every
body byte must still be there after the header is read. On a socket the header
is found by peeking (MSG_PEEK) and then consumed exactly: two system calls when
it arrives whole. A pipe or a file cannot be peeked, so the length prefix is
read a byte at a time and the rest with exact-size reads.

Uses `_socket` and `select`, not `socket` and `selectors`: this runs once per
process and per request, and those modules cost milliseconds to import.
"""

from __future__ import annotations

import os
import select
import stat
import time

from .protocol import (
    DEFAULT_MAX_HEADER,
    IncompleteRequest,
    ProtocolError,
    netstring_extent,
    parse_request,
)

__all__ = ["DEFAULT_HEADER_TIMEOUT", "read_request"]

# A client that has not sent its header after this long is not coming: nginx
# sends it in one write right after connecting. Bounds a slow-loris client.
DEFAULT_HEADER_TIMEOUT = 30.0

# The first peek asks for this much: a typical nginx header block is 0.5-2 KiB.
FIRST_PEEK = 65536


def read_request(
    fd: int,
    *,
    max_header: int = DEFAULT_MAX_HEADER,
    timeout: float = DEFAULT_HEADER_TIMEOUT,
) -> dict[str, str]:
    """Read and parse the header netstring on `fd`, leaving the body unread.

    Raises ProtocolError: 400 for a malformed header or EOF inside it, 413 for
    a header over `max_header`, 408 when it is not complete within `timeout`.
    """
    deadline = time.monotonic() + timeout
    if stat.S_ISSOCK(os.fstat(fd).st_mode):
        header = _read_socket(fd, max_header, deadline)
    else:
        header = _read_stream(fd, max_header, deadline)
    environ, _ = parse_request(header, max_header)
    return environ


def _wait_readable(fd: int, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
        raise ProtocolError(408, "request header not complete in time")


def _read_socket(fd: int, max_header: int, deadline: float) -> bytes:
    import _socket

    sock = _socket.socket(fileno=fd)
    try:
        return _receive_header(sock, max_header, deadline)
    except ConnectionError as error:
        raise ProtocolError(400, f"connection lost while reading the header: {error.strerror}") from None
    finally:
        sock.detach()


def _receive_header(sock, max_header: int, deadline: float) -> bytes:
    """Peek to learn the header's size, then take exactly that many bytes.

    Only bytes known to belong to the header are consumed: while the length
    prefix is incomplete, the peeked bytes are all prefix digits.
    """
    import _socket

    received = b""
    flags = _socket.MSG_PEEK | _socket.MSG_DONTWAIT
    while True:
        try:
            peeked = sock.recv(FIRST_PEEK, flags)
        except BlockingIOError:
            _wait_readable(sock.fileno(), deadline)
            continue
        if not peeked:
            raise _eof(received)
        try:
            size = netstring_extent(received + peeked, max_header)
            break
        except IncompleteRequest:
            received += sock.recv(len(peeked))
    while len(received) < size:
        try:
            chunk = sock.recv(size - len(received), _socket.MSG_DONTWAIT)
        except BlockingIOError:
            _wait_readable(sock.fileno(), deadline)
            continue
        if not chunk:
            raise _eof(received)
        received += chunk
    return received


def _read_stream(fd: int, max_header: int, deadline: float) -> bytes:
    """Exact reads for a pipe or file: prefix byte by byte, then the rest by size."""
    received = b""
    while True:
        try:
            size = netstring_extent(received, max_header)
            break
        except IncompleteRequest:
            received += _read_some(fd, 1, received, deadline)
    while len(received) < size:
        received += _read_some(fd, size - len(received), received, deadline)
    return received


def _read_some(fd: int, count: int, received: bytes, deadline: float) -> bytes:
    _wait_readable(fd, deadline)
    chunk = os.read(fd, count)
    if not chunk:
        raise _eof(received)
    return chunk


def _eof(received: bytes) -> ProtocolError:
    return ProtocolError(400, f"connection closed inside the request header at byte {len(received)}")
