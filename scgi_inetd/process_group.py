"""A script's process group: the watchdog that ends it on --timeout, and ending it by hand.

A CGI script runs as the leader of its own process group, so that a timeout
reaches the children it started too (a shell's ``sleep`` holds the
connection as long as the script does). Loaded only where a timeout or a
supervisor needs it: plain exec never does.
"""

import os
import select
import time
import _signal

__all__ = ["KILL_GRACE", "end_group", "group_alive", "signal_group", "start_watchdog", "watch_group"]

#: Seconds between SIGTERM and SIGKILL when a script's process group is ended.
KILL_GRACE = 2.0


def start_watchdog(pgid: int, timeout: float, grace: float) -> None:
    """Fork a process, outside the group and holding no socket, that ends the group on time.

    Double fork: the watchdog is nobody's child but init's, so a script that
    waits for all its children never waits for it.
    """
    pidfd = os.pidfd_open(pgid)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                if os.fork() == 0:
                    os.setsid()
                    null = os.open(os.devnull, os.O_RDWR)
                    os.dup2(null, 0)
                    os.dup2(null, 1)
                    os.close(null)
                    watch_group(pgid, pidfd, timeout, grace)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    finally:
        os.close(pidfd)


def watch_group(pgid: int, pidfd: int, timeout: float, grace: float) -> None:
    """Wait until the group is gone or the deadline passes; then SIGTERM, grace, SIGKILL."""
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    leader_gone = False
    while group_alive(pgid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            end_group(pgid, grace)
            return
        # Wake when the leader exits; after that, look at the group now and then.
        wait = min(remaining, 0.05) if leader_gone else remaining
        leader_gone = bool(poller.poll(wait * 1000)) or leader_gone


def end_group(pgid: int, grace: float, child: int | None = None) -> None:
    """SIGTERM the process group, wait up to ``grace`` for it to go, then SIGKILL it.

    ``child``, when the leader is our own child, is reaped on the way: a
    zombie still counts as a member of its group.
    """
    signal_group(pgid, _signal.SIGTERM)
    deadline = time.monotonic() + grace
    while True:
        if child is not None and _reaped(child):
            child = None
        if not group_alive(pgid) or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    signal_group(pgid, _signal.SIGKILL)
    if child is not None:
        os.waitpid(child, 0)


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to the group; a group already gone is not an error."""
    try:
        os.killpg(pgid, signum)
    except OSError:
        pass
