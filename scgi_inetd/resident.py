"""Resident mode: accept on a listening socket and fork one child per connection.

Shared by every front-end. The child puts the connection on fds 0 and 1 and
runs the front-end's one-shot path unchanged, so a program written for inetd
`nowait` also works under `wait`, a systemd `Accept=no` unit, or `--listen`.
What is imported once before the loop (the app, the library) is not paid again
per request: that is the whole gain over one-shot mode.

Loop: poll the listener and a wake-up pipe (signals write to it); reap
children; stop accepting at `max_children`; exit after `idle_timeout` without
a connection or child; on SIGTERM close the listener, give running children
`grace` seconds, then end the rest and exit 0.
"""

from __future__ import annotations

import os
import select
import stat
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Callable

# Every one-shot request imports this module to call listener_from_environment,
# so `socket` and `signal` (5 and 3 ms: both pull in enum) and `typing` are
# imported inside the functions of the resident loop, which pay them once.

from .logsink import log_line

__all__ = ["bind_listener", "listener_from_environment", "serve"]

# systemd's sd_listen_fds(3): passed sockets start at fd 3.
SD_LISTEN_FDS_START = 3
LISTEN_BACKLOG = 128


def listener_from_environment(stdin: int = 0) -> int | None:
    """The listening socket a super-server passed us, or None for a one-shot connection.

    systemd (`Accept=no`) sets LISTEN_PID and LISTEN_FDS; inetd `wait` puts the
    listening socket itself on fd 0.
    """
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS", "0") != "0":
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
        os.set_inheritable(SD_LISTEN_FDS_START, False)
        return SD_LISTEN_FDS_START
    try:
        if not stat.S_ISSOCK(os.fstat(stdin).st_mode):
            return None
    except OSError:
        return None
    import _socket

    sock = _socket.socket(fileno=stdin)
    try:
        listening = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ACCEPTCONN)
    finally:
        sock.detach()
    return stdin if listening else None


def bind_listener(address: str) -> int:
    """Listen on `unix:PATH` (a stale socket file is replaced) or `HOST:PORT`; return the fd."""
    import socket

    if address.startswith("unix:"):
        # Bound under a temporary name and renamed once listening, so the path
        # never names a socket that refuses connections (nor a stale one).
        path = address[5:]
        if os.path.exists(path) and not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ValueError(f"{path} exists and is not a socket")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        temporary = f"{path}.{os.getpid()}.tmp"
        sock.bind(temporary)
        sock.listen(LISTEN_BACKLOG)
        os.rename(temporary, path)
        return sock.detach()
    else:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"listen address must be unix:PATH or HOST:PORT, not {address!r}")
        host = host.strip("[]")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
    sock.listen(LISTEN_BACKLOG)
    return sock.detach()


def serve(listen_fd: int, handle: Callable[[], None], *, max_children: int = 16,
          idle_timeout: float | None = None, grace: float = 30.0) -> int:
    """Serve connections on `listen_fd` until SIGTERM/SIGINT or `idle_timeout`; return 0."""
    import signal
    import socket

    listener = socket.socket(fileno=listen_fd)
    listener.setblocking(False)
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: stopping.append(number))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda number, frame: None)
    old_wakeup = signal.set_wakeup_fd(wake_write)
    children: set[int] = set()
    last_activity = time.monotonic()
    try:
        while not stopping:
            _reap(children)
            if children:
                last_activity = time.monotonic()
            accepting = len(children) < max_children
            timeout = None
            if idle_timeout is not None and not children:
                timeout = last_activity + idle_timeout - time.monotonic()
                if timeout <= 0:
                    log_line(f"idle for {idle_timeout:g}s, exiting")
                    break
            ready = select.select([wake_read, listen_fd] if accepting else [wake_read], [], [], timeout)[0]
            if wake_read in ready:
                _drain(wake_read)
            if listen_fd in ready:
                try:
                    connection, _ = listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                last_activity = time.monotonic()
                children.add(_spawn(connection, handle, listener, (wake_read, wake_write), previous))
        listener.close()
        _finish(children, grace)
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_read)
        os.close(wake_write)
    return 0


def _spawn(connection: socket.socket, handle: Callable[[], None], listener: socket.socket,
           wake: tuple[int, int], handlers: dict) -> int:
    """Fork a child that serves `connection` on fds 0 and 1 with the one-shot path."""
    import signal

    pid = os.fork()
    if pid:
        connection.close()
        return pid
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in handlers:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        listener.close()
        for fd in wake:
            os.close(fd)
        connection.setblocking(True)
        os.dup2(connection.fileno(), 0)
        os.dup2(connection.fileno(), 1)
        connection.close()
        handle()
        status = 0
    except BaseException as error:  # the child must never return into the loop
        log_line(f"connection handler failed: {error!r}")
    finally:
        os._exit(status)


def _reap(children: set[int]) -> None:
    while children:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _finish(children: set[int], grace: float) -> None:
    """Let running children end within `grace` seconds, then end the rest."""
    import signal

    deadline = time.monotonic() + grace
    while children and time.monotonic() < deadline:
        _reap(children)
        time.sleep(0.01)
    if children:
        log_line(f"{len(children)} request(s) still running after {grace:g}s, ending them")
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        while children:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            children.discard(pid)
