"""Resident mode against one-shot mode: hello requests per second, one client, same interpreter.

    python bench/wsgi_resident.py [--python /usr/bin/python3.11] [--requests 300]

Resident: `scgi-wsgi --listen unix:PATH` (the app imported once, one fork per
connection).  One-shot: a process spawned per request on a socketpair, as
inetd does.  Requests are sequential, so the figures are per-request costs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wsgi_oneshot import REPO, run_once  # noqa: E402

from scgi_inetd.client import build_params  # noqa: E402
from scgi_inetd.protocol import encode_request  # noqa: E402


def resident_request(path: str, request: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=os.path.realpath(sys.executable))
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    python = os.path.realpath(args.python)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    hello = str(REPO / "examples" / "hello_wsgi.py")
    request = encode_request(build_params("GET", "/"))
    argv = [python, "-S", str(REPO / "bin" / "scgi-wsgi"), hello]
    for _ in range(5):
        run_once(argv, request, env)
    started = time.perf_counter()
    for _ in range(args.requests):
        assert run_once(argv, request, env)[1].endswith(b"Hello, world!\n")
    one_shot = args.requests / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hello.sock")
        server = subprocess.Popen(argv + ["--listen", f"unix:{path}"], env=env)
        try:
            while not os.path.exists(path):
                time.sleep(0.01)
            for _ in range(5):
                resident_request(path, request)
            started = time.perf_counter()
            for _ in range(args.requests):
                assert resident_request(path, request).endswith(b"Hello, world!\n")
            resident = args.requests / (time.perf_counter() - started)
        finally:
            server.terminate()
            server.wait()
    print(f"interpreter: {python} -S; {args.requests} sequential requests each")
    print(f"one-shot  {one_shot:8.0f} requests/s")
    print(f"resident  {resident:8.0f} requests/s  ({resident / one_shot:.1f}x one-shot)")


if __name__ == "__main__":
    main()
