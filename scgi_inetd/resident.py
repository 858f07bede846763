"""Resident mode: one frame that accepts and reads headers, and three strategies that serve.

A program written for inetd `nowait` (one connection on fds 0 and 1) also
serves under `wait`, a systemd `Accept=no` unit or `--listen`. The frame
(`Frame`) accepts each connection and reads its SCGI header in its own poll
loop, so a client still sending its header, slowly or never, holds no
process: only a whole header is handed to a strategy, which serves the
request with what was imported once before the loop (the app, the library):
that is the whole gain over one-shot mode.

- `ForkEach` (`--requests-per-child 1`): a forked child per connection
  runs the front-end's one-shot path on it, the header already read.
- `Pool` (`--requests-per-child N`): `--max-children` workers forked once
  serve N connections each, then exit and are replaced. They accept on the
  listener themselves and pass the frame (SCM_RIGHTS, over each worker's
  own socketpair) only a connection whose header did not come with it; the
  frame reads that header and passes it back to a free worker. A worker
  whose socketpair ends (the frame stopped, or was killed) exits. The price
  is isolation: what one request leaves in a worker's memory the next one
  sees.
- `cgi_resident.CgiSpawner` (`scgi-run`): the script starts with posix_spawn.

The frame's part, once for all three: a wake-up pipe that the signal
handlers write to; SIGTERM, SIGINT and SIGHUP ask for a graceful stop (the
listener closes, work in progress gets `--grace` seconds, then SIGTERM, and
SIGKILL after KILL_GRACE); reaping with exit codes; the idle clock
(`--idle-timeout`); at most `--max-children` requests being served; error
answers sent without blocking and the refused body drained under an idle
and an absolute deadline; a send timeout on every connection handed on, so
a client that does not read cannot hold a process for ever.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import time
from collections import deque

from .answer import DISCARD_LIMIT, DRAIN_IDLE, DRAIN_LIMIT, send_error
from .logsink import log_line
from .options import ServeOptions
from .process_group import KILL_GRACE
from .protocol import IncompleteRequest, ProtocolError, RequestParser, parse_request
from .reader import header_timed_out, read_header_step

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a resident start 5 ms
    from typing import Callable, Literal, Protocol

    #: A front-end's one-shot path for the connection on a descriptor, its header (the environ) read,
    #: and the body bytes that came with the header: none but in a pool worker (`Pool`).
    Handler = Callable[[dict[str, str], int, bytes], object]

__all__ = ["ACCEPT_PAUSE", "KILL_GRACE", "SEND_TIMEOUT", "STOP_SIGNALS", "ForkEach", "Frame", "Held", "Pool",
           "Worker", "accept", "end_children", "held_limit", "listener_kind", "message_size", "read_header", "serve",
           "set_send_timeout"]

#: Seconds the listener is left alone after accept() failed (EMFILE, ENFILE,
#: ENOBUFS): it stays readable while the connection waits, and trying again at
#: once would spin the loop and fill the log.
ACCEPT_PAUSE = 0.1
#: Seconds a write to a client may make no progress before it fails (SO_SNDTIMEO).
SEND_TIMEOUT = 60.0
_SEND_TIMEVAL = struct.pack("ll", int(SEND_TIMEOUT), int(SEND_TIMEOUT % 1 * 1_000_000))  # struct timeval
#: Signals that ask for a graceful stop. SIGHUP too: a resident server has no
#: configuration to reload, and a supervisor restarts it after the stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
#: Connections accepted at most per wake-up, so a flood cannot starve the rest of the loop.
ACCEPTS_PER_TURN = 64
#: Bytes read at a time from a refused request's body.
DRAIN_CHUNK = 1 << 16
#: Seconds a pool worker waits for a header that had not come when it
#: accepted, before passing the connection to the frame. A client connects
#: and then writes, and a worker woken by the connect is often quicker than
#: the write (one connection in fifteen from a 4-thread client): the
#: header is on its way and comes within microseconds, while passing it
#: through the frame costs both sides far more. A client that sends nothing
#: costs one worker this once.
HEADER_WAIT = 0.002
#: Bytes a pool worker asks for in its first read of a connection: most
#: headers, and the body start that came with them (wsgi.input takes it), in
#: one system call instead of two exact ones. Not more: a read allocates
#: what it asks for.
FIRST_READ = 4096


def serve(listen_fd: int, handle: Handler, options: ServeOptions | None = None) -> int:
    """Serve connections on `listen_fd` with `handle` until stopped or idle; return 0.

    `options` (the table's defaults when None): requests_per_child 1 forks a
    child per connection; more runs a pool of max_children workers.
    """
    options = ServeOptions() if options is None else options
    frame = Frame(listen_fd, options)
    if options.requests_per_child > 1:
        return frame.run(Pool(frame, handle, options.max_children, options.requests_per_child))
    return frame.run(ForkEach(frame, handle, options.max_children))


class Held:
    """A connection the frame owns: its header arriving, or waiting for a slot, or its refusal draining."""

    __slots__ = ("sock", "fd", "parser", "environ", "deadline", "drain_until", "unread")

    def __init__(self, sock: socket.socket, deadline: float, max_header: int) -> None:
        self.sock = sock  # blocking, as the request's process wants it: reads here pass MSG_DONTWAIT
        self.fd = sock.fileno()
        self.parser = RequestParser(max_header)
        self.environ: dict[str, str] | None = None  # once the header is in
        self.deadline = deadline  # for the header; while draining, of the idle timer
        self.drain_until = 0.0  # while draining: when it ends whatever comes
        self.unread: int | None = None  # body bytes still to drain, once refused

    @property
    def header(self) -> bytes:
        """The header netstring as it came."""
        return self.parser.buffer

    @property
    def request(self) -> dict[str, str]:
        """The environ, for a connection handed to a strategy (its header is in)."""
        assert self.environ is not None
        return self.environ


if TYPE_CHECKING:
    class Strategy(Protocol):
        """How a resident server serves the requests the frame hands it; see Frame."""

        accepts_itself: bool  # its processes accept on the listener; the frame takes only what they pass it

        def start(self) -> None: ...
        def has_slot(self) -> bool: ...
        def take(self, held: Held) -> None: ...
        def exited(self, pid: int, code: int) -> None: ...
        def tick(self, now: float) -> None: ...
        def next_deadline(self, now: float) -> float | None: ...
        def busy(self) -> bool: ...
        def last_active(self) -> float: ...
        def stop(self) -> None: ...
        def end(self) -> None: ...


class Frame:
    """The accept / read-header / hand-over / reap loop every strategy runs in; see the module docstring.

    What a Strategy is told: `take(held)` a connection with its header (the
    strategy owns it now), `exited(pid, code)`, `tick(now)` at its own
    `next_deadline(now)`, `stop()` when a stop was asked (start nothing new),
    `end()` when the grace is over; what it tells: `has_slot()`, `busy()`,
    `last_active()` (for work the frame does not see end).
    """

    strategy: Strategy

    def __init__(self, listen_fd: int, options: ServeOptions) -> None:
        self.listener = socket.socket(fileno=_above_stdio(listen_fd))
        self.listener.setblocking(False)
        self.kind = listener_kind(self.listener)
        self.options = options
        self.poller = select.poll()
        self.watched: dict[int, Callable[[int], None]] = {}  # a strategy's descriptors
        self.held: dict[int, Held] = {}
        self.queue: deque[Held] = deque()  # whole headers waiting for a slot
        self.held_limit = held_limit()
        self.stopping: list[int] = []  # signals received (0: the idle clock ran out); not empty means stop
        self.listening = False
        self.paused_until = 0.0  # after accept() failed: the listener is left alone until then
        self.accept_failing = False  # said once in the log until an accept succeeds
        self.wake = (-1, -1)

    # What strategies use.

    def watch(self, fd: int, callback: Callable[[int], None]) -> None:
        """Call `callback(events)` when `fd` is readable (or hung up)."""
        self.poller.register(fd, select.POLLIN)
        self.watched[fd] = callback

    def unwatch(self, fd: int) -> None:
        self.poller.unregister(fd)
        del self.watched[fd]

    def refuse(self, sock: socket.socket, status: int, message: str, detail: str = "",
               unread: int = 0) -> None:
        """Answer an error and close, or first drain the `unread` body bytes the client is still sending.

        The answer (about 150 bytes) fits in the send buffer of a connection
        nobody has written to yet; should it not, send_error drops it rather
        than block. Closing with unread data would reset the connection, so
        the frame half-closes and reads the body away in its loop, as
        answer.finish_connection does for a one-shot refusal.
        """
        held = self.held.get(sock.fileno())
        if held is None:
            held = Held(sock, 0.0, 0)
        sock.setblocking(False)
        send_error(sock.fileno(), status, message, detail)
        if unread <= 0:
            self._forget(held)
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        now = time.monotonic()
        held.unread = unread
        held.deadline = now + DRAIN_IDLE
        held.drain_until = now + DRAIN_LIMIT
        if held.fd not in self.held:
            self.held[held.fd] = held
            self.poller.register(held.fd, select.POLLIN)

    def adopt(self, sock: socket.socket, received: bytes) -> None:
        """Hold a connection a pool worker accepted whose header did not come whole; `received` came of it."""
        held = self._hold(sock)
        try:
            held.environ = held.parser.feed(received) if received else None
        except ProtocolError as error:
            self.refuse(sock, error.status, str(error), error.detail, unread=DISCARD_LIMIT)
            return
        if held.environ is not None:
            self._complete(held)
        else:
            self._readable(held)

    def requeue(self, held: Held) -> None:
        """Give back a connection a strategy could not serve after all (its worker died): first in line."""
        self.held[held.fd] = held
        self.queue.appendleft(held)

    def fork(self, body: Callable[[Callable[[], None]], None], keep: tuple[int, ...] = ()) -> int:
        """Fork; run `body(unblock)` in the child, which never returns into the loop; the child's pid.

        The child starts with the signals the frame catches at their
        defaults, SIGPIPE ignored, and none of the frame's descriptors but
        those in `keep` and what `body` was given. STOP_SIGNALS stay blocked
        in it until `body` calls `unblock`: until then a stop signal would
        reach the handler the child inherited, which only notes it in the
        loop's list (the child's copy of it), and the child would serve on.
        """
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            raise
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            return pid
        status = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in (*STOP_SIGNALS, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
            for fd in (self.listener.fileno(), *self.wake, *self.held, *self.watched):
                if fd >= 0 and fd not in keep:
                    os.close(fd)
            def unblock() -> None:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)

            body(unblock)
            status = 0
        except BaseException as error:  # the child must never return into the loop
            log_line(f"connection handler failed: {error!r}")
        finally:
            os._exit(status)

    # The loop.

    def run(self, strategy: Strategy) -> int:
        """Serve with `strategy` until a stop signal or the idle timeout; return 0."""
        self.strategy = strategy
        self.wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.poller.register(self.wake[0], select.POLLIN)
        previous = {sig: signal.signal(sig, lambda number, frame: self.stopping.append(number))
                    for sig in STOP_SIGNALS}
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda number, frame: None)
        old_wakeup = signal.set_wakeup_fd(self.wake[1])
        try:
            strategy.start()
            self._loop()
            self._close_listener()
            for held in list(self.held.values()):
                self._forget(held)
            strategy.end()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in self.wake:
                os.close(fd)
        return 0

    def _loop(self) -> None:
        """Until a stop signal or the idle clock; then until the work in progress is done or --grace is over."""
        strategy, idle_timeout = self.strategy, self.options.idle_timeout
        stop_deadline: float | None = None
        last_activity = time.monotonic()
        signalled = True  # a signal (SIGCHLD among them) wrote to the wake-up pipe
        was_busy = False
        while True:
            if signalled:
                for pid, code in _reaped():
                    strategy.exited(pid, code)
                signalled = False
            now = time.monotonic()
            self._expire(now)
            strategy.tick(now)
            self._hand_over()
            if self.stopping and stop_deadline is None:
                stop_deadline = now + self.options.grace
                self._close_listener()
                for held in [held for held in self.held.values() if held.unread is None]:
                    self._forget(held)  # never answered, as a connection in the listen queue
                strategy.stop()
            busy = strategy.busy() or bool(self.held)
            if busy or was_busy:  # the work that just ended ended now, not when the loop last looked
                last_activity = now
            was_busy = busy
            last_activity = max(last_activity, strategy.last_active())
            if stop_deadline is not None:
                if not busy or now >= stop_deadline:
                    return
            elif not busy and idle_timeout is not None and now - last_activity >= idle_timeout:
                log_line(f"idle for {idle_timeout:g}s, exiting")
                self.stopping.append(0)  # no signal: the idle clock; stop as on SIGTERM (a pool's workers exit)
                continue
            self._listen(stop_deadline is None and now >= self.paused_until and not strategy.accepts_itself)
            deadlines = [strategy.next_deadline(now), stop_deadline]
            deadlines += [min(held.deadline, held.drain_until) if held.unread is not None else held.deadline
                          for held in self.held.values() if held.environ is None]
            if now < self.paused_until:
                deadlines.append(self.paused_until)
            if stop_deadline is None and idle_timeout is not None and not busy:
                deadlines.append(last_activity + idle_timeout)
            due = [deadline for deadline in deadlines if deadline is not None]
            wait = None if not due else max(min(due) - now, 0) * 1000 + 1
            for fd, events in self.poller.poll(wait):
                if fd == self.wake[0]:
                    _drain_pipe(fd)
                    signalled = True
                elif fd == self.listener.fileno() and self.listening:
                    self._accept()
                elif fd in self.held:
                    self._readable(self.held[fd])
                elif fd in self.watched:
                    self.watched[fd](events)
            self._hand_over()

    def _listen(self, accepting: bool) -> None:
        if accepting != self.listening:
            if accepting:
                self.poller.register(self.listener.fileno(), select.POLLIN)
            else:
                self.poller.unregister(self.listener.fileno())
            self.listening = accepting

    def _close_listener(self) -> None:
        if self.listener.fileno() >= 0:
            self._listen(False)
            self.listener.close()

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            if len(self.held) >= self.held_limit and not self._make_room():
                return
            try:
                sock = accept(self.listener, self.kind)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:  # EMFILE and the like: leave the listener alone for a moment
                if not self.accept_failing:
                    log_line(f"cannot accept: {error.strerror}; retrying every {ACCEPT_PAUSE:g} s")
                self.accept_failing = True
                self.paused_until = time.monotonic() + ACCEPT_PAUSE
                return
            self.accept_failing = False
            self._readable(self._hold(sock))  # nginx sends the header with the connection

    def _hold(self, sock: socket.socket) -> Held:
        """Take `sock` into the loop, its header to be read under --header-timeout."""
        if len(self.held) >= self.held_limit:
            self._make_room()
        held = Held(sock, time.monotonic() + self.options.header_timeout, self.options.max_header)
        self.held[held.fd] = held
        self.poller.register(held.fd, select.POLLIN)
        return held

    def _make_room(self) -> bool:
        """At the limit of held connections: refuse the one whose header has waited longest, if any."""
        waiting = [held for held in self.held.values() if held.environ is None and held.unread is None]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda held: held.deadline)
        self.refuse(oldest.sock, 503, "too many connections still sending their header")
        return True

    def _readable(self, held: Held) -> None:
        if held.unread is not None:
            self._drain(held)
            return
        try:
            held.environ = read_header(held.sock, held.parser)
        except ProtocolError as error:
            # What follows a refused header is never ours to pass on; reading it
            # (until EOF, at most DISCARD_LIMIT) spares the client a reset.
            self.refuse(held.sock, error.status, str(error), error.detail, unread=DISCARD_LIMIT)
            return
        if held.environ is not None:
            self._complete(held)

    def _complete(self, held: Held) -> None:
        """Its header is in: in line for a slot. The loop hands it over, not this call: a strategy may be its caller."""
        self.poller.unregister(held.fd)  # its body is the strategy's business
        self.queue.append(held)

    def _hand_over(self) -> None:
        while self.queue and not self.stopping and self.strategy.has_slot():
            held = self.queue.popleft()
            del self.held[held.fd]
            set_send_timeout(held.sock)
            self.strategy.take(held)

    def _drain(self, held: Held) -> None:
        unread = held.unread or 0
        try:
            chunk = held.sock.recv(min(unread, DRAIN_CHUNK), socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        held.unread = unread = unread - len(chunk)
        held.deadline = time.monotonic() + DRAIN_IDLE
        if not chunk or unread <= 0:
            self._forget(held)

    def _expire(self, now: float) -> None:
        for held in [held for held in self.held.values() if held.environ is None]:
            if held.unread is not None:
                if now >= held.deadline or now >= held.drain_until:
                    self._forget(held)
            elif now >= held.deadline:
                error = header_timed_out()
                self.refuse(held.sock, error.status, str(error), unread=DISCARD_LIMIT)

    def _forget(self, held: Held) -> None:
        if self.held.pop(held.fd, None) is not None:
            if held.environ is None:
                self.poller.unregister(held.fd)
            else:
                self.queue.remove(held)
        held.sock.close()


def read_header(sock: socket.socket, parser: RequestParser, at_least: int = 0) -> dict[str, str] | None:
    """What has come of the header, without waiting: the environ once it is whole, else None.

    At most two reads: a header sent whole comes in two (RequestParser.needed),
    or in one of `at_least` bytes, by a reader that takes the body bytes read
    with it (parser.rest). Raises ProtocolError: malformed, or the
    connection closed or lost inside it.
    """
    def receive(size: int) -> bytes:
        return sock.recv(max(size, at_least), socket.MSG_DONTWAIT)

    for _ in range(2):
        try:
            environ = read_header_step(parser, receive)
        except (BlockingIOError, InterruptedError):
            return None
        if environ is not None:
            return environ
    return None


def listener_kind(listener: socket.socket) -> tuple[int, int, int]:
    """The listener's family, type and protocol as plain ints, for `accept`."""
    return int(listener.family), int(listener.type), listener.proto


def accept(listener: socket.socket, kind: tuple[int, int, int]) -> socket.socket:
    """listener.accept()'s connection, without its cost.

    socket.accept() builds its socket object from the listener's family and
    type, each turned into an enum, about 3 us a connection; given as ints
    (`listener_kind`), socket(fileno=) needs no getsockopt either
    (docs/benchmarks.md, "The pool's cost per request"). Raises as accept() does.
    """
    fd, _ = listener._accept()  # type: ignore[attr-defined]  # CPython's, not in typeshed
    return socket.socket(*kind, fileno=fd)


def set_send_timeout(sock: socket.socket) -> None:
    """SEND_TIMEOUT on a connection handed on to be served."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _SEND_TIMEVAL)


def message_size(max_header: int) -> int:
    """The largest message on a pool worker's socketpair: HOLD and the largest header netstring."""
    return len(HOLD) + len(str(max_header)) + 1 + max_header + 1


def held_limit() -> int:
    """How many connections the frame holds without a process: a quarter of the descriptor limit, 16 to 1024."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1024 if soft == resource.RLIM_INFINITY else max(16, min(1024, soft // 4))


class ForkEach:
    """One forked child per connection, at most `max_children` at once."""

    accepts_itself = False

    def __init__(self, frame: Frame, handle: Handler, max_children: int) -> None:
        self.frame = frame
        self.handle = handle
        self.max_children = max_children
        self.children: set[int] = set()

    def start(self) -> None:
        pass

    def has_slot(self) -> bool:
        return len(self.children) < self.max_children

    def take(self, held: Held) -> None:
        def child(unblock: Callable[[], None]) -> None:
            unblock()
            self.handle(held.request, held.fd, b"")

        self.children.add(self.frame.fork(child))
        held.sock.close()

    def exited(self, pid: int, code: int) -> None:
        self.children.discard(pid)

    def tick(self, now: float) -> None:
        pass

    def next_deadline(self, now: float) -> float | None:
        return None

    def busy(self) -> bool:
        return bool(self.children)

    def last_active(self) -> float:
        return 0.0  # the frame sees every request begin and end

    def stop(self) -> None:
        pass

    def end(self) -> None:
        end_children(self.children, self.frame.options.grace)


# A worker that fails sooner than this after its start is replaced only this
# long after that start: a handler that crashes at once cannot make the pool
# fork in a tight loop.
RESPAWN_DELAY = 1.0
#: Worker to frame: done with the connection the frame passed. And: a connection
#: whose header did not come with it, with what came, for the frame to hold.
READY, HOLD = b".", b"H"
#: A pool worker's slot on the activity board while it serves a connection;
#: otherwise the slot holds the time.monotonic() its last connection ended.
BUSY = -1.0


class Worker:
    """A pool worker as the frame sees it: its socketpair, its slot on the board, what the frame passed it."""

    __slots__ = ("pid", "channel", "slot", "born", "passed")

    def __init__(self, pid: int, channel: socket.socket, slot: int, born: float) -> None:
        self.pid = pid
        self.channel: socket.socket | None = channel  # the frame's end; None once closed
        self.slot = slot
        self.born = born
        self.passed = False  # serving a connection the frame passed it (READY not back yet)


class Pool:
    """`workers` pre-forked workers, each serving up to `requests` connections; see the module docstring.

    The workers accept on the shared listener themselves (epoll with
    EPOLLEXCLUSIVE: the kernel wakes one), so a request nginx sends whole
    costs the frame nothing. A connection whose header does not come with it
    is passed to the frame (HOLD), which reads the header in its loop and
    passes it back, with the header, to a worker that is free. Each worker
    notes on an activity board in shared memory whether it is busy, or when
    its last connection ended: the frame's idle clock and its choice of a
    free worker read it without a system call.
    """

    accepts_itself = True

    def __init__(self, frame: Frame, handle: Handler, workers: int, requests: int) -> None:
        import mmap

        self.frame = frame
        self.handle = handle
        self.requests = requests
        self.workers: dict[int, Worker] = {}  # by pid
        self.due = [0.0] * workers  # when each free slot may get a worker again
        self.stopped = False
        self.board = mmap.mmap(-1, 8 * workers)  # anonymous and shared: workers write, the frame reads
        self.activity: "memoryview[float]" = memoryview(self.board).cast("d")
        self.began = time.monotonic()

    def start(self) -> None:
        self.tick(time.monotonic())

    def free(self) -> "Worker | None":
        """A worker to pass a held connection to: one the board says is idle, else any not serving one of ours."""
        candidates = [worker for worker in self.workers.values() if worker.channel is not None and not worker.passed]
        idle = [worker for worker in candidates if self.activity[worker.slot] != BUSY]
        return next(iter(idle or candidates), None)

    def has_slot(self) -> bool:
        return self.free() is not None

    def take(self, held: Held) -> None:
        worker = self.free()
        assert worker is not None and worker.channel is not None  # has_slot() said so
        try:
            socket.send_fds(worker.channel, [held.header], [held.fd])
        except OSError:  # retiring (it shut its end) or gone: another worker serves it
            self.close_channel(worker)
            self.frame.requeue(held)
            return
        worker.passed = True
        held.sock.close()

    def message(self, worker: Worker) -> None:
        """The worker wrote to its socketpair: READY, a connection to HOLD, or EOF (it is gone)."""
        if worker.channel is not None and self.receive(worker) is False:
            self.close_channel(worker)

    def receive(self, worker: Worker) -> bool | None:
        """Take one message of the worker's, without waiting: True if taken, None if none, False at the end.

        Never a blocking read: a poll event can be stale (its descriptor
        closed and reused in the same turn of the loop).
        """
        assert worker.channel is not None
        try:
            data, fds = _receive(worker.channel, message_size(self.frame.options.max_header), socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data, fds = b"", []
        if data == READY:
            worker.passed = False
        elif data.startswith(HOLD) and fds:
            self.frame.adopt(socket.socket(fileno=fds[0]), data[1:])
        else:
            for fd in fds:
                os.close(fd)
            return False
        return True

    def close_channel(self, worker: Worker) -> None:
        """Close the frame's end, once the connections the worker passed it are taken (or they would reset)."""
        if worker.channel is not None:
            while self.receive(worker):
                pass
            self.frame.unwatch(worker.channel.fileno())
            worker.channel.close()
            worker.channel = None

    def exited(self, pid: int, code: int) -> None:
        worker = self.workers.pop(pid, None)
        if worker is None:
            return
        self.close_channel(worker)
        now = time.monotonic()
        if self.activity[worker.slot] == BUSY:  # killed mid-request: that was activity too
            self.activity[worker.slot] = now
            log_line(f"pool worker {pid} ended with code {code} while serving a request")
        if code and now - worker.born < RESPAWN_DELAY:
            self.due[worker.slot] = worker.born + RESPAWN_DELAY

    def free_slots(self) -> list[int]:
        taken = {worker.slot for worker in self.workers.values()}
        return [slot for slot in range(len(self.due)) if slot not in taken]

    def tick(self, now: float) -> None:
        if self.stopped:
            return
        for slot in self.free_slots():
            if self.due[slot] <= now:
                self.fork_worker(slot, now)

    def next_deadline(self, now: float) -> float | None:
        if self.stopped:
            return None
        due = [self.due[slot] for slot in self.free_slots()]
        idle_timeout = self.frame.options.idle_timeout
        if idle_timeout is not None and BUSY in self.activity.tolist():
            due.append(now + idle_timeout)  # the end of a request a worker accepted wakes nobody: look again
        return min(due) if due else None

    def fork_worker(self, slot: int, now: float) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Room for a whole header in one message (the kernel caps it at net.core.wmem_max).
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.frame.options.max_header + 4096)
        self.activity[slot] = now

        def work(unblock: Callable[[], None]) -> None:
            ours.close()  # or the worker would keep its own socketpair open when the frame is gone
            _work(_WorkerSide(self.frame.listener, theirs, self.activity, slot, self.frame.options.max_header),
                  self.handle, self.requests, unblock)

        pid = self.frame.fork(work, keep=(self.frame.listener.fileno(),))
        theirs.close()
        worker = self.workers[pid] = Worker(pid, ours, slot, now)
        self.frame.watch(ours.fileno(), lambda events: self.message(worker))

    def busy(self) -> bool:
        """A request in progress; once stopping, any worker not yet gone (an idle one is on its way out)."""
        if self.stopped:
            return bool(self.workers)
        return any(worker.passed for worker in self.workers.values()) or BUSY in self.activity.tolist()

    def last_active(self) -> float:
        """When the last request ended, by the board (now while one runs)."""
        values = self.activity.tolist()
        return time.monotonic() if BUSY in values else max(self.began, *values)

    def stop(self) -> None:
        """Close every socketpair: an idle worker exits at once, a busy one after its request."""
        self.stopped = True
        for worker in self.workers.values():
            self.close_channel(worker)

    def end(self) -> None:
        self.stop()
        end_children(set(self.workers), self.frame.options.grace, polite=False)
        self.activity.release()
        self.board.close()


class _StopWorker(Exception):
    """Raised by an idle worker's SIGTERM handler, out of its wait for the next connection."""


class _WorkerSide:
    """What a pool worker holds: the listener, its end of the socketpair, its slot on the board."""

    def __init__(self, listener: socket.socket, channel: socket.socket, activity: "memoryview[float]", slot: int,
                 max_header: int) -> None:
        self.listener = listener
        self.channel = channel
        self.activity = activity
        self.slot = slot
        self.max_header = max_header
        self.first_read = min(FIRST_READ, message_size(max_header))
        self.kind = listener_kind(listener)
        self.accept_failing = False

    def accept(self) -> "tuple[socket.socket, dict[str, str], bytes] | None":
        """A connection from the listener whose header came with it, and the body bytes read with it.

        None when there is none to serve. One whose header did not come
        whole within HEADER_WAIT (or not valid) is passed to the frame with
        what came of it: waiting longer here would hold this worker.
        """
        try:
            sock = accept(self.listener, self.kind)
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return None  # another worker was quicker
        except OSError as error:  # EMFILE and the like: wait, then try again
            if not self.accept_failing:
                log_line(f"cannot accept: {error.strerror}; retrying every {ACCEPT_PAUSE:g} s")
            self.accept_failing = True
            time.sleep(ACCEPT_PAUSE)
            return None
        self.accept_failing = False
        data = b""
        try:
            data = sock.recv(self.first_read, socket.MSG_DONTWAIT)
            environ, end = parse_request(data, self.max_header)  # most headers: whole in the first read
        except (OSError, IncompleteRequest, ProtocolError):
            return self.read_rest(sock, data)
        set_send_timeout(sock)
        return sock, environ, data[end:]

    def read_rest(self, sock: socket.socket, data: bytes) -> "tuple[socket.socket, dict[str, str], bytes] | None":
        """accept() for a connection whose first read, `data`, did not hold a valid header."""
        parser = RequestParser(self.max_header)
        try:
            environ = parser.feed(data)  # malformed: raises here
            if environ is None:
                environ = read_header(sock, parser, self.first_read)
            if environ is None:
                environ = self.wait_header(sock, parser)
        except ProtocolError:  # the frame answers it, from what came
            environ = None
        if environ is None:
            self.hold(sock, parser.buffer)
            return None
        set_send_timeout(sock)
        return sock, environ, parser.rest

    def wait_header(self, sock: socket.socket, parser: RequestParser) -> dict[str, str] | None:
        """The header, if it comes within HEADER_WAIT; else None. Raises ProtocolError as read_header does."""
        waiting = select.poll()
        waiting.register(sock, select.POLLIN)
        deadline = time.monotonic() + HEADER_WAIT
        while (left := deadline - time.monotonic()) > 0 and waiting.poll(left * 1000):
            environ = read_header(sock, parser, self.first_read)
            if environ is not None:
                return environ
        return None

    def hold(self, sock: socket.socket, received: bytes) -> None:
        try:
            socket.send_fds(self.channel, [HOLD + received], [sock.fileno()])
        except OSError:
            pass  # the frame is gone: the connection goes with us
        sock.close()

    def give_back(self) -> None:
        """Pass back to the frame what it passed this worker before the worker shut its socketpair to retire."""
        while True:
            try:
                data, fds = _receive(self.channel, message_size(self.max_header), socket.MSG_DONTWAIT)
            except OSError:
                return
            if not data or not fds:
                return
            self.hold(socket.socket(fileno=fds[0]), data)

    def passed(self, block: bool) -> "tuple[socket.socket, dict[str, str], bytes] | None | Literal[False]":
        """A connection the frame passed, with its header; None if none; False at the socketpair's end."""
        try:
            data, fds = _receive(self.channel, message_size(self.max_header), 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        except OSError:
            return False
        if not data or not fds:
            return False
        sock = socket.socket(fileno=fds[0])
        environ = RequestParser(self.max_header).feed(data)
        if environ is None:  # cannot be: the frame passes whole headers
            sock.close()
            return None
        return sock, environ, b""


def _work(side: _WorkerSide, handle: Handler, requests: int, unblock: Callable[[], None]) -> None:
    """A pool worker's life: serve connections accepted, or passed by the frame.

    Each connection is served on its own descriptor (no dup2 onto fds 0 and
    1: four system calls a request) and closed after, so its client sees the
    end of the response; the worker's fds 0 and 1 are /dev/null. The frame
    stops a worker by closing its socketpair, which also ends it when the
    frame is killed. A worker that has served `requests` shuts its
    end for reading first, so that the frame passes it nothing more, and
    passes back what was already passed. A SIGTERM sent to the worker itself
    (systemd signals every process of the unit) stops it at once when
    idle, after its request when busy; SIGINT and SIGHUP (a terminal's, sent
    to the whole group) are left to the frame.
    """
    busy = stopped = False

    def stop(number: int, frame: object) -> None:
        nonlocal stopped
        stopped = True
        if not busy:
            raise _StopWorker

    def serve(sock: socket.socket, environ: dict[str, str], received: bytes, passed: bool) -> None:
        nonlocal busy
        busy = True
        side.activity[side.slot] = BUSY
        try:
            handle(environ, sock.fileno(), received)
        finally:
            sock.close()
            side.activity[side.slot] = time.monotonic()
            busy = False
        if passed:
            try:
                side.channel.send(READY)
            except OSError:
                pass

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    os.dup2(null, 0)
    os.dup2(null, 1)
    events = select.epoll()
    events.register(side.channel.fileno(), select.EPOLLIN)
    events.register(side.listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
    served = 0
    try:
        signal.signal(signal.SIGTERM, stop)
        unblock()  # a SIGTERM sent since the fork arrives now, to `stop`
        while served < requests and not stopped:
            ready = {fd for fd, _ in events.poll()}
            if side.channel.fileno() in ready:  # first: the frame may be telling us to stop
                passed = side.passed(block=True)
                if passed is False:
                    return
                if passed:
                    served += 1
                    serve(*passed, passed=True)
                continue
            accepted = side.accept()
            if accepted:
                served += 1
                serve(*accepted, passed=False)
        side.channel.shutdown(socket.SHUT_RD)  # retiring: the frame's next pass fails and goes elsewhere
        side.give_back()
    except _StopWorker:
        pass


def end_children(pids: set[int], grace: float, send: Callable[[int, int], None] | None = None,
                 alive: Callable[[int], bool] | None = None, polite: bool = True) -> None:
    """End what still runs after the grace: SIGTERM, up to KILL_GRACE seconds, then SIGKILL; reap all.

    `send(pid, signal)` (os.kill by default; a process group's killpg for a
    CGI script) and `alive(pid)` (for a group that outlives its leader) say
    what "running" means. Not `polite`: SIGKILL at once, for a pool worker,
    whose SIGTERM only means "after this request".
    """
    send = _kill if send is None else send
    _reap_into(pids, alive)
    if not pids:
        return
    log_line(f"{len(pids)} request(s) still running after {grace:g}s, ending them")
    if polite:
        for pid in pids:
            send(pid, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        while pids and time.monotonic() < deadline:
            time.sleep(0.02)
            _reap_into(pids, alive)
    for pid in pids:
        send(pid, signal.SIGKILL)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _reap_into(pids: set[int], alive: Callable[[int], bool] | None) -> None:
    """Drop from `pids` what has ended: been reaped, or with `alive`, is no longer alive."""
    ended = {pid for pid, _ in _reaped()}
    for pid in list(pids):
        if (pid in ended) if alive is None else not alive(pid):
            pids.discard(pid)


def _reaped() -> list[tuple[int, int]]:
    """(pid, exit code) of every child that has ended, without waiting."""
    ended: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, os.waitstatus_to_exitcode(status)))


def _receive(sock: socket.socket, size: int, flags: int) -> tuple[bytes, list[int]]:
    """One message and the descriptor passed with it (close-on-exec), if any.

    Not socket.recv_fds, which drops `flags` (CPython 3.11 to 3.13), so that
    MSG_DONTWAIT would block.
    """
    import array

    data, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_LEN(4), flags | socket.MSG_CMSG_CLOEXEC)
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def _kill(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _above_stdio(listen_fd: int) -> int:
    """The listener on a close-on-exec descriptor above 2, fds 0 and 1 pointed at /dev/null if it was there.

    inetd `wait` passes it on fds 0 to 2; every request's process puts its
    connection on 0 and 1, and no script may inherit the listener.
    """
    if listen_fd > 2:
        os.set_inheritable(listen_fd, False)
        return listen_fd
    import fcntl

    moved = fcntl.fcntl(listen_fd, fcntl.F_DUPFD_CLOEXEC, 3)
    listening = os.fstat(moved)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    for fd in (0, 1):
        try:
            same = os.path.samestat(os.fstat(fd), listening)
        except OSError:
            same = True  # closed: fill it, or a connection could land there
        if same:
            os.dup2(null, fd)
    os.close(null)
    return moved


def _drain_pipe(fd: int) -> None:
    """Empty the wake-up pipe: one read, no EAGAIN raised (each costs the loop an OSError).

    A signal writes one byte; should more than 512 be waiting, poll wakes the loop again.
    """
    try:
        os.read(fd, 512)
    except BlockingIOError:
        pass
