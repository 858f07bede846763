"""Measuring for bench/run: wrk through nginx, process-start rates, statistics.

Every figure is a list of repeats; the report shows min / median / max and
compares medians taken in the same run (noise on a shared machine hits every
row alike because bench/run interleaves the rows within each repeat).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field


@dataclass
class WrkResult:
    requests: int
    requests_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    non_2xx: int
    socket_errors: int


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk_command(url: str, *, seconds: int, connections: int, threads: int = 1) -> list[str]:
    """One wrk thread by default: the second core is left to nginx and the handlers."""
    return ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]


def run_wrk(url: str, *, seconds: int, connections: int, threads: int = 1) -> WrkResult:
    """wrk's requests/s, its p50 and p99 latency (--latency) and its error counts."""
    done = subprocess.run(wrk_command(url, seconds=seconds, connections=connections, threads=threads),
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(requests, rate, _ms(p50.group(1)) if p50 else float("nan"),
                     _ms(p99.group(1)) if p99 else float("nan"),
                     int(non_2xx.group(1)) if non_2xx else 0,
                     sum(map(int, errors.groups())) if errors else 0)


def spawn_rate(argv: list[str], *, seconds: float, parallel: int) -> float:
    """Processes started and reaped per second, `parallel` at a time, for `seconds`.

    The floor a per-request process can never beat: no nginx, no inetd, no
    request; the same concurrency as wrk's connections.
    """
    count = [0] * parallel
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
    env = {"PATH": "/usr/bin:/bin"}
    deadline = time.monotonic() + seconds

    def loop(slot: int) -> None:
        while time.monotonic() < deadline:
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
            os.waitpid(pid, 0)
            count[slot] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(slot,)) for slot in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    os.close(devnull)
    return sum(count) / elapsed


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of `pid` and its live descendants, reaped children included.

    A child's time moves into its parent's cutime/cstime when reaped, so the
    sum over the live tree of all four fields counts every process that
    served a request since `pid` started. Load on the machine stretches wall
    time, not this.
    """
    parents: dict[int, list[int]] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        # After the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state.
        parents.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = sum(int(value) for value in fields[11:15])
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0)
        todo.extend(parents.get(current, ()))
    return total / os.sysconf("SC_CLK_TCK")


def fetch(url: str, timeout: float = 30.0) -> tuple[int, bytes]:
    """GET url; (status, body), HTTP errors included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@dataclass
class Figure:
    """Repeats of one measured value (requests/s or MB/s), higher is better."""

    values: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        ordered = sorted(self.values)
        middle = len(ordered) // 2
        if not ordered:
            return float("nan")
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def spread(self, digits: int = 0) -> str:
        if not self.values:
            return "-"
        return f"{min(self.values):.{digits}f} / {self.median:.{digits}f} / {max(self.values):.{digits}f}"


def ratio(a: Figure, b: Figure) -> str:
    if not a.values or not b.values or not b.median:
        return "-"
    return f"{a.median / b.median:.2f}x"
