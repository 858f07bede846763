"""A 1 GiB POST through `scgi-run SCRIPT` to a C program that discards it, against a plain pipe.

Usage: python bench/cgi_post.py [GIB]
Reports wall time of each and the shim's peak RSS (ru_maxrss of the process,
which Linux keeps across execve, so it covers the Python shim before exec).
"""

from __future__ import annotations

import os
import socket
import sys
import time

from cgi_common import DISCARD_C, PYTHON, REPO, build, request, workdir

CHUNK = b"\x5a" * (1 << 20)


def send(fd_write, total: int) -> None:
    view = memoryview(CHUNK)
    left = total
    while left:
        left -= os.write(fd_write, view[: min(left, len(view))])


def through_shim(argv, total: int, env) -> tuple[float, int]:
    ours, theirs = socket.socketpair()
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, theirs.fileno(), 0), (os.POSIX_SPAWN_DUP2, theirs.fileno(), 1)])
    theirs.close()
    ours.sendall(request(total))
    send(ours.fileno(), total)
    answer = b""
    while chunk := ours.recv(65536):
        answer += chunk
    _, status, usage = os.wait4(pid, 0)
    assert answer.endswith(b"done\n") and status == 0, answer
    return time.perf_counter() - started, usage.ru_maxrss


def through_pipe(program: str, total: int) -> tuple[float, int]:
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    pid = os.posix_spawn(program, [program], {"CONTENT_LENGTH": str(total)},
                         file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0),
                                       (os.POSIX_SPAWN_DUP2, os.open(os.devnull, os.O_WRONLY), 1)])
    os.close(read_end)
    send(write_end, total)
    os.close(write_end)
    _, status, usage = os.wait4(pid, 0)
    assert status == 0
    return time.perf_counter() - started, usage.ru_maxrss


def main() -> None:
    total = int(float(sys.argv[1]) * (1 << 30)) if len(sys.argv) > 1 else 1 << 30
    program = str(build(workdir(), "discard", DISCARD_C))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    shim = [PYTHON, str(REPO / "bin" / "scgi-run"), program]
    results = {"plain pipe": [], "scgi-run SCRIPT (socketpair)": []}
    for _ in range(3):
        results["plain pipe"].append(through_pipe(program, total))
        results["scgi-run SCRIPT (socketpair)"].append(through_shim(shim, total, env))
    base = min(t for t, _ in results["plain pipe"])
    for name, runs in results.items():
        best = min(t for t, _ in runs)
        print(f"{name:30s} {best:6.3f} s  {total / best / 1e6:7.0f} MB/s  {best / base:5.2f}x pipe"
              f"  peak RSS {max(r for _, r in runs) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
