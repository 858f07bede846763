"""Error answers: every refusal is a `Status:` response with a short text body and one log line.

The one place where an error becomes bytes on the wire, so that every front-end
answers the same way and never sends a traceback to the client.
"""

import os

from .logsink import log_line, program_name
from .protocol import REASONS, status_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["DISCARD_LIMIT", "DRAIN_IDLE", "DRAIN_LIMIT", "REASONS", "abort_connection", "error_line", "error_response",
           "finish_connection", "half_close", "log_unavailable", "refuse", "send_error", "status_line",
           "stderr_is_connection", "write_quietly"]


def error_response(status: int, message: str) -> bytes:
    """A complete CGI response: Status line, text/plain, Content-Length, the message."""
    body = f"{status_line(status)}: {message}\n".encode("utf-8", "backslashreplace")
    head = (
        f"Status: {status_line(status)}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def error_line(status: int, message: str, detail: str = "") -> str:
    """The log line of an error answer, the same from every program: `NNN Reason: message (detail)`.

    It starts as the client's body does, so a line in the log and the answer
    the client saw are found with one search.
    """
    return f"{status_line(status)}: {message}{' (' + detail + ')' if detail else ''}"


def send_error(fd: int, status: int, message: str, detail: str = "") -> None:
    """Answer `status` on `fd` and log one line; a client that went away is only logged.

    `message` goes to the client and the log; `detail` (a path, an errno text)
    goes to the log only.
    """
    log_line(error_line(status, message, detail))
    write_quietly(fd, error_response(status, message))


def refuse(status: int, message: str, detail: str = "", *, unread: "int | None" = 0,
           stdin: int = 0, stdout: int = 1) -> None:
    """Answer with an error and log it, then finish the connection so the client sees no reset.

    The one refusal of the synchronous paths (one-shot CGI, the --fix-status
    supervisor). `unread` is how many request bytes are still to come, None
    after a refused header (see finish_connection).
    """
    send_error(stdout, status, message, detail)
    finish_connection(stdin, stdout, unread)


def write_quietly(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd`; a client that went away only stops it."""
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass


# After a refused header the body's length is unknown: read at most this much
# while waiting for the web server to close (nginx has the whole body at hand
# and sends it at once; a client that sends more is cut off with a reset).
DISCARD_LIMIT = 16 << 20
#: Seconds without a byte after which draining gives up: nginx writes the
#: whole request at once, so a pause this long means nothing more is coming.
DRAIN_IDLE = 2.0
#: Seconds after which draining ends whatever still comes: a client sending a
#: byte a second would otherwise hold the process through DISCARD_LIMIT bytes.
DRAIN_LIMIT = 10.0


def finish_connection(stdin: int = 0, stdout: int = 1, unread: "int | None" = None,
                      idle: float = DRAIN_IDLE) -> None:
    """Half-close the response side, then read and drop what the client still sends.

    Closing a unix socket with unread data resets the connection: nginx logs
    "readv() failed (104: Connection reset by peer)" and the client may get a
    cut-off response. The half-close tells the web server the response is
    complete; it then closes, and the drain ends at EOF instead of waiting.
    `unread` is how many request bytes are still to come (CONTENT_LENGTH
    minus what was read), or None after a refused header: then until EOF, at
    most DISCARD_LIMIT bytes.
    """
    half_close(stdout)
    left = DISCARD_LIMIT if unread is None else unread
    if left <= 0:
        return
    import select
    import time

    poller = select.poll()
    poller.register(stdin, select.POLLIN)
    deadline = time.monotonic() + DRAIN_LIMIT
    while left > 0:
        wait = min(idle, deadline - time.monotonic())
        if wait <= 0 or not poller.poll(wait * 1000):
            return
        try:
            chunk = os.read(stdin, min(left, 1 << 16))
        except OSError:
            return
        if not chunk:
            return
        left -= len(chunk)


def half_close(fd: int) -> None:
    """shutdown(SHUT_WR) on the socket at `fd`; nothing when it is no socket."""
    _on_socket(fd, lambda sock, module: sock.shutdown(module.SHUT_WR))


def abort_connection(fd: int) -> None:
    """Make the connection on `fd` end in a reset instead of a clean end, once it is closed.

    For a response cut off after its head went out: a clean end (FIN) after a
    response without Content-Length looks complete, and nginx would finish the
    client's chunked response as if nothing had gone wrong. With SO_LINGER
    set to zero seconds, the last close sends a TCP reset; nginx logs the
    error and closes the client connection without the final chunk. A unix
    socket has no such signal (its peer sees a reset only when request bytes
    are left unread, and the body is read before the response begins): there
    only a declared Content-Length lets the web server see the cut.
    """
    import struct

    _on_socket(fd, lambda sock, module: sock.setsockopt(module.SOL_SOCKET, module.SO_LINGER,
                                                        struct.pack("ii", 1, 0)))


def _on_socket(fd: int, action: "Callable[[Any, Any], object]") -> None:
    """Call `action(socket object, the _socket module)` for the socket at `fd`; errors are ignored.

    A duplicate descriptor carries the socket object, so closing it leaves `fd`
    open. Nothing happens when `fd` is no socket.
    """
    import _socket

    copy = os.dup(fd)
    try:
        sock = _socket.socket(fileno=copy)
    except OSError:
        os.close(copy)
        return
    try:
        action(sock, _socket)
    except OSError:
        pass
    finally:
        sock.close()


def log_unavailable(target: object, error: OSError, resident: bool = False) -> int:
    """The log (--stderr) cannot be opened: say so where it can be read, answer 503; return 1.

    Under inetd fd 2 is the connection, like fds 0 and 1: a traceback or any
    message there reaches the web server as the response ("upstream sent
    invalid header"). So the message goes to fd 2 only when fd 2 is not the
    connection, and to syslog otherwise; fd 2 then points at /dev/null. A
    one-shot request (not `resident`, and no listening socket on fd 0) is
    still answered, with a 503 and a short body, so nginx does not wait.
    """
    message = f"cannot open the log {target!r}: {error.strerror or error}"
    if stderr_is_connection():
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        import syslog

        syslog.openlog(program_name(), syslog.LOG_PID, syslog.LOG_DAEMON)
        syslog.syslog(syslog.LOG_ERR, message)
    else:
        log_line(message)
    from .listener import listener_from_environment

    if not resident and listener_from_environment(0) is None:
        write_quietly(1, error_response(503, "the gateway cannot open its log"))
        finish_connection(0, 1)
    return 1


def stderr_is_connection() -> bool:
    """True when fd 2 is the very socket on fd 0 or 1, as inetd and systemd `Accept=yes` leave it."""
    try:
        error = os.fstat(2)
    except OSError:
        return False
    for fd in (0, 1):
        try:
            other = os.fstat(fd)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (error.st_dev, error.st_ino):
            return True
    return False
