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
    static const char r[] = "Status: 200 OK\r\n\r\ndone\n";
    return write(1, r, sizeof r - 1) == sizeof r - 1 ? 0 : 1;
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
