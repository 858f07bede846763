"""Read exactly the SCGI header from a file descriptor, never a byte of the body.

The CGI shim execs the script with the connection still on its stdin, so every
body byte must still be there after the header is read. The first read asks
for no more than the smallest valid header netstring (protocol.MIN_HEADER_SIZE,
28 bytes), which always holds the whole length prefix; the prefix then says
exactly how many bytes are left to take. Two read calls when the header
arrives whole, on a socket, a pipe or a file alike.

Uses `select` and plain `os.read`, not `socket`, `_socket` (MSG_PEEK) or
`selectors`: this runs once per process and per request, and loading those
costs more than a few system calls.
"""

import os
import select
import time

from .protocol import (
    DEFAULT_MAX_HEADER,
    MIN_HEADER_SIZE,
    IncompleteRequest,
    ProtocolError,
    netstring_extent,
    parse_request,
)

__all__ = ["DEFAULT_HEADER_TIMEOUT", "read_request"]

# A client that has not sent its header after this long is not coming: nginx
# sends it in one write right after connecting. Bounds a slow-loris client.
DEFAULT_HEADER_TIMEOUT = 30.0


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
    try:
        header = _read_header(fd, max_header, deadline)
    except ConnectionError as error:
        raise ProtocolError(400, f"connection lost while reading the header: {error.strerror}") from None
    environ, _ = parse_request(header, max_header)
    return environ


def _read_header(fd: int, max_header: int, deadline: float) -> bytes:
    """Take the length prefix within the first MIN_HEADER_SIZE bytes, then exactly the rest.

    A valid request's header is never shorter than MIN_HEADER_SIZE, so the
    first read cannot reach its body; only a header too short to be valid
    (refused with a 400 anyway) can have bytes after it taken with it.
    """
    received = b""
    while True:
        try:
            size = netstring_extent(received, max_header)
            break
        except IncompleteRequest:
            received += _read_some(fd, max(MIN_HEADER_SIZE - len(received), 1), received, deadline)
    while len(received) < size:
        received += _read_some(fd, size - len(received), received, deadline)
    return received


def _wait_readable(fd: int, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
        raise ProtocolError(408, "request header not complete in time")


def _read_some(fd: int, count: int, received: bytes, deadline: float) -> bytes:
    _wait_readable(fd, deadline)
    chunk = os.read(fd, count)
    if not chunk:
        raise _eof(received)
    return chunk


def _eof(received: bytes) -> ProtocolError:
    return ProtocolError(400, f"connection closed inside the request header at byte {len(received)}")
