"""Bulk transfers through nginx with curl, and the peak RSS of the handler inetd spawned.

inetd forks the handler, so its rusage is inetd's to collect. Instead a
thread finds the new child of inetd and polls /proc/PID/status every few
milliseconds for VmHWM (the resident high-water mark, monotonic while the
process runs one program), keeping the largest per program name: for
scgi-run the pid runs Python (the shim) and then, after execve, the CGI
program, whose VmHWM starts again from zero.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import stack


class PeakRss:
    """Largest VmHWM (KiB) seen per program name among inetd's new children."""

    def __init__(self, parent_pid: int):
        self.parent_pid = parent_pid
        self.before = set(stack.children_of(parent_pid))
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        watched: set[int] = set()
        while not self._stop.is_set():
            if not watched:
                watched = set(stack.children_of(self.parent_pid)) - self.before
            for pid in list(watched):
                if not self._sample(pid):
                    watched.discard(pid)
                    self.before.add(pid)
            time.sleep(0.002)

    def _sample(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            return False
        if "VmHWM" not in fields:  # a zombie has no memory left to measure
            return False
        name, kib = fields["Name"].strip(), int(fields["VmHWM"].split()[0])
        self.peaks[name] = max(self.peaks.get(name, 0), kib)
        return True


def curl_command(url: str, upload: Path | None) -> list[str]:
    command = ["curl", "-sS", "--max-time", "600", "-w", "\n%{http_code} %{size_download} %{size_upload}"]
    if upload is None:
        return command + ["-o", "/dev/null", url]
    # -T streams the file (--data-binary @FILE would load it into memory);
    # an empty Expect: skips the 100-continue round trip.
    return command + ["-T", str(upload), "-X", "POST", "-H", "Expect:",
                      "-H", "Content-Type: application/octet-stream", url]


def transfer(url: str, size: int, upload: Path | None, inetd_pid: int) -> tuple[float, dict[str, int]]:
    """Seconds for one transfer of `size` bytes, and the handler's peak RSS per program."""
    with PeakRss(inetd_pid) as peak:
        started = time.perf_counter()
        done = subprocess.run(curl_command(url, upload), capture_output=True, text=True, timeout=700)
        elapsed = time.perf_counter() - started
        time.sleep(0.01)
    code, downloaded, uploaded = done.stdout.rsplit("\n", 1)[-1].split()
    moved = int(uploaded if upload else downloaded)
    if code != "200" or moved < size:
        raise RuntimeError(f"{url}: HTTP {code}, {moved} of {size} bytes; {done.stderr.strip()}")
    return elapsed, peak.peaks


def shim_peak_kib(maxrss: Path, argv: list[str], request: bytes) -> int:
    """ru_maxrss of one handler run as inetd does, which Linux keeps across execve.

    For scgi-run this covers the Python shim before it execs the program,
    which polling /proc may catch only part of the way up. `maxrss` is the
    small C helper of peer_apps (MAXRSS_C).
    """
    import socket

    report = maxrss.with_suffix(".out")
    argv = [str(maxrss), str(report), *argv]
    ours, theirs = socket.socketpair()
    pid = os.posix_spawn(argv[0], argv, {"PATH": "/usr/bin:/bin"},
                         file_actions=[(os.POSIX_SPAWN_DUP2, theirs.fileno(), fd) for fd in (0, 1, 2)])
    theirs.close()
    ours.sendall(request)
    while ours.recv(65536):
        pass
    ours.close()
    os.waitpid(pid, 0)
    return int(report.read_text())


def bulk_file(path: Path, size: int) -> Path:
    """`size` bytes of incompressible data, written for real (not sparse): the page cache is exercised."""
    block = os.urandom(min(size, 1 << 20))
    with open(path, "wb") as out:
        for start in range(0, size, len(block) or 1):
            out.write(block[:size - start])
    return path
