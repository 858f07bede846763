"""Where the gateway's own log lines and the app's stderr go.

Under inetd fd 2 is the client connection, like fds 0 and 1: anything written
to stderr would reach nginx as response bytes. So before any user code runs,
fd 2 is pointed at a log: a file (appended to), syslog, or /dev/null (the
default). Syslog has no file descriptor, so a small forked reader turns the
lines written to a pipe on fd 2 into syslog messages: a script's stderr gets
there too. `exit_now` ends a one-shot process once its log is flushed.
"""

import posix
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms on every one-shot request
    from typing import TextIO

__all__ = ["exit_now", "format_line", "line_prefix", "log_line", "open_log", "program_name", "quote_names"]

#: quote_names shows at most this many names, each cut to QUOTED_NAME_CHARS: a
#: client sending thousands of names still gets one short log line.
QUOTED_NAMES = 8
QUOTED_NAME_CHARS = 40


def program_name() -> str:
    return sys.argv[0].rpartition("/")[2] if sys.argv and sys.argv[0] else "scgi-inetd"


def line_prefix() -> str:
    """`program[pid]: `, what every log line of every program starts with."""
    return f"{program_name()}[{posix.getpid()}]: "


def format_line(message: str) -> str:
    """`program[pid]: message` and a newline: every log line of every program, on fd 2 or wsgi.errors."""
    return f"{line_prefix()}{message}\n"


def log_line(message: str) -> None:
    """Write one line to fd 2: `program[pid]: message`, its line breaks made spaces. Never raises."""
    try:
        posix.write(2, format_line(" ".join(message.split("\n"))).encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def quote_names(names: "list[str]") -> str:
    """Client-chosen names for a log line: quoted, cut short, and at most QUOTED_NAMES of them."""
    shown = ", ".join(repr(name[:QUOTED_NAME_CHARS]) for name in names[:QUOTED_NAMES])
    more = len(names) - QUOTED_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def open_log(target: "None | str | TextIO" = None) -> "TextIO":
    """Point fd 2 at `target` and return a line-buffered text stream on it.

    `target`: None or "/dev/null" (discard), "syslog", a path (appended to,
    created 0640), or an open file object (its descriptor is used when it has
    one; otherwise it is returned as the stream and fd 2 goes to /dev/null).
    """
    if target is None or isinstance(target, str):
        if target == "syslog":
            fd = _syslog_pipe()
        else:
            flags = posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC
            fd = posix.open(target or "/dev/null", flags, 0o640)
        _replace_stderr(fd)
        return _stderr_stream()
    try:
        fileno = target.fileno()
    except (AttributeError, OSError, ValueError):
        _replace_stderr(posix.open("/dev/null", posix.O_WRONLY | posix.O_CLOEXEC))
        return target
    target.flush()
    posix.dup2(fileno, 2)
    return _stderr_stream()


def _replace_stderr(fd: int) -> None:
    if fd != 2:
        posix.dup2(fd, 2)
        posix.close(fd)


def _stderr_stream() -> "TextIO":
    stream = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.stderr = stream
    return stream


def _syslog_pipe() -> int:
    """A pipe whose reader, a detached grandchild, sends each line to syslog."""
    read_end, write_end = posix.pipe()
    ident = program_name()
    pid = posix.fork()
    if pid == 0:
        try:
            if posix.fork() == 0:
                posix.close(write_end)
                _pump_to_syslog(read_end, ident)
        finally:
            posix._exit(0)
    posix.waitpid(pid, 0)
    posix.close(read_end)
    return write_end


def _pump_to_syslog(fd: int, ident: str) -> None:
    import syslog

    for keep in (0, 1, 2):
        posix.dup2(posix.open("/dev/null", posix.O_RDWR), keep)
    syslog.openlog(ident, syslog.LOG_PID, syslog.LOG_DAEMON)
    with open(fd, "rb") as lines:
        for line in lines:
            syslog.syslog(syslog.LOG_ERR, line.rstrip(b"\n").decode("utf-8", "backslashreplace"))


def exit_now(status: int) -> None:
    """Run atexit handlers, flush stdout and stderr, and end without interpreter teardown.

    The entry points in bin/ end with this: a one-shot process has answered
    its request, and tearing down every module and object costs more than a
    millisecond per request (3.5 ms CPU measured for scgi-wsgi; see
    docs/benchmarks.md). What an app must do under any server still holds:
    close the files it writes; `logging` and other atexit users are flushed.
    """
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    posix._exit(status)
