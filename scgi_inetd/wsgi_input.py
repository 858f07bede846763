"""wsgi.input: the request body, read from the connection and bounded by CONTENT_LENGTH.

Strategy: the SCGI header has been read exactly (scgi_inetd.reader), so the
next CONTENT_LENGTH bytes on the descriptor are the body and nothing after
them is ours.  BodyInput reads with os.read, never asks for more than what
is left of the body, and reports the end with b"" (PEP 3333,
wsgi.input_terminated).  A client that stops short of CONTENT_LENGTH, or
stalls, raises BodyError, so the app never mistakes a cut-off upload for a
complete one.  drain() reads away what the app left unread: a process that
exits with unread data on a unix socket makes the kernel reset the
connection, and nginx then reports an error for a request that succeeded.
"""

import os
import select
import time

# Bytes asked of the kernel per read: big enough that a 1 GiB upload costs
# few system calls, small enough that a short read() does not allocate much.
READ_CHUNK = 65536

# Seconds without a single body byte before the client counts as stalled
# (nginx's own client_body_timeout defaults to 60 s between two reads; it
# sends us the body it has already buffered, so a stall here is rare).
BODY_TIMEOUT = 30.0

# Upper bound, in seconds, on reading away the unread rest of a body once the
# response is out; a client still sending after that is not waited for.
DRAIN_TIME = 10.0


class BodyError(OSError):
    """The request body ended before CONTENT_LENGTH bytes, or stalled.

    ``status`` is the HTTP status the gateway answers with if the app lets
    the error through before sending its headers.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BodyInput:
    """A file-like, read-only view of the request body (PEP 3333 wsgi.input)."""

    def __init__(self, fd: int, length: int, timeout: float = BODY_TIMEOUT) -> None:
        self._fd = fd
        self._left = length  # body bytes still unread on the descriptor
        self._buffer = bytearray()  # read from the descriptor, not yet given out
        self._timeout_ms = int(timeout * 1000)
        self._poll: select.poll | None = None

    @property
    def unread(self) -> int:
        """Body bytes not yet handed to the app (buffered or still on the socket)."""
        return len(self._buffer) + self._left

    def _receive(self, size: int) -> bytes:
        """One os.read of at most ``size`` body bytes; raises BodyError on EOF or stall."""
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)
        if not self._poll.poll(self._timeout_ms):
            raise BodyError(408, f"request body: no data for {self._timeout_ms / 1000:g} s "
                                 f"with {self._left} bytes to come")
        data = os.read(self._fd, min(size, self._left))
        if not data:
            raise BodyError(400, f"request body ended {self._left} bytes short of CONTENT_LENGTH")
        self._left -= len(data)
        return data

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
        stalled only shortens the wait.
        """
        drained = len(self._buffer)
        self._buffer.clear()
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
