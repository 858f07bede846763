"""wsgi.input: the request body, read from the connection and bounded by CONTENT_LENGTH.

Strategy: the SCGI header has been read exactly (scgi_inetd.reader), or
with the start of the body, which BodyInput is given (a pool worker's first
read), so the next CONTENT_LENGTH bytes are the body and nothing after them
is ours.  BodyInput reads with posix.read, never asks for more than what
is left of the body, and reports the end with b"" (PEP 3333,
wsgi.input_terminated).  A client that stops short of CONTENT_LENGTH, or
stalls, raises BodyError, so the app never mistakes a cut-off upload for a
complete one.

An app that reads its body before it answers reads straight from the
socket, with no copy.  One that starts its response first (yields a chunk,
or returns with its body unread) has the rest of the body spooled before
the first response byte goes out (spool()), and goes on reading from the
spool: nginx stops sending the request body once the response has begun
(reader.spool_body says more), so reading it later would wait forever.
"""

import posix
import select
import time

from .reader import (DEFAULT_BODY_TIMEOUT, DEFAULT_SPOOL_DIR, BodyError, body_short, body_stalled,
                     open_spool, write_spool)

__all__ = ["BodyError", "BodyInput"]

# Bytes asked of the kernel per read: big enough that a 1 GiB upload costs
# few system calls, small enough that a short read() does not allocate much.
READ_CHUNK = 65536

# Upper bound, in seconds, on reading away the unread rest of a body once the
# response is out; a client still sending after that is not waited for.
DRAIN_TIME = 10.0

class BodyInput:
    """A file-like, read-only view of the request body (PEP 3333 wsgi.input)."""

    def __init__(self, fd: int, length: int, timeout: float = DEFAULT_BODY_TIMEOUT,
                 spool_dir: str = DEFAULT_SPOOL_DIR, received: bytes = b"") -> None:
        self._fd = fd
        self._buffer = bytearray(received[:length])  # read from the descriptor, not yet given out
        self._left = length - len(self._buffer)  # body bytes still unread on the descriptor
        self._timeout = timeout
        self._timeout_ms = int(timeout * 1000)
        self._poll: select.poll | None = None
        self._spool_dir = spool_dir
        self._spooled = False  # self._fd is our spool file, no longer the connection
        self._stalled = False  # the client let the body timeout pass: not waited for again

    @property
    def unread(self) -> int:
        """Body bytes not yet handed to the app (buffered or still on the socket)."""
        return len(self._buffer) + self._left

    def _receive(self, size: int) -> bytes:
        """One posix.read of at most ``size`` body bytes; raises BodyError on EOF or stall."""
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)
        if not self._poll.poll(self._timeout_ms):
            self._stalled = True
            raise body_stalled(self._left, self._timeout_ms / 1000)
        data = posix.read(self._fd, min(size, self._left))
        if not data:
            raise body_short(self._left)
        self._left -= len(data)
        return data

    @property
    def on_connection(self) -> int:
        """Body bytes still to be read from the connection (0 once spooled or read)."""
        return 0 if self._spooled else self._left

    def spool(self) -> None:
        """Take the rest of the body off the connection into a spool file, and read on from there.

        Called before the first response byte goes out; raises BodyError
        (400, 408, 503) when the body cannot be had, before anything is sent.
        """
        if self._spooled or not self._left:
            return
        total = self.unread
        spool = open_spool(total, self._spool_dir)
        try:
            write_spool(spool, self._buffer)
            while self._left:
                write_spool(spool, self._receive(4 * READ_CHUNK))
            posix.lseek(spool, 0, 0)  # SEEK_SET
        except BaseException:
            posix.close(spool)
            raise
        self._left = total
        self._buffer.clear()
        self._fd, self._poll, self._spooled = spool, None, True

    def close(self) -> None:
        """Close the spool file, if there is one (a pool worker serves many requests)."""
        if self._spooled:
            self._spooled = False
            self._left = 0
            posix.close(self._fd)

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes (all that is left when negative or None); b"" at the end."""
        buffer = self._buffer
        if size is None or size < 0:
            size = len(buffer) + self._left
        if size <= len(buffer):
            data = bytes(buffer[:size])
            del buffer[:size]
            return data
        if not buffer and size <= READ_CHUNK and self._left:
            data = self._receive(size)
            if len(data) == size or not self._left:
                return data
            buffer += data
        while len(buffer) < size and self._left:
            buffer += self._receive(min(size - len(buffer), 4 * READ_CHUNK))
        data = bytes(buffer[:size])
        del buffer[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line, newline included, of at most ``size`` bytes when size >= 0."""
        buffer = self._buffer
        limit = -1 if size is None else size
        scanned = 0
        while True:
            end = buffer.find(b"\n", scanned)
            if end >= 0:
                end += 1
                break
            if 0 <= limit <= len(buffer) or not self._left:
                end = len(buffer)
                break
            scanned = len(buffer)
            buffer += self._receive(READ_CHUNK)
        if 0 <= limit < end:
            end = limit
        data = bytes(buffer[:end])
        del buffer[:end]
        return data

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Read lines until the end, or until their total size reaches ``hint`` when positive."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> "BodyInput":
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def drain(self, time_limit: float = DRAIN_TIME) -> int:
        """Read away and discard the unread rest of the body; return how many bytes that was.

        Never raises: the response has been sent, and a client that is gone or
        stalled only shortens the wait.  A spooled body is just dropped.
        """
        if not self._left and not self._buffer:  # most requests: no body, or the app read it all
            return 0
        drained = len(self._buffer)
        self._buffer.clear()
        if self._spooled or self._stalled:
            drained += self._left if self._spooled else 0
            self._left = 0
            return drained
        deadline = time.monotonic() + time_limit
        try:
            while self._left:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._timeout_ms = int(remaining * 1000) + 1
                drained += len(self._receive(4 * READ_CHUNK))
        except OSError:
            pass
        return drained
