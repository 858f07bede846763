"""Shared by the scgi-run benchmarks: build the C programs, spawn a handler as inetd does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: The real interpreter binary (a pyenv shim in front would add ~50 ms).
PYTHON = os.path.realpath(os.environ.get("BENCH_PYTHON", sys.executable))

HELLO_C = r"""
#include <unistd.h>
int main(void) {
    static const char r[] = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\n";
    return write(1, r, sizeof r - 1) == sizeof r - 1 ? 0 : 1;
}
"""

DISCARD_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    static char buf[1 << 20];
    const char *cl = getenv("CONTENT_LENGTH");
    long long left = cl ? atoll(cl) : 0;
    while (left > 0) {
        ssize_t n = read(0, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
        if (n <= 0) return 1;
        left -= n;
    }
    /* Report this program's own peak RSS: the shim's figure must not hide it. */
    char line[256], out[128];
    long hwm = -1;
    FILE *status = fopen("/proc/self/status", "r");
    while (status && fgets(line, sizeof line, status))
        if (sscanf(line, "VmHWM: %ld", &hwm) == 1) break;
    int n = snprintf(out, sizeof out, "Status: 200 OK\r\n\r\ndone VmHWM=%ld\n", hwm);
    return write(1, out, n) == n ? 0 : 1;
}
"""

#: Runs argv in a grandchild and reports its peak RSS: `launch FD argv...` forks,
#: the child execs argv, and the wait4() ru_maxrss (in KiB) is written to fd FD.
#: A child started by posix_spawn (vfork) or fork from a big process inherits
#: that process's peak in ru_maxrss; one forked from this small program does not.
LAUNCH_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int report = atoi(argv[1]);
    pid_t pid = fork();
    if (pid == 0) {
        close(report);
        execv(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (pid < 0 || wait4(pid, &status, 0, &usage) < 0) return 126;
    dprintf(report, "%ld\n", usage.ru_maxrss);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
"""

#: The baseline shim of the issue: `import os`, read the header with os.read, os.execv.
MINIMAL_SHIM = """\
import os, sys
digits = b""
while (c := os.read(0, 1)) != b":":
    digits += c
need = int(digits) + 1
while need:
    need -= len(os.read(0, need))
os.execv(sys.argv[1], sys.argv[1:])
"""


def build(workdir: Path, name: str, source: str) -> Path:
    (workdir / f"{name}.c").write_text(source)
    subprocess.run(["cc", "-O2", "-o", str(workdir / name), str(workdir / f"{name}.c")], check=True)
    return workdir / name


def compile_package(python: str = PYTHON) -> None:
    """Write the .pyc files of the one-shot path (-l: examples/cgi-bin stays free of __pycache__).

    With PYTHONDONTWRITEBYTECODE set, every run would compile the package from source.
    """
    subprocess.run([python, "-m", "compileall", "-q", "-l", str(REPO / "scgi_inetd"), str(REPO / "examples")],
                   check=True, stdout=subprocess.DEVNULL)


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="scgi-bench-"))


def request(body_length: int = 0) -> bytes:
    """The header of a request whose body (sent separately) is ``body_length`` bytes.

    Built by hand: encode_request sets CONTENT_LENGTH from the body it is given.
    """
    pairs = {"CONTENT_LENGTH": str(body_length), "SCGI": "1", "REQUEST_METHOD": "POST" if body_length else "GET",
             "REQUEST_URI": "/hello", "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1"}
    block = b"".join(b"%s\0%s\0" % (k.encode(), v.encode()) for k, v in pairs.items())
    return b"%d:%s," % (len(block), block)


def one_request(argv: list[str], data: bytes, env: dict[str, str]) -> tuple[float, bytes]:
    """Spawn argv with a socketpair end on fds 0, 1, 2; send data; read to EOF; seconds taken."""
    ours, theirs = socket.socketpair()
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, theirs.fileno(), 0), (os.POSIX_SPAWN_DUP2, theirs.fileno(), 1),
        (os.POSIX_SPAWN_DUP2, theirs.fileno(), 2)])
    theirs.close()
    if data:
        ours.sendall(data)
    chunks = []
    while chunk := ours.recv(65536):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    elapsed = time.perf_counter() - started
    ours.close()
    return elapsed, b"".join(chunks)


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]
