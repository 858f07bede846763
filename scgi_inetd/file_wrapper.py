"""wsgi.file_wrapper: send a file with os.sendfile straight to the connection.

Strategy: an app returns ``environ["wsgi.file_wrapper"](f)``; the gateway
recognises the wrapper (exact type, so a middleware that wraps it in another
iterable gets the plain iteration below) and, when ``f`` has a real
descriptor on a regular file, lets the kernel copy from the file's current
position to the socket (PEP 3333, "Optional Platform-Specific File
Handling").  Anything else (BytesIO, a pipe, a socket) is read in blocks.
"""

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds per request; annotations only
    from typing import BinaryIO, Iterator

# Bytes per read on the fallback path (the PEP's example default).
BLOCK_SIZE = 8192

# Bytes per os.sendfile call: one call could move up to 2 GiB, but capping it
# keeps each call short so Content-Length bookkeeping stays simple.
SENDFILE_CHUNK = 1 << 24


class FileWrapper:
    """Iterable over a file-like object's blocks; the gateway may sendfile it instead."""

    def __init__(self, filelike: "BinaryIO", blksize: int = BLOCK_SIZE) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> "Iterator[bytes]":
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data

    def sendable(self) -> tuple[int, int, int] | None:
        """(descriptor, current offset, bytes to its end) when sendfile can be used, else None."""
        try:
            fd = self.filelike.fileno()
            offset = self.filelike.tell()
            info = os.fstat(fd)
        except (AttributeError, OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return fd, offset, max(info.st_size - offset, 0)


def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    """Copy ``count`` bytes from ``in_fd`` at ``offset`` to ``out_fd``; return bytes sent.

    Returns less than ``count`` only when the file turned out shorter.
    """
    sent = 0
    while sent < count:
        n = os.sendfile(out_fd, in_fd, offset + sent, min(count - sent, SENDFILE_CHUNK))
        if n == 0:
            break
        sent += n
    return sent
