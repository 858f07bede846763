"""A 1 GiB POST through `scgi-run SCRIPT` to a C program that discards it, against a plain pipe.

By default scgi-run spools the body (to a file in --spool-dir, /var/tmp) and
execs the script with the spool on its stdin; --stream-body leaves the body
on the socket for the script.

Usage: python bench/cgi_post.py [GIB]

Reports wall time and peak RSS. Peak RSS is measured where it cannot be
inflated by this benchmark's own memory: a child started by posix_spawn
(vfork) or fork inherits its parent's peak in ru_maxrss, so each command
runs as the grandchild of a small C launcher, which reports wait4()'s
ru_maxrss. In exec mode the shim becomes the script, so that figure is the
larger of the two phases; the script (the discard program) also reports its
own VmHWM, which is the peak after execve. With --fix-status the shim stays
as the supervisor while the whole body and response pass, and the figure is
the supervisor's peak (its reaped child, the script, is counted too, and is
reported separately).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time

from cgi_common import DISCARD_C, LAUNCH_C, PYTHON, REPO, build, compile_package, request, workdir

CHUNK = b"\x5a" * (1 << 20)


def send(fd_write, total: int) -> None:
    view = memoryview(CHUNK)
    left = total
    while left:
        left -= os.write(fd_write, view[: min(left, len(view))])


def spawn_launched(launch: str, argv: list[str], fd0: int, fd1: int, env) -> tuple[int, int]:
    """Start argv under the launcher with fds 0 and 1 given; return (pid, read end of the RSS report)."""
    report_read, report_write = os.pipe()
    pid = os.posix_spawn(launch, [launch, "3", *argv], env, file_actions=[
        (os.POSIX_SPAWN_DUP2, fd0, 0), (os.POSIX_SPAWN_DUP2, fd1, 1), (os.POSIX_SPAWN_DUP2, report_write, 3)])
    os.close(report_write)
    return pid, report_read


def finish_launched(pid: int, report: int) -> int:
    """Reap the launcher; return its grandchild's peak RSS in KiB."""
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    with open(report) as lines:
        return int(lines.read())


def through_shim(launch: str, argv: list[str], total: int, env) -> tuple[float, int, int]:
    """(seconds, peak RSS KiB of shim and script together, script's own VmHWM KiB)."""
    ours, theirs = socket.socketpair()
    started = time.perf_counter()
    pid, report = spawn_launched(launch, argv, theirs.fileno(), theirs.fileno(), env)
    theirs.close()
    ours.sendall(request(total))
    send(ours.fileno(), total)
    answer = b""
    while chunk := ours.recv(65536):
        answer += chunk
    # Close as soon as the response ends, as nginx does: --fix-status drains
    # an unread body after the script exits until the client closes.
    ours.close()
    peak = finish_launched(pid, report)
    elapsed = time.perf_counter() - started
    found = re.search(rb"done VmHWM=(\d+)\n$", answer)
    assert found, answer
    return elapsed, peak, int(found.group(1))


def through_pipe(launch: str, program: str, total: int) -> tuple[float, int, int]:
    read_end, write_end = os.pipe()
    out_read, out_write = os.pipe()
    started = time.perf_counter()
    pid, report = spawn_launched(launch, [program], read_end, out_write, {"CONTENT_LENGTH": str(total)})
    os.close(read_end)
    os.close(out_write)
    send(write_end, total)
    os.close(write_end)
    with open(out_read, "rb") as out:
        answer = out.read()
    peak = finish_launched(pid, report)
    found = re.search(rb"done VmHWM=(\d+)\n$", answer)
    assert found, answer
    return time.perf_counter() - started, peak, int(found.group(1))


def main() -> None:
    total = int(float(sys.argv[1]) * (1 << 30)) if len(sys.argv) > 1 else 1 << 30
    compile_package()
    work = workdir()
    program = str(build(work, "discard", DISCARD_C))
    launch = str(build(work, "launch", LAUNCH_C))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    shim = [PYTHON, str(REPO / "bin" / "scgi-run")]
    commands = {
        "plain pipe": lambda: through_pipe(launch, program, total),
        "scgi-run SCRIPT (spooled)": lambda: through_shim(launch, [*shim, program], total, env),
        "scgi-run --stream-body SCRIPT": lambda: through_shim(launch, [*shim, "--stream-body", program],
                                                              total, env),
        "scgi-run --fix-status SCRIPT": lambda: through_shim(launch, [*shim, "--fix-status", program], total, env),
    }
    results: dict[str, list[tuple[float, int, int]]] = {name: [] for name in commands}
    for _ in range(3):
        for name, run in commands.items():
            results[name].append(run())
    base = min(t for t, _, _ in results["plain pipe"])
    print(f"interpreter: {PYTHON}; {total / (1 << 30):g} GiB, best of 3; peak RSS in MiB")
    print(f"{'':30s} {'seconds':>8} {'MB/s':>7} {'vs pipe':>8} {'process peak':>13} {'script VmHWM':>13}")
    for name, runs in results.items():
        best = min(t for t, _, _ in runs)
        print(f"{name:30s} {best:8.3f} {total / best / 1e6:7.0f} {best / base:7.2f}x"
              f" {max(p for _, p, _ in runs) / 1024:13.1f} {max(s for _, _, s in runs) / 1024:13.1f}")


if __name__ == "__main__":
    main()
