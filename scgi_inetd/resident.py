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

With `requests_per_child` N > 1 the fork is paid once per N connections
instead: a pool of `max_children` pre-forked workers each block in accept()
on the shared listener (the kernel wakes one) and serve up to N connections
with the same one-shot path, then exit and are replaced. The price is
isolation: what one request leaves in a worker's memory the next one sees.
"""

from __future__ import annotations

import errno
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
from .options import DEFAULT_SOCKET_MODE, ServeOptions

__all__ = ["bind_listener", "listener_from_environment", "serve"]

#: Seconds the listener is left alone after accept() failed (EMFILE, ENFILE,
#: ENOBUFS): it stays readable while the connection waits, and trying again at
#: once would spin the loop and fill the log.
ACCEPT_PAUSE = 0.1

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


def bind_listener(address: str, *, mode: int = DEFAULT_SOCKET_MODE, owner: str | None = None) -> int:
    """Listen on `unix:PATH` or `HOST:PORT`; return the fd.

    A unix socket gets `mode` and `owner` (USER[:GROUP]) before anyone can
    reach it: it is bound under a temporary name, set up, and renamed onto
    PATH once listening, so PATH never names a socket that refuses
    connections or has the umask's permissions. PATH may be a stale socket
    (replaced), not one a server still listens on (refused).
    """
    import socket

    if address.startswith("unix:"):
        path = address[5:]
        refuse_live_socket(path)
        uid, gid = socket_owner_ids(owner)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            sock.bind(temporary)
            try:
                os.chmod(temporary, mode)
                if owner:
                    os.chown(temporary, uid, gid)
                sock.listen(LISTEN_BACKLOG)
                os.rename(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise
        except BaseException:
            sock.close()
            raise
        return sock.detach()
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"listen address must be unix:PATH or HOST:PORT, not {address!r}")
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(LISTEN_BACKLOG)
    return sock.detach()


def refuse_live_socket(path: str) -> None:
    """Raise ValueError when `path` is not a socket, or is one a server still listens on.

    Without the check a second server renames its socket over the first's,
    which keeps running, unreachable. The probe is a non-blocking connect:
    refused means a stale file (no listener), which may be replaced; the
    probed server sees one empty connection.
    """
    import socket

    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ValueError(f"{path} exists and is not a socket")
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        result = probe.connect_ex(path)
    finally:
        probe.close()
    if result in (0, errno.EAGAIN, errno.EINPROGRESS):  # EAGAIN: listening, its queue full
        raise ValueError(f"a server is already listening on {path}")
    if result not in (errno.ECONNREFUSED, errno.ENOENT):
        raise ValueError(f"cannot tell whether a server listens on {path}: {os.strerror(result)}")


def socket_owner_ids(owner: str | None) -> tuple[int, int]:
    """(uid, gid) for `USER[:GROUP]` (names or numbers), -1 for a part not given."""
    if not owner:
        return -1, -1
    import grp
    import pwd

    user, _, group = owner.partition(":")
    try:
        uid = -1 if not user else int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
        gid = -1 if not group else int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"no such user or group in --socket-owner {owner!r}") from None
    return uid, gid


def serve(listen_fd: int, handle: Callable[[], None], options: ServeOptions | None = None) -> int:
    """Serve connections on `listen_fd` until SIGTERM/SIGINT or `options.idle_timeout`; return 0.

    `options` (the table's defaults when None) gives max_children,
    idle_timeout, grace and requests_per_child: 1 forks a child per
    connection; more runs a pool of `max_children` workers that each serve
    that many connections.
    """
    import signal
    import socket

    options = ServeOptions() if options is None else options
    max_children, grace = options.max_children, options.grace
    idle_timeout, requests_per_child = options.idle_timeout, options.requests_per_child

    listener = socket.socket(fileno=listen_fd)
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: stopping.append(number))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda number, frame: None)
    old_wakeup = signal.set_wakeup_fd(wake_write)
    loop = _Loop(listener, handle, (wake_read, wake_write), previous, stopping, idle_timeout)
    try:
        if requests_per_child > 1:
            _serve_pool(loop, requests_per_child, max_children, grace)
        else:
            _serve_each(loop, max_children, grace)
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_read)
        os.close(wake_write)
    return 0


class _Loop:
    """What both loops share: the listener, the app's handler, the wake-up pipe and the stop request."""

    def __init__(self, listener: socket.socket, handle: Callable[[], None], wake: tuple[int, int],
                 handlers: dict, stopping: list[int], idle_timeout: float | None) -> None:
        self.listener = listener
        self.handle = handle
        self.wake = wake
        self.handlers = handlers  # the signals the loop caught, which a child resets
        self.stopping = stopping  # signals received; not empty means stop
        self.idle_timeout = idle_timeout


def _serve_each(loop: _Loop, max_children: int, grace: float) -> None:
    """One forked child per connection, at most `max_children` at once."""
    listener, wake_read, idle_timeout = loop.listener, loop.wake[0], loop.idle_timeout
    listen_fd = listener.fileno()
    listener.setblocking(False)
    children: set[int] = set()
    last_activity = time.monotonic()
    paused_until = 0.0  # after a failed accept(): the listener is left alone until then
    while not loop.stopping:
        _reap(children)
        now = time.monotonic()
        if children:
            last_activity = now
        accepting = len(children) < max_children and now >= paused_until
        timeout = None if accepting or now >= paused_until else paused_until - now
        if idle_timeout is not None and not children:
            idle_left = last_activity + idle_timeout - now
            if idle_left <= 0:
                log_line(f"idle for {idle_timeout:g}s, exiting")
                break
            timeout = idle_left if timeout is None else min(timeout, idle_left)
        ready = select.select([wake_read, listen_fd] if accepting else [wake_read], [], [], timeout)[0]
        if wake_read in ready:
            _drain(wake_read)
        if listen_fd in ready:
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            except OSError as error:  # EMFILE and the like
                if not paused_until:
                    log_line(f"cannot accept: {error.strerror}; retrying every {ACCEPT_PAUSE:g} s")
                paused_until = time.monotonic() + ACCEPT_PAUSE
                continue
            paused_until = 0.0
            last_activity = time.monotonic()
            children.add(_spawn(connection, loop.handle, listener, loop.wake, loop.handlers))
    listener.close()
    _finish(children, grace)


def _spawn(connection: socket.socket, handle: Callable[[], None], listener: socket.socket,
           wake: tuple[int, int], handlers: dict) -> int:
    """Fork a child that serves `connection` on fds 0 and 1 with the one-shot path."""
    import signal

    pid, unblock = _fork()
    if pid:
        connection.close()
        return pid
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in handlers:
            signal.signal(sig, signal.SIG_DFL)
        unblock()
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


def _fork() -> tuple[int, Callable[[], None]]:
    """os.fork() with SIGTERM and SIGINT blocked in the child until it calls the function returned.

    Until a child has set its own handlers it has the loop's, which only
    note the signal in the loop's `stopping` list (the child's copy of it):
    a SIGTERM arriving then would be lost and the child would serve on. The
    blocked signal waits instead. The parent's mask is restored at once.
    """
    import signal

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGTERM, signal.SIGINT))

    def unblock() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    try:
        pid = os.fork()
    except BaseException:
        unblock()
        raise
    if pid:
        unblock()
    return pid, unblock


# A pool worker's slot on the activity board while it serves a connection;
# otherwise the slot holds the time.monotonic() its last connection ended.
BUSY = -1.0

# A worker that fails sooner than this after its start is replaced only this
# long after that start: a handler that crashes at once cannot make the pool
# fork in a tight loop.
RESPAWN_DELAY = 1.0


class _StopWorker(Exception):
    """Raised by an idle worker's SIGTERM handler, out of its blocking accept().

    A connection accepted in the instant before the handler runs is closed
    unanswered, as one in the listen queue is when the listener closes.
    """


def _serve_pool(loop: _Loop, requests: int, workers: int, grace: float) -> None:
    """Keep `workers` pre-forked workers serving, each up to `requests` connections, until stopped or idle.

    The loop never accepts, so it learns of activity from an activity board
    in shared memory, one slot per worker: BUSY during a request, else when
    the worker's last request ended. That costs a worker one store per
    request and no system call, and wakes this loop only when a worker
    exits (SIGCHLD) or when the idle deadline is due.
    """
    import fcntl
    import mmap
    import signal
    import socket

    passed = loop.listener
    if passed.fileno() <= 1:  # inetd `wait` passes it on fds 0 to 2; a worker puts connections on 0 and 1
        loop.listener = socket.socket(fileno=fcntl.fcntl(passed.fileno(), fcntl.F_DUPFD_CLOEXEC, 3))
    board = mmap.mmap(-1, 8 * workers)  # anonymous and shared: children write, the loop reads
    activity = memoryview(board).cast("d")
    loop.listener.setblocking(True)
    running: dict[int, int] = {}  # pid -> slot
    born = [0.0] * workers  # when each slot's worker was forked
    due = [0.0] * workers  # when each free slot may get a worker again
    began = time.monotonic()
    try:
        while not loop.stopping:
            now = time.monotonic()
            for pid, status in _reap_statuses(running):
                slot = running.pop(pid)
                if activity[slot] == BUSY:  # killed mid-request: that was activity too
                    activity[slot] = now
                if status and now - born[slot] < RESPAWN_DELAY:
                    due[slot] = born[slot] + RESPAWN_DELAY
            free = set(range(workers)).difference(running.values())
            for slot in sorted(free):
                if due[slot] <= now:
                    born[slot] = now
                    running[_fork_worker(loop, requests, activity, slot)] = slot
                    free.discard(slot)
            deadlines = [due[slot] for slot in free]
            if loop.idle_timeout is not None:
                values = activity.tolist()
                last = now if BUSY in values else max(began, *values)
                if now - last >= loop.idle_timeout:
                    log_line(f"idle for {loop.idle_timeout:g}s, exiting")
                    break
                deadlines.append(last + loop.idle_timeout)
            timeout = max(min(deadlines) - now, 0) if deadlines else None
            if select.select([loop.wake[0]], [], [], timeout)[0]:
                _drain(loop.wake[0])
        for pid in running:
            os.kill(pid, signal.SIGTERM)
        loop.listener.close()
        passed.close()
        _finish(set(running), grace, signal.SIGKILL, resend=signal.SIGTERM)
    finally:
        activity.release()
        board.close()


def _fork_worker(loop: _Loop, requests: int, activity: memoryview, slot: int) -> int:
    """Fork a worker that accepts and serves up to `requests` connections, then exits."""
    pid, unblock = _fork()
    if pid:
        return pid
    status = 1
    try:
        _work(loop, requests, activity, slot, unblock)
        status = 0
    except BaseException as error:  # the worker must never return into the loop
        log_line(f"connection handler failed: {error!r}")
    finally:
        os._exit(status)


def _work(loop: _Loop, requests: int, activity: memoryview, slot: int, unblock: Callable[[], None]) -> None:
    """A pool worker's life: serve connection after connection on fds 0 and 1.

    Between connections fds 0 and 1 are /dev/null, so the one just served
    has no descriptor left here and its client sees the end of the response.
    SIGTERM stops an idle worker at once and a busy one after its request;
    SIGINT (a terminal's ^C reaches the whole group) is left to the loop.
    """
    import signal

    busy = stopped = failing = False

    def stop(number: int, frame: object) -> None:
        nonlocal stopped
        stopped = True
        if not busy:
            raise _StopWorker

    signal.set_wakeup_fd(-1)
    for sig in loop.handlers:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in loop.wake:
        os.close(fd)
    parent = os.getppid()
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    os.dup2(null, 0)
    os.dup2(null, 1)
    accept = loop.listener._accept
    served = 0
    try:
        signal.signal(signal.SIGTERM, stop)
        unblock()  # a SIGTERM sent since the fork arrives now, to `stop`
        while served < requests and not stopped:
            try:
                fd, _ = accept()
            except (InterruptedError, ConnectionAbortedError):
                continue
            except OSError as error:  # EMFILE and the like: wait, then try again
                if not failing:
                    log_line(f"cannot accept: {error.strerror}; retrying every {ACCEPT_PAUSE:g} s")
                failing = True
                time.sleep(ACCEPT_PAUSE)
                continue
            failing = False
            busy = True
            activity[slot] = BUSY
            served += 1
            try:
                os.dup2(fd, 0)
                os.dup2(fd, 1)
                os.close(fd)
                loop.handle()
            finally:
                os.dup2(null, 0)
                os.dup2(null, 1)
            activity[slot] = time.monotonic()
            busy = False
            if os.getppid() != parent:  # the loop is gone: nobody would stop us
                break
    except _StopWorker:
        pass


def _reap_statuses(children: dict[int, int]) -> list[tuple[int, int]]:
    """(pid, exit code) of every child in `children` that has ended, without waiting."""
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        if pid in children:
            ended.append((pid, os.waitstatus_to_exitcode(status)))


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


#: Seconds between the SIGTERMs a stopping pool sends its workers that still run.
RESEND_INTERVAL = 1.0


def _finish(children: set[int], grace: float, ending: int | None = None, resend: int | None = None) -> None:
    """Let running children end within `grace` seconds, then end the rest with `ending` (SIGTERM).

    With `resend`, the children still running get that signal again every
    RESEND_INTERVAL: a stop request must not hang on one signal that a worker
    missed (an idle worker stops at once, a busy one after its request).
    """
    import signal

    if ending is None:
        ending = signal.SIGTERM
    deadline = time.monotonic() + grace
    next_resend = time.monotonic() + RESEND_INTERVAL
    while children and time.monotonic() < deadline:
        _reap(children)
        if resend is not None and time.monotonic() >= next_resend:
            next_resend += RESEND_INTERVAL
            for pid in children:
                try:
                    os.kill(pid, resend)
                except ProcessLookupError:
                    pass
        time.sleep(0.01)
    if children:
        log_line(f"{len(children)} request(s) still running after {grace:g}s, ending them")
        for pid in children:
            try:
                os.kill(pid, ending)
            except ProcessLookupError:
                pass
        while children:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            children.discard(pid)
