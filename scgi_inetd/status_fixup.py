"""``--fix-status``: run the script as a child and give its response the Status line SCGI requires.

Strategy: the script's stdout is a pipe; its stdin is what the one-shot
path put on fd 0 (the spooled body, /dev/null, or with --stream-body the
socket itself). The supervisor reads only
the response header block (at most MAX_RESPONSE_HEADER bytes), adds
``Status: 200 OK`` when the script gave none, or ``Status: 302 Found`` when
it gave a Location without a Status (RFC 3875 6.2.3, 6.2.4; a local
redirect, a Location starting with '/', is answered as a client redirect
too, since nginx does not re-dispatch it), and then moves the rest from the
pipe to the socket with os.splice (no copy through user space).

Because it outlives the script, the supervisor can do what plain exec
cannot: answer 502 when the script printed no header block, end the whole
process group on --timeout and answer 504 when no header was sent yet, and
(with --stream-body) drain the request body the script left unread, so
that the web server never sees a connection reset.
"""

import os
import _signal

from .answer import error_line, finish_connection, refuse
from .cgi_exec import RESET_SIGNALS, enter_script_directory, refuse_to_run
from .logsink import log_line
from .process_group import KILL_GRACE, end_group
from .protocol import ProtocolError, RequestError, response_header_end

__all__ = ["MAX_RESPONSE_HEADER", "SPLICE_CHUNK", "BadResponse", "ScriptTimeout", "fix_header_block",
           "read_header_block", "relay", "run_supervised", "write_all"]

#: Largest response header block we buffer: nginx's scgi_buffer_size is 4 or
#: 8 KiB and it answers 502 "too big header" beyond that, so 64 KiB is generous.
MAX_RESPONSE_HEADER = 65536
#: Bytes asked of one splice() call; the kernel moves at most a pipe's worth.
SPLICE_CHUNK = 1 << 20


class ScriptTimeout(RequestError):
    """Raised by the SIGALRM handler to interrupt whatever the supervisor was waiting on: 504."""

    def __init__(self) -> None:
        super().__init__(504, "script timed out")


class BadResponse(RequestError):
    """The script's output is not a CGI response: 502, the script's path for the log."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(502, message, detail)


def run_supervised(
    argv: list[str], environ: dict[bytes, bytes], *, timeout: float | None, unread: int = 0,
    root: str | None = None,
) -> int:
    """Run the script with stdout on a pipe, fix its header block, relay the rest.

    ``unread`` is how many body bytes are still on the connection (fd 0)
    for the script to read: what it leaves is drained at the end. ``root``
    as for cgi_exec.exec_script.
    """
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            enter_script_directory(argv[0], root), argv, environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, write_end, 1)],
            setpgroup=0,
            setsigdef=RESET_SIGNALS,
            setsigmask=(),
        )
    except (OSError, ProtocolError) as error:
        os.close(read_end)
        os.close(write_end)
        refuse_to_run(error, argv[0], unread)
        return 1
    os.close(write_end)
    headers_sent = False
    status = 0
    if timeout is not None:
        _signal.signal(_signal.SIGALRM, _on_alarm)
        _signal.setitimer(_signal.ITIMER_REAL, timeout)
    try:
        try:
            head, rest = read_header_block(read_end)
            head = fix_header_block(head)
            headers_sent = True
            write_all(1, head + rest)
            relay(read_end, 1)
        finally:
            if timeout is not None:
                _signal.setitimer(_signal.ITIMER_REAL, 0)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except ScriptTimeout as error:
        end_group(pid, KILL_GRACE, child=pid)
        message = f"{error.message} after {timeout:g} s"
        if headers_sent:
            log_line(error_line(error.status, f"{message}, response cut off", repr(argv[0])))
            finish_connection(0, 1, unread)
            return 1
        refuse(error.status, message, repr(argv[0]), unread=unread)
        return 1
    except BadResponse as error:
        end_group(pid, KILL_GRACE, child=pid)
        refuse(error.status, error.message, error.detail or repr(argv[0]), unread=unread)
        return 1
    except BrokenPipeError:
        end_group(pid, KILL_GRACE, child=pid)
        return 1
    finally:
        os.close(read_end)
    finish_connection(0, 1, unread)
    return status


def _on_alarm(signum: int, frame: object) -> None:
    raise ScriptTimeout


def read_header_block(fd: int) -> tuple[bytes, bytes]:
    """Read until the blank line ending the header block: (header block, bytes after it)."""
    buffer = b""
    while True:
        end = response_header_end(buffer)
        if end >= 0:
            return buffer[:end], buffer[end:]
        if len(buffer) > MAX_RESPONSE_HEADER:
            raise BadResponse(f"response header block over {MAX_RESPONSE_HEADER} bytes")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            if not buffer:
                raise BadResponse("script printed nothing")
            raise BadResponse("no header block in the script's output")
        buffer += chunk


def fix_header_block(head: bytes) -> bytes:
    """The header block with a Status line added when the script gave none.

    An ``HTTP/1.x NNN`` first line (a non-parsed-header style status) is
    left alone: nginx accepts it. A Status whose value does not start with
    three digits is a BadResponse, as nginx would answer it anyway.
    """
    newline = b"\r\n" if head.endswith(b"\r\n\r\n") or head == b"\r\n" else b"\n"
    lines = head.splitlines()
    if lines and lines[0].startswith(b"HTTP/"):
        return head
    has_location = False
    for line in lines:
        name, colon, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"status" and colon:
            value = value.strip()
            if not (len(value) >= 3 and value[:3].isdigit()):
                raise BadResponse(f"invalid Status line: {line[:60]!r}")
            return head
        if name == b"location" and colon:
            has_location = True
    status = b"Status: 302 Found" if has_location else b"Status: 200 OK"
    return status + newline + head


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def relay(source: int, target: int) -> None:
    """Move everything from the pipe ``source`` to ``target`` until EOF."""
    splice = getattr(os, "splice", None)
    if splice is not None:
        try:
            while splice(source, target, SPLICE_CHUNK):
                pass
            return
        except OSError as error:
            if error.errno not in (22, 38):  # EINVAL, ENOSYS: target cannot take a splice
                raise
    while chunk := os.read(source, SPLICE_CHUNK):
        write_all(target, chunk)
