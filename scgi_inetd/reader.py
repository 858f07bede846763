"""Read exactly the SCGI header from a file descriptor, never a byte of the body; spool the body.

Every body byte must still be there after the header is read (the body is
spooled next, or left for the program with --stream-body). The reads are
protocol.RequestParser's: the first asks for no more than the smallest valid
header netstring (protocol.MIN_HEADER_SIZE, 28 bytes), which always holds the
whole length prefix; the prefix then says exactly how many bytes are left to
take. Two read calls when the header arrives whole, on a socket, a pipe or a
file alike.

The body, when the front-end wants it before the program answers, is read
exactly (CONTENT_LENGTH bytes, no more) into an anonymous file: memory for a
small body, an unnamed file in the spool directory for a large one (see
spool_body for why a gateway must take the whole body first).

Uses `select` and plain `posix.read`, not `socket`, `_socket` (MSG_PEEK) or
`selectors`: this runs once per process and per request, and loading those
costs more than a few system calls.
"""

import posix
import select
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

from .protocol import DEFAULT_MAX_HEADER, ProtocolError, RequestError, RequestParser

__all__ = ["DEFAULT_BODY_TIMEOUT", "DEFAULT_HEADER_TIMEOUT", "DEFAULT_SPOOL_DIR", "MEMORY_SPOOL",
           "BodyError", "body_short", "body_stalled", "check_body_size", "header_connection_lost",
           "header_cut_short", "header_timed_out", "one_connection", "open_spool", "read_header_step", "read_request",
           "spool_body", "write_spool"]

# A client that has not sent its header after this long is not coming: nginx
# sends it in one write right after connecting. Bounds a slow-loris client.
DEFAULT_HEADER_TIMEOUT = 30.0
#: Seconds without a single body byte before the client counts as stalled
#: (nginx's client_body_timeout is the model: a limit between two reads, so a
#: large upload over a slow link is not cut off for being large).
DEFAULT_BODY_TIMEOUT = 30.0
#: Bodies up to this size are spooled in memory (memfd); larger ones on disk,
#: so that a 1 GiB upload costs disk space, not the gateway's memory.
MEMORY_SPOOL = 1 << 20
#: Where larger bodies are spooled: disk-backed on Debian and the BSDs, where
#: /tmp may be a tmpfs (memory again). The files have no name: they vanish
#: with the last descriptor, whatever happens to the process.
DEFAULT_SPOOL_DIR = "/var/tmp"
#: Bytes asked of one read while spooling.
SPOOL_CHUNK = 1 << 20


class BodyError(RequestError, OSError):
    """The request body cannot be delivered: short (400), stalled (408) or not storable (503).

    An OSError too: an app reading wsgi.input sees a failed read as the I/O
    error it is. ``left`` is how many body bytes are still unread on the
    connection, for draining them before closing (0 when nothing more is
    coming from that client).
    """

    def __init__(self, status: int, message: str, detail: str = "", left: int = 0) -> None:
        super().__init__(status, message, detail)
        self.left = left


def read_request(
    fd: int,
    *,
    max_header: int = DEFAULT_MAX_HEADER,
    timeout: float = DEFAULT_HEADER_TIMEOUT,
) -> dict[str, str]:
    """Read and parse the header netstring on `fd`, leaving the body unread.

    Raises ProtocolError: 400 for a malformed header or EOF inside it, 413 for
    a header over `max_header`, 408 when it is not complete within `timeout`.
    The reads are protocol.RequestParser's: never past the header's end, two
    when the header arrives whole. A valid request's header is never shorter
    than MIN_HEADER_SIZE, so the first read cannot reach its body; only a
    header too short to be valid (refused with a 400 anyway) can have bytes
    after it taken with it.
    """
    deadline = time.monotonic() + timeout
    parser = RequestParser(max_header)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise header_timed_out()
        environ = read_header_step(parser, lambda size: posix.read(fd, size))
        if environ is not None:
            return environ


def read_header_step(parser: RequestParser, read: "Callable[[int], bytes]") -> "dict[str, str] | None":
    """One `read(size)` of what RequestParser.needed() allows, fed to `parser`; the environ once whole.

    The step every header reader takes (read_request here, the resident
    loop's non-blocking one). Raises ProtocolError when the connection is
    lost or closed inside the header, or the header is malformed; what
    `read` raises otherwise (BlockingIOError) passes through.
    """
    try:
        chunk = read(parser.needed())
    except ConnectionError as error:
        raise header_connection_lost(error) from None
    if not chunk:
        raise header_cut_short(len(parser.buffer))
    return parser.feed(chunk)


def one_connection(fd: int) -> bool:
    """True when `fd` is surely the one connection a super-server passed (inetd `nowait`).

    That is: no systemd LISTEN_PID, and `fd` writable, which a connected
    socket is and a listening socket never is. False means "maybe a
    listener": scgi_inetd.listener then makes the exact, dearer check.
    """
    if b"LISTEN_PID" in posix.environ:
        return False
    try:
        return bool(select.select([], [fd], [], 0)[1])
    except (OSError, ValueError):
        return False


def header_connection_lost(error: OSError) -> ProtocolError:
    return ProtocolError(400, f"connection lost while reading the header: {error.strerror}")


def header_cut_short(received: int) -> ProtocolError:
    return ProtocolError(400, f"connection closed inside the request header at byte {received}")


def header_timed_out() -> ProtocolError:
    return ProtocolError(408, "request header not complete in time")


def check_body_size(length: int, max_body: "int | None") -> None:
    """Refuse (413) a CONTENT_LENGTH over ``max_body`` before a byte of the body is read."""
    if max_body is not None and length > max_body:
        raise BodyError(413, f"request body of {length} bytes is over the limit of {max_body}",
                        left=length)


def body_stalled(left: int, timeout: float) -> BodyError:
    return BodyError(408, f"request body: no data for {timeout:g} s with {left} bytes to come")


def body_short(left: int) -> BodyError:
    return BodyError(400, f"request body ended {left} bytes short of CONTENT_LENGTH")


def open_spool(length: int, spool_dir: str) -> int:
    """An anonymous read-write file for a body of ``length`` bytes: memory when small, else ``spool_dir``.

    A large spool is allocated up front (posix_fallocate), so a full or
    unwritable directory is refused with a 503 before a byte is read, never
    noticed half-way with a truncated body.
    """
    try:
        if length <= MEMORY_SPOOL and hasattr(posix, "memfd_create"):
            return posix.memfd_create("scgi-body", posix.MFD_CLOEXEC)
        fd = _unnamed_file(spool_dir)
    except OSError as error:
        raise BodyError(503, "cannot spool the request body", f"{spool_dir}: {error.strerror}",
                        left=length) from None
    try:
        posix.posix_fallocate(fd, 0, length)
    except OSError as error:
        import errno  # not loaded at start-up: paid only here

        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            posix.close(fd)
            raise BodyError(503, "cannot spool the request body",
                            f"{spool_dir}: {error.strerror}", left=length) from None
        # EOPNOTSUPP and the like: a file system that cannot preallocate still works.
    return fd


def _unnamed_file(directory: str) -> int:
    """A file in ``directory`` that has no name: O_TMPFILE, or created and unlinked at once."""
    if hasattr(posix, "O_TMPFILE"):
        try:
            return posix.open(directory, posix.O_TMPFILE | posix.O_RDWR | posix.O_CLOEXEC, 0o600)
        except IsADirectoryError:  # raised where the file system lacks O_TMPFILE
            pass
    while True:
        path = f"{directory}/.scgi-body-{posix.getpid()}-{posix.urandom(6).hex()}"
        try:
            fd = posix.open(path, posix.O_CREAT | posix.O_EXCL | posix.O_RDWR | posix.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        posix.unlink(path)
        return fd


def write_spool(spool: int, data: "bytes | bytearray | memoryview") -> None:
    """Append ``data`` to the spool; a full disk is a BodyError (503)."""
    view = memoryview(data)
    try:
        while view:
            view = view[posix.write(spool, view):]
    except OSError as error:
        raise BodyError(503, "cannot spool the request body", error.strerror or "") from None


def spool_body(fd: int, length: int, *, spool_dir: str = DEFAULT_SPOOL_DIR,
               timeout: float = DEFAULT_BODY_TIMEOUT) -> int:
    """Read exactly ``length`` body bytes from ``fd`` into an anonymous file; return it, rewound.

    Why a gateway takes the whole body before the program answers: nginx
    stops sending the request body at the first byte of the response
    header, so a program that answers before reading all of it (git's
    http-backend on a push, a shell script that prints its headers first)
    waits forever for the rest. And a program that ignores its body exits
    with unread data on the socket, which the kernel answers with a reset.
    With the body in a file, neither can happen: nothing is left unread on
    the connection, and the program reads its body whenever it likes.
    Raises BodyError: 400 for a body cut short, 408 for a stalled one, 503
    when it cannot be stored; the spool is gone with it.
    """
    spool = open_spool(length, spool_dir)
    left = length
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        timeout_ms = int(timeout * 1000)
        while left:
            if not poller.poll(timeout_ms):
                raise body_stalled(left, timeout)
            try:
                data = posix.read(fd, min(left, SPOOL_CHUNK))
            except ConnectionError:
                data = b""
            if not data:
                raise body_short(left)
            try:
                write_spool(spool, data)
            except BodyError as error:
                error.left = left - len(data)
                raise
            left -= len(data)
        posix.lseek(spool, 0, 0)  # SEEK_SET
    except BaseException:
        posix.close(spool)
        raise
    return spool
