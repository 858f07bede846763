"""Resident ``scgi-run`` (exec mode): read headers in one process, spawn each script with vfork.

Strategy: the generic resident loop (resident.serve) forks the whole
interpreter per connection and the child reads the header and execs, so each
request pays for copying the page tables of a Python process, the
copy-on-write faults of the child and the teardown of that copy at execve:
about 3 ms of CPU, three times what fcgiwrap spends. Here the one resident
process reads every connection's header itself, then starts the script with
``os.posix_spawn`` (glibc: clone with CLONE_VM | CLONE_VFORK, nothing copied),
with the connection on fds 0 and 1, the log on fd 2, its own process group,
default signal dispositions and an empty signal mask, as exec_script gives a
one-shot script. The rules (resolving and confining the script, its
environment) are the one-shot path's own: ScriptResolver and
cgi_exec.script_invocation.

One thread, one ``poll``: a connection whose header is slow or never comes
waits in the poll set under ``--header-timeout``, never in a blocking read,
so it delays nobody. Headers are read exactly, as reader.read_request does
(never a body byte: the script reads the body from the socket itself). Error
answers are short enough to fit in the empty send buffer of a fresh
connection, and the socket is non-blocking while we own it, so a client that
does not read cannot stall the loop either.

``--max-children`` bounds the connections in progress (header being read,
script running, error body being drained), as it bounds the forked children
of resident.serve. ``--timeout`` is enforced here instead of by a watchdog
process: at the deadline the script's process group gets SIGTERM, then
SIGKILL after cgi_exec.KILL_GRACE. ``--fix-status`` needs a supervising
process per request and keeps using resident.serve (see cgi_cli).
"""

import os
import select
import signal
import time

import _socket

from .answer import DISCARD_LIMIT, DRAIN_IDLE, send_error
from .cgi_exec import (KILL_GRACE, RESET_SIGNALS, CgiConfig, content_length, group_alive,
                       script_invocation)
from .logsink import log_line
from .options import ServeOptions
from .protocol import MIN_HEADER_SIZE, IncompleteRequest, ProtocolError, netstring_extent, parse_request
from .script_resolver import ScriptError

__all__ = ["serve"]

#: How often a process group whose leader has exited is looked at again, while
#: a --timeout may still have to end it (a shell's background child).
GROUP_CHECK_INTERVAL = 0.05
#: Bytes read at a time from an error answer's unread request body.
DRAIN_CHUNK = 1 << 16


class Connection:
    """An accepted connection we still own: its header being read, or its body being drained."""

    __slots__ = ("sock", "fd", "received", "size", "deadline", "unread", "polled")

    def __init__(self, sock: "_socket.socket", deadline: float) -> None:
        self.sock = sock  # blocking, as the script will want it: reads here pass MSG_DONTWAIT
        self.fd = sock.fileno()
        self.received = b""
        self.size: int | None = None  # the header netstring's size, once its prefix is in
        self.deadline = deadline
        self.unread: int | None = None  # body bytes left to drain, once answered with an error
        self.polled = False  # in the poll set: its header did not come with the connection


class Running:
    """A script started for a connection: its process group, and its --timeout state."""

    __slots__ = ("pid", "deadline", "kill_at", "exited")

    def __init__(self, pid: int, deadline: float | None) -> None:
        self.pid = pid  # also its process group id
        self.deadline = deadline
        self.kill_at: float | None = None
        self.exited = False  # reaped, but its group may live on (--timeout still watches it)


def serve(listen_fd: int, config: CgiConfig, options: "ServeOptions | None" = None) -> int:
    """Serve connections on ``listen_fd`` until SIGTERM/SIGINT or ``options.idle_timeout``; return 0.

    ``options`` (the table's defaults when None) gives max_children, idle_timeout and grace.
    """
    options = ServeOptions() if options is None else options
    return CgiServer(listen_fd, config, options.max_children, options.idle_timeout, options.grace).run()


class CgiServer:
    """The accept / read-header / spawn / reap loop; see the module docstring."""

    def __init__(self, listen_fd: int, config: CgiConfig, max_children: int,
                 idle_timeout: float | None, grace: float) -> None:
        self.listener = _socket.socket(fileno=listen_fd)
        self.listener.setblocking(False)
        self.listen_fd = listen_fd
        self.config = config
        self.max_children = max_children
        self.idle_timeout = idle_timeout
        self.grace = grace
        self.connections: dict[int, Connection] = {}
        self.running: dict[int, Running] = {}
        self.poller = select.poll()
        self.listening = False
        self.stopping: list[int] = []
        self.last_activity = time.monotonic()
        self.home = -1  # this process's own cwd, to return to after each spawn

    def run(self) -> int:
        _prepare_descriptors(self.listen_fd)
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.poller.register(wake_read, select.POLLIN)
        self.home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        previous = {sig: signal.signal(sig, lambda number, frame: self.stopping.append(number))
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda number, frame: None)
        old_wakeup = signal.set_wakeup_fd(wake_write)
        try:
            self.loop(wake_read)
            self.finish()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (wake_read, wake_write, self.home):
                os.close(fd)
        return 0

    def loop(self, wake_read: int) -> None:
        """Until SIGTERM or idleness; after SIGTERM, until the work in progress is done or ``grace``."""
        stop_deadline = None
        signalled = True  # a signal (SIGCHLD among them) wrote to the wake-up pipe
        while True:
            now = time.monotonic()
            if signalled:
                self.reap()
                signalled = False
            self.enforce_deadlines(now)
            if self.stopping and stop_deadline is None:
                stop_deadline = now + self.grace
                self.listen(False)
                self.listener.close()
            if stop_deadline is not None and (not self.busy() or now >= stop_deadline):
                return
            if self.busy():
                self.last_activity = now
            elif self.idle_timeout is not None and now - self.last_activity >= self.idle_timeout:
                log_line(f"idle for {self.idle_timeout:g}s, exiting")
                return
            self.listen(stop_deadline is None and self.in_progress() < self.max_children)
            wait = self.next_wake(now, stop_deadline)
            for fd, events in self.poller.poll(None if wait is None else max(wait, 0) * 1000 + 1):
                if fd == wake_read:
                    _drain_pipe(wake_read)
                    signalled = True
                elif fd == self.listen_fd:
                    self.accept()
                elif fd in self.connections:
                    self.readable(self.connections[fd])

    def busy(self) -> bool:
        return bool(self.connections or self.running)

    def in_progress(self) -> int:
        """Connections counted against --max-children (a script past its own exit is not)."""
        return len(self.connections) + sum(not script.exited for script in self.running.values())

    def listen(self, accepting: bool) -> None:
        if accepting != self.listening:
            if accepting:
                self.poller.register(self.listen_fd, select.POLLIN)
            else:
                self.poller.unregister(self.listen_fd)
            self.listening = accepting

    def next_wake(self, now: float, stop_deadline: float | None) -> float | None:
        """Seconds until the nearest deadline, or None to sleep until something happens."""
        deadlines = [connection.deadline for connection in self.connections.values()]
        for script in self.running.values():
            deadlines.append(script.kill_at if script.kill_at is not None else script.deadline)
            if script.exited:
                deadlines.append(now + GROUP_CHECK_INTERVAL)
        if stop_deadline is not None:
            deadlines.append(stop_deadline)
        elif self.idle_timeout is not None and not self.busy():
            deadlines.append(self.last_activity + self.idle_timeout)
        deadlines = [deadline for deadline in deadlines if deadline is not None]
        return min(deadlines) - now if deadlines else None

    def accept(self) -> None:
        while self.in_progress() < self.max_children:
            try:
                fd, _ = self.listener._accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:  # EMFILE and the like: try again on the next wake-up
                log_line(f"cannot accept: {error.strerror}")
                return
            sock = _socket.socket(self.listener.family, self.listener.type, 0, fd)
            connection = Connection(sock, time.monotonic() + self.config.header_timeout)
            self.connections[fd] = connection
            # nginx sends the header with the connection: try it before polling.
            self.readable(connection)
            if fd in self.connections and not connection.polled:
                self.poller.register(fd, select.POLLIN)
                connection.polled = True

    def readable(self, connection: Connection) -> None:
        if connection.unread is not None:
            self.drain(connection)
            return
        try:
            header = self.read_header(connection)
        except ProtocolError as error:
            # What follows a refused header is never ours to pass on; reading it
            # (until EOF, at most DISCARD_LIMIT) spares the client a reset, as
            # answer.finish_connection does for the one-shot front-ends.
            self.refuse(connection, error.status, str(error), unread=DISCARD_LIMIT)
            return
        if header is not None:
            self.start(connection, header)

    def read_header(self, connection: Connection) -> bytes | None:
        """One read towards the header, never past it; the whole header once it is in.

        As reader.read_request: until the length prefix is known, ask for no
        more than a valid header's minimum size; then exactly what is left.
        """
        if connection.size is None:
            count = max(MIN_HEADER_SIZE - len(connection.received), 1)
        else:
            count = connection.size - len(connection.received)
        try:
            chunk = connection.sock.recv(count, _socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        except ConnectionError as error:
            raise ProtocolError(400, f"connection lost while reading the header: {error.strerror}") from None
        if not chunk:
            raise ProtocolError(400, f"connection closed inside the request header at byte "
                                     f"{len(connection.received)}")
        connection.received += chunk
        if connection.size is None:
            try:
                connection.size = netstring_extent(connection.received, self.config.max_header)
            except IncompleteRequest:
                return None
        return connection.received if len(connection.received) == connection.size else None

    def start(self, connection: Connection, header: bytes) -> None:
        """Resolve the script, spawn it on the connection, and let go of the connection."""
        try:
            request, _ = parse_request(header, self.config.max_header)
        except ProtocolError as error:
            self.refuse(connection, error.status, str(error), unread=DISCARD_LIMIT)
            return
        try:
            script = self.config.script or self.config.resolver.resolve(request.get("SCRIPT_FILENAME"))
        except ScriptError as error:
            self.refuse(connection, error.status, str(error), error.detail, content_length(request))
            return
        argv, environ = script_invocation(self.config, request, script)
        try:
            pid = spawn(argv, environ, connection.fd, self.home)
        except OSError as error:
            self.refuse(connection, 500, "cannot execute the script", f"{argv[0]!r}: {error.strerror}",
                        content_length(request))
            return
        timeout = self.config.timeout
        self.running[pid] = Running(pid, None if timeout is None else time.monotonic() + timeout)
        self.forget(connection)

    def refuse(self, connection: Connection, status: int, message: str, detail: str = "",
               unread: int = 0) -> None:
        """Answer an error; then close, or first drain the body the client is still sending.

        The answer (about 150 bytes) fits in the send buffer of a connection
        we have not written to yet; should it not, send_error drops it rather
        than block (the socket is made non-blocking first).
        """
        os.set_blocking(connection.fd, False)
        send_error(connection.fd, status, message, detail)
        if unread <= 0:
            self.forget(connection)
            return
        # Closing with unread data resets the connection; half-close, then read
        # the body away, as answer.finish_connection does for a one-shot refusal.
        try:
            connection.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass
        connection.unread = unread
        connection.deadline = time.monotonic() + DRAIN_IDLE

    def drain(self, connection: Connection) -> None:
        try:
            chunk = connection.sock.recv(min(connection.unread, DRAIN_CHUNK), _socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        connection.unread -= len(chunk)
        connection.deadline = time.monotonic() + DRAIN_IDLE
        if not chunk or connection.unread <= 0:
            self.forget(connection)

    def forget(self, connection: Connection) -> None:
        if connection.polled:
            self.poller.unregister(connection.fd)
        del self.connections[connection.fd]
        connection.sock.close()

    def enforce_deadlines(self, now: float) -> None:
        for connection in [c for c in self.connections.values() if now >= c.deadline]:
            if connection.unread is None:
                self.refuse(connection, 408, "request header not complete in time",
                            unread=DISCARD_LIMIT)
            else:
                self.forget(connection)
        for script in list(self.running.values()):
            if script.exited and not group_alive(script.pid):
                del self.running[script.pid]
            elif script.kill_at is not None and now >= script.kill_at:
                _signal_group(script.pid, signal.SIGKILL)
                script.kill_at = None
                script.deadline = None
                if script.exited:
                    del self.running[script.pid]
            elif script.deadline is not None and now >= script.deadline:
                log_line(f"script (process group {script.pid}) still running after "
                         f"{self.config.timeout:g}s, ending it")
                _signal_group(script.pid, signal.SIGTERM)
                script.kill_at = now + KILL_GRACE
                script.deadline = None

    def reap(self) -> None:
        """Collect exited scripts; with --timeout, keep watching a group that outlives its leader."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            script = self.running.get(pid)
            if script is None:
                continue
            if (script.deadline is None and script.kill_at is None) or not group_alive(pid):
                del self.running[pid]
            else:
                script.exited = True

    def finish(self) -> None:
        """After SIGTERM's grace (or when idle): drop unanswered connections, end running scripts."""
        self.listen(False)
        self.listener.close()
        for connection in list(self.connections.values()):
            self.forget(connection)
        self.reap()
        if not self.running:
            return
        log_line(f"{len(self.running)} script(s) still running after {self.grace:g}s, ending them")
        for pid in self.running:
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        while self.running and time.monotonic() < deadline:
            self.reap()
            for script in [s for s in self.running.values() if s.exited and not group_alive(s.pid)]:
                del self.running[script.pid]
            time.sleep(0.02)
        for pid in self.running:
            _signal_group(pid, signal.SIGKILL)
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return


def spawn(argv: list[str], environ: dict[bytes, bytes], connection: int, home: int) -> int:
    """Start the script on ``connection`` (fds 0 and 1) in its folder; return its pid.

    posix_spawn in Python 3.11 has no chdir action, so this process changes
    into the script's folder around the call and back to ``home`` (one
    thread: nothing else sees it). The socket is blocking, as the script
    expects: O_NONBLOCK would belong to the open socket it shares with us.
    """
    os.chdir(os.path.dirname(argv[0]))
    try:
        return os.posix_spawn(argv[0], argv, environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, connection, 0),
                                            (os.POSIX_SPAWN_DUP2, connection, 1)],
                              setpgroup=0, setsigdef=RESET_SIGNALS, setsigmask=())
    finally:
        os.fchdir(home)


def _prepare_descriptors(listen_fd: int) -> None:
    """Keep every descriptor but fds 0-2 out of the scripts; make sure 0 and 1 are open.

    posix_spawn (unlike subprocess's close_fds) passes on whatever is not
    close-on-exec: our own descriptors are, but a launcher may have left
    others open. An accepted connection landing on a free fd 0 or 1 would
    collide with the dup2 onto 0 and 1, so those are filled with /dev/null.
    """
    for fd in (0, 1):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            fd = int(name)
            if fd > 2 or fd == listen_fd:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass  # the descriptor listdir itself had open
        return


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except OSError:
        pass


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
