"""Resident ``scgi-run`` (exec mode): the frame reads headers, each script starts with posix_spawn.

Strategy: resident.ForkEach would fork the whole interpreter per connection
and exec in the child, so each request pays for copying the page tables of a
Python process, the copy-on-write faults of the child and the teardown of
that copy at execve: about 3 ms of CPU, three times what fcgiwrap spends.
Here the one resident process starts the script with ``os.posix_spawn``
(glibc: clone with CLONE_VM | CLONE_VFORK, nothing copied), with the
connection on fds 0 and 1, the log on fd 2, its own process group, default
signal dispositions and an empty signal mask, as exec_script gives a one-shot
script. The rules (resolving and confining the script, its environment) are
the one-shot path's own: cgi_exec.find_script and script_invocation.

The frame (resident.Frame) reads the header without blocking anyone. The
body is then read in the same loop into a spool (reader.open_spool: memory
when small, an unnamed file when large), and the script starts with the
spool on its stdin once the whole body is in, as the one-shot path does
(reader.spool_body says why); without a body its stdin is /dev/null, and
with ``--stream-body`` it is the connection, the body unread. A body that
stalls waits in the poll set under ``--body-timeout``, never in a blocking
read.

``--max-children`` bounds the requests in progress (body being read, script
running). ``--timeout`` is enforced here instead of by a watchdog process:
at the deadline the script's process group gets SIGTERM, then SIGKILL after
process_group.KILL_GRACE. ``--fix-status`` needs a supervising process per
request and runs on resident.ForkEach instead (see cgi_cli).
"""

import os
import signal
import socket
import time

from .answer import DISCARD_LIMIT
from .cgi_exec import (RESET_SIGNALS, CgiConfig, content_length, enter_script_directory, find_script,
                       not_started, script_invocation)
from .logsink import log_line
from .options import ServeOptions
from .process_group import KILL_GRACE, group_alive, signal_group
from .protocol import ProtocolError
from .reader import BodyError, body_short, body_stalled, check_body_size, open_spool, write_spool
from .resident import Frame, Held, end_children

__all__ = ["CgiSpawner", "Running", "Upload", "serve", "spawn"]

#: How often a process group whose leader has exited is looked at again, while
#: a --timeout may still have to end it (a shell's background child).
GROUP_CHECK_INTERVAL = 0.05
#: Bytes read at a time from a request body into its spool, and how many such
#: reads one connection gets before the loop looks at the others again.
BODY_CHUNK = 1 << 20
BODY_READS_PER_TURN = 8


def serve(listen_fd: int, config: CgiConfig, options: "ServeOptions | None" = None) -> int:
    """Serve connections on ``listen_fd`` until stopped or idle; return 0.

    ``options`` (the table's defaults when None) gives the frame's settings.
    """
    options = ServeOptions() if options is None else options
    frame = Frame(listen_fd, options)
    return frame.run(CgiSpawner(frame, config, options.max_children))


class Upload:
    """A request whose body is being read into its spool before the script starts."""

    __slots__ = ("held", "spool", "left", "deadline", "invocation")

    def __init__(self, held: Held, spool: int, left: int, deadline: float,
                 invocation: "tuple[list[str], dict[bytes, bytes]]") -> None:
        self.held = held
        self.spool = spool
        self.left = left  # body bytes still to come
        self.deadline = deadline
        self.invocation = invocation  # argv, environ


class Running:
    """A script started for a connection: its process group, and its --timeout state."""

    __slots__ = ("pid", "deadline", "kill_at", "exited")

    def __init__(self, pid: int, deadline: float | None) -> None:
        self.pid = pid  # also its process group id
        self.deadline = deadline
        self.kill_at: float | None = None
        self.exited = False  # reaped, but its group may live on (--timeout still watches it)


class CgiSpawner:
    """The resident.Frame strategy that spools bodies and spawns scripts; see the module docstring."""

    accepts_itself = False

    def __init__(self, frame: Frame, config: CgiConfig, max_children: int) -> None:
        self.frame = frame
        self.config = config
        self.max_children = max_children
        self.uploads: dict[int, Upload] = {}  # by connection fd
        self.running: dict[int, Running] = {}
        self.home = -1  # this process's own cwd, to return to after each spawn
        self.devnull = -1  # the stdin of a script whose request has no body
        self.buffer = bytearray(BODY_CHUNK)  # one loop, one body read at a time

    def start(self) -> None:
        _prepare_descriptors(self.frame.listener.fileno())
        self.home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def has_slot(self) -> bool:
        """Requests in progress under --max-children (a script past its own exit is not one)."""
        running = sum(not script.exited for script in self.running.values())
        return len(self.uploads) + running < self.max_children

    def busy(self) -> bool:
        return bool(self.uploads or self.running)

    def last_active(self) -> float:
        return 0.0  # the frame sees every request begin and end

    def take(self, held: Held) -> None:
        """Resolve the script; spawn it at once, or once its body is in the spool."""
        config, request = self.config, held.request
        length = content_length(request)
        try:
            check_body_size(length, config.max_body)
            script = find_script(config, request)
            invocation = script_invocation(config, request, script)
            if config.stream_body:
                self.run_script(held, invocation, held.fd, unread=length)
                return
            if not length:
                self.run_script(held, invocation, self.devnull)
                return
            spool = open_spool(length, config.spool_dir)
        except BodyError as error:
            self.frame.refuse(held.sock, error.status, str(error), error.detail, min(length, DISCARD_LIMIT))
            return
        except ProtocolError as error:  # ScriptError among them
            self.frame.refuse(held.sock, error.status, str(error), error.detail, length)
            return
        upload = Upload(held, spool, length, time.monotonic() + config.body_timeout, invocation)
        self.uploads[held.fd] = upload
        self.frame.watch(held.fd, lambda events: self.read_body(upload))
        self.read_body(upload)

    def read_body(self, upload: Upload) -> None:
        """Move what has arrived of the body into its spool; start the script once it is all in."""
        sock, view = upload.held.sock, memoryview(self.buffer)
        for _ in range(BODY_READS_PER_TURN):
            try:
                count = sock.recv_into(view, min(upload.left, BODY_CHUNK), socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionError:
                count = 0
            if not count:
                error = body_short(upload.left)
                self.refuse_upload(upload, error.status, str(error))
                return
            try:
                write_spool(upload.spool, view[:count])
            except BodyError as error:
                self.refuse_upload(upload, error.status, str(error), error.detail, upload.left - count)
                return
            upload.left -= count
            upload.deadline = time.monotonic() + self.config.body_timeout
            if not upload.left:
                self.end_upload(upload)
                os.lseek(upload.spool, 0, os.SEEK_SET)
                self.run_script(upload.held, upload.invocation, upload.spool)
                os.close(upload.spool)
                return

    def end_upload(self, upload: Upload) -> None:
        self.frame.unwatch(upload.held.fd)
        del self.uploads[upload.held.fd]

    def refuse_upload(self, upload: Upload, status: int, message: str, detail: str = "",
                      unread: int = 0) -> None:
        self.end_upload(upload)
        os.close(upload.spool)
        self.frame.refuse(upload.held.sock, status, message, detail, unread)

    def run_script(self, held: Held, invocation: "tuple[list[str], dict[bytes, bytes]]", stdin: int,
                   unread: int = 0) -> None:
        """Spawn the script with ``stdin`` and the connection as stdout; let go of the connection."""
        argv, environ = invocation
        try:
            pid = spawn(argv, environ, stdin, held.fd, self.home, self.config.root)
        except (OSError, ProtocolError) as error:  # ProtocolError: a ScriptError, changed since it was checked
            failure = not_started(error, argv[0])
            self.frame.refuse(held.sock, failure.status, failure.message, failure.detail, unread)
            return
        timeout = self.config.timeout
        self.running[pid] = Running(pid, None if timeout is None else time.monotonic() + timeout)
        held.sock.close()

    def exited(self, pid: int, code: int) -> None:
        """A script ended; with --timeout, keep watching a group that outlives its leader."""
        script = self.running.get(pid)
        if script is None:
            return
        if (script.deadline is None and script.kill_at is None) or not group_alive(pid):
            del self.running[pid]
        else:
            script.exited = True

    def next_deadline(self, now: float) -> float | None:
        deadlines = [upload.deadline for upload in self.uploads.values()]
        for script in self.running.values():
            if script.kill_at is not None or script.deadline is not None:
                deadlines.append(script.kill_at if script.kill_at is not None else script.deadline or now)
            if script.exited:
                deadlines.append(now + GROUP_CHECK_INTERVAL)
        return min(deadlines) if deadlines else None

    def tick(self, now: float) -> None:
        for upload in [upload for upload in self.uploads.values() if now >= upload.deadline]:
            error = body_stalled(upload.left, self.config.body_timeout)
            self.refuse_upload(upload, error.status, str(error))
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

    def stop(self) -> None:
        pass  # bodies being read and scripts running get the grace

    def end(self) -> None:
        """After the grace: drop unfinished uploads, end the scripts' process groups."""
        for upload in list(self.uploads.values()):
            self.end_upload(upload)
            os.close(upload.spool)
            upload.held.sock.close()
        end_children(set(self.running), self.frame.options.grace, signal_group, group_alive)
        for fd in (self.home, self.devnull):
            os.close(fd)


def spawn(argv: list[str], environ: dict[bytes, bytes], stdin: int, stdout: int, home: int,
          root: str | None = None) -> int:
    """Start the script with ``stdin`` and ``stdout`` (the connection) in its folder; return its pid.

    posix_spawn in Python 3.11 has no chdir action, so this process changes
    into the script's folder around the call (by descriptor, from ``root``
    down: cgi_exec.enter_script_directory) and back to ``home`` (one
    thread: nothing else sees it). The socket is blocking, as the script
    expects: O_NONBLOCK would belong to the open socket it shares with us.
    A script changed since its check raises ScriptError (403 or 404).
    """
    try:
        return os.posix_spawn(enter_script_directory(argv[0], root), argv, environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, stdin, 0),
                                            (os.POSIX_SPAWN_DUP2, stdout, 1)],
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
