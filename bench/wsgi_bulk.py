"""1 GiB through wsgi.file_wrapper and 1 GiB upload through wsgi.input: throughput and peak RSS.

Each run spawns bin/scgi-wsgi as inetd does (a socketpair end on fds 0, 1, 2)
and takes the child's peak RSS from wait4's rusage (ru_maxrss).

    python bench/wsgi_bulk.py [--python /usr/bin/python3.11] [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scgi_inetd.client import build_params  # noqa: E402
from scgi_inetd.protocol import encode_request  # noqa: E402

APP = '''
import os

def application(environ, start_response):
    if environ["PATH_INFO"] == "/download":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(os.environ["BULK_FILE"], "rb"))
    stream, total = environ["wsgi.input"], 0
    while chunk := stream.read(65536):
        total += len(chunk)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d" % total]
'''


def spawn(argv: list[str], env: dict[str, str]) -> tuple[socket.socket, int]:
    ours, theirs = socket.socketpair()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, theirs.fileno(), fd) for fd in (0, 1, 2)])
    theirs.close()
    return ours, pid


def download(argv, env, size):
    sock, pid = spawn(argv, env)
    started = time.perf_counter()
    sock.sendall(encode_request(build_params("GET", "/download")))
    received = 0
    while chunk := sock.recv(1 << 20):
        received += len(chunk)
    elapsed = time.perf_counter() - started
    _, status, usage = os.wait4(pid, 0)
    assert status == 0 and received > size, (status, received)
    return elapsed, usage.ru_maxrss


def upload(argv, env, size):
    sock, pid = spawn(argv, env)
    block = b"u" * (1 << 20)
    started = time.perf_counter()

    def send():
        sock.sendall(_header(size))
        for _ in range(size // len(block)):
            sock.sendall(block)

    sender = threading.Thread(target=send)
    sender.start()
    response = b""
    while chunk := sock.recv(65536):
        response += chunk
    sender.join()
    elapsed = time.perf_counter() - started
    _, status, usage = os.wait4(pid, 0)
    assert response.endswith(b"%d" % size), response
    return elapsed, usage.ru_maxrss


def _header(size: int) -> bytes:
    """The SCGI header of a POST announcing `size` body bytes (the body is streamed after it)."""
    request = encode_request(build_params("POST", "/upload"), b"")
    block = request[request.index(b":") + 1:-1].replace(b"CONTENT_LENGTH\x000\x00", b"CONTENT_LENGTH\x00%d\x00" % size, 1)
    return b"%d:%s," % (len(block), block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=os.path.realpath(sys.executable))
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp, "bulk_app.py")
        app.write_text(APP)
        data = Path(tmp, "data.bin")
        with open(data, "wb") as f:  # real blocks, not a sparse file, so the page cache is exercised
            block = os.urandom(1 << 20)
            for _ in range(args.size_mib):
                f.write(block)
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "BULK_FILE": str(data)}
        argv = [os.path.realpath(args.python), "-S", str(REPO / "bin" / "scgi-wsgi"), str(app)]
        for name, run in (("file_wrapper download", download), ("wsgi.input upload", upload)):
            elapsed, rss_kib = run(argv, env, size)
            print(f"{name:22} {args.size_mib} MiB in {elapsed:6.2f} s = {args.size_mib / elapsed:7.0f} MiB/s, "
                  f"peak RSS {rss_kib / 1024:5.1f} MiB")


if __name__ == "__main__":
    main()
