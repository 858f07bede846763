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

One thread, one ``poll``: a connection whose header or body is slow or
never comes waits in the poll set under ``--header-timeout`` or
``--body-timeout``, never in a blocking read, so it delays nobody. Headers
are read exactly, by the same protocol.RequestParser reader.read_request drives. The body is then read in the
same loop into a spool (reader.open_spool: memory when small, an unnamed
file when large), and the script starts with the spool on its stdin once
the whole body is in, as the one-shot path does (reader.spool_body says
why); without a body its stdin is /dev/null, and with ``--stream-body`` it
is the connection, the body unread. Error answers are short enough to fit
in the empty send buffer of a fresh connection, and the socket is
non-blocking while we own it, so a client that does not read cannot stall
the loop either.

``--max-children`` bounds the connections in progress (header or body being
read, script running, error body being drained), as it bounds the forked
children of resident.serve. ``--timeout`` is enforced here instead of by a watchdog
process: at the deadline the script's process group gets SIGTERM, then
SIGKILL after process_group.KILL_GRACE. ``--fix-status`` needs a supervising
process per request and keeps using resident.serve (see cgi_cli).
"""

import os
import select
import signal
import time

import _socket

from .answer import DISCARD_LIMIT, DRAIN_IDLE, send_error
from .cgi_exec import RESET_SIGNALS, CgiConfig, content_length, find_script, script_invocation
from .logsink import log_line
from .options import ServeOptions
from .process_group import KILL_GRACE, group_alive, signal_group
from .protocol import ProtocolError, RequestParser
from .resident import ACCEPT_PAUSE
from .reader import (BodyError, body_short, body_stalled, check_body_size, header_connection_lost,
                     header_cut_short, open_spool, write_spool)

__all__ = ["serve"]

#: How often a process group whose leader has exited is looked at again, while
#: a --timeout may still have to end it (a shell's background child).
GROUP_CHECK_INTERVAL = 0.05
#: Bytes read at a time from an error answer's unread request body.
DRAIN_CHUNK = 1 << 16
#: Bytes read at a time from a request body into its spool, and how many such
#: reads one connection gets before the loop looks at the others again.
BODY_CHUNK = 1 << 20
BODY_READS_PER_TURN = 8


class Connection:
    """An accepted connection we still own: its header or body being read, or its body being drained."""

    __slots__ = ("sock", "fd", "parser", "deadline", "unread", "polled",
                 "spool", "body_left", "invocation")

    def __init__(self, sock: "_socket.socket", deadline: float, max_header: int) -> None:
        self.sock = sock  # blocking, as the script will want it: reads here pass MSG_DONTWAIT
        self.fd = sock.fileno()
        self.parser = RequestParser(max_header)
        self.deadline = deadline
        self.unread: int | None = None  # body bytes left to drain, once answered with an error
        self.polled = False  # in the poll set: its header did not come with the connection
        self.spool: int | None = None  # the body's spool, while the body is being read
        self.body_left = 0  # body bytes still to come into the spool
        self.invocation: tuple[list[str], dict[bytes, bytes]] | None = None  # argv, environ


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
        self.devnull = -1  # the stdin of a script whose request has no body
        self.accept_paused_until = 0.0  # after accept() failed: not polled until then
        self.accept_failing = False  # said once in the log until an accept succeeds
        self.buffer = bytearray(BODY_CHUNK)  # one loop, one body read at a time

    def run(self) -> int:
        _prepare_descriptors(self.listen_fd)
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.poller.register(wake_read, select.POLLIN)
        self.home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
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
            for fd in (wake_read, wake_write, self.home, self.devnull):
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
            self.listen(stop_deadline is None and self.in_progress() < self.max_children
                        and now >= self.accept_paused_until)
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
        if now < self.accept_paused_until:
            deadlines.append(self.accept_paused_until)
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
            except OSError as error:  # EMFILE and the like: leave the listener alone for a moment
                if not self.accept_failing:
                    log_line(f"cannot accept: {error.strerror}; retrying every {ACCEPT_PAUSE:g} s")
                self.accept_failing = True
                self.accept_paused_until = time.monotonic() + ACCEPT_PAUSE
                return
            self.accept_failing = False
            sock = _socket.socket(self.listener.family, self.listener.type, 0, fd)
            connection = Connection(sock, time.monotonic() + self.config.header_timeout,
                                    self.config.max_header)
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
        if connection.spool is not None:
            self.read_body(connection)
            return
        try:
            request = self.read_header(connection)
        except ProtocolError as error:
            # What follows a refused header is never ours to pass on; reading it
            # (until EOF, at most DISCARD_LIMIT) spares the client a reset, as
            # answer.finish_connection does for the one-shot front-ends.
            self.refuse(connection, error.status, str(error), unread=DISCARD_LIMIT)
            return
        if request is not None:
            self.start(connection, request)

    def read_header(self, connection: Connection) -> "dict[str, str] | None":
        """One read towards the header, never past it (RequestParser.needed); the environ once it is in."""
        parser = connection.parser
        try:
            chunk = connection.sock.recv(parser.needed(), _socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        except ConnectionError as error:
            raise header_connection_lost(error) from None
        if not chunk:
            raise header_cut_short(len(parser.buffer))
        return parser.feed(chunk)

    def start(self, connection: Connection, request: dict[str, str]) -> None:
        """Resolve the script; spawn it at once, or once its body is in the spool."""
        config = self.config
        length = content_length(request)
        try:
            check_body_size(length, config.max_body)
        except BodyError as error:
            self.refuse(connection, error.status, str(error), unread=min(length, DISCARD_LIMIT))
            return
        try:
            script = find_script(config, request)
        except ProtocolError as error:  # ScriptError among them
            self.refuse(connection, error.status, str(error), error.detail, length)
            return
        connection.invocation = script_invocation(config, request, script)
        if config.stream_body:
            self.run_script(connection, connection.fd, unread=length)
        elif not length:
            self.run_script(connection, self.devnull)
        else:
            try:
                connection.spool = open_spool(length, config.spool_dir)
            except BodyError as error:
                self.refuse(connection, error.status, str(error), error.detail, length)
                return
            connection.body_left = length
            connection.deadline = time.monotonic() + config.body_timeout
            self.read_body(connection)

    def read_body(self, connection: Connection) -> None:
        """Move what has arrived of the body into its spool; start the script once it is all in."""
        view = memoryview(self.buffer)
        for _ in range(BODY_READS_PER_TURN):
            try:
                count = connection.sock.recv_into(view, min(connection.body_left, BODY_CHUNK),
                                                  _socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionError:
                count = 0
            if not count:
                error = body_short(connection.body_left)
                self.refuse(connection, error.status, str(error))
                return
            try:
                write_spool(connection.spool, view[:count])
            except BodyError as error:
                self.refuse(connection, error.status, str(error), error.detail,
                            connection.body_left - count)
                return
            connection.body_left -= count
            connection.deadline = time.monotonic() + self.config.body_timeout
            if not connection.body_left:
                os.lseek(connection.spool, 0, os.SEEK_SET)
                self.run_script(connection, connection.spool)
                return

    def run_script(self, connection: Connection, stdin: int, unread: int = 0) -> None:
        """Spawn the script with ``stdin`` and the connection as stdout; let go of the connection."""
        argv, environ = connection.invocation
        try:
            pid = spawn(argv, environ, stdin, connection.fd, self.home, self.config.root)
        except OSError as error:
            self.refuse(connection, 500, "cannot execute the script", f"{argv[0]!r}: {error.strerror}",
                        unread)
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
        self.close_spool(connection)
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
        self.close_spool(connection)
        connection.sock.close()

    @staticmethod
    def close_spool(connection: Connection) -> None:
        if connection.spool is not None:
            os.close(connection.spool)
            connection.spool = None

    def enforce_deadlines(self, now: float) -> None:
        for connection in [c for c in self.connections.values() if now >= c.deadline]:
            if connection.unread is not None:
                self.forget(connection)
            elif connection.spool is not None:
                error = body_stalled(connection.body_left, self.config.body_timeout)
                self.refuse(connection, error.status, str(error))
            else:
                self.refuse(connection, 408, "request header not complete in time",
                            unread=DISCARD_LIMIT)
        for script in list(self.running.values()):
            if script.exited and not group_alive(script.pid):
                del self.running[script.pid]
            elif script.kill_at is not None and now >= script.kill_at:
                signal_group(script.pid, signal.SIGKILL)
                script.kill_at = None
                script.deadline = None
                if script.exited:
                    del self.running[script.pid]
            elif script.deadline is not None and now >= script.deadline:
                log_line(f"script (process group {script.pid}) still running after "
                         f"{self.config.timeout:g}s, ending it")
                signal_group(script.pid, signal.SIGTERM)
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
            signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        while self.running and time.monotonic() < deadline:
            self.reap()
            for script in [s for s in self.running.values() if s.exited and not group_alive(s.pid)]:
                del self.running[script.pid]
            time.sleep(0.02)
        for pid in self.running:
            signal_group(pid, signal.SIGKILL)
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return


def spawn(argv: list[str], environ: dict[bytes, bytes], stdin: int, stdout: int, home: int,
          root: str | None = None) -> int:
    """Start the script with ``stdin`` and ``stdout`` (the connection) in its folder; return its pid.

    posix_spawn in Python 3.11 has no chdir action, so this process changes
    into the script's folder around the call (by descriptor, from ``root``
    down: cgi_exec.enter_script_directory) and back to ``home`` (one
    thread: nothing else sees it). The socket is blocking, as the script
    expects: O_NONBLOCK would belong to the open socket it shares with us.
    A script changed since its check is an OSError, as every failed spawn.
    """
    from .cgi_exec import enter_script_directory

    try:
        return os.posix_spawn(enter_script_directory(argv[0], root), argv, environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, stdin, 0),
                                            (os.POSIX_SPAWN_DUP2, stdout, 1)],
                              setpgroup=0, setsigdef=RESET_SIGNALS, setsigmask=())
    except ProtocolError as error:  # a ScriptError
        raise OSError(0, f"{error}: {error.detail}") from None
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


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
