"""Requests per second of resident `scgi-run --listen unix:PATH SCRIPT` against one-shot `scgi-run SCRIPT`.

Usage: BENCH_PYTHON=/usr/bin/python3.11 python bench/cgi_resident.py [REQUESTS] [--concurrency N] [--flags=-S]

One-shot is what inetd `nowait` does: per request a socketpair and a new
process (a fresh interpreter) with one end on fds 0, 1 and 2. Resident mode
starts the interpreter once; per request it accepts on a unix socket, forks a
child that reads the header and execs the script. The script is the same
compiled hello program in both. Each is run sequentially (one request at a
time) and with N clients at once; the two modes alternate in every round.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from cgi_common import HELLO_C, PYTHON, REPO, build, compile_package, one_request, request, workdir


def call_unix(path: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def run_clients(count: int, concurrency: int, one) -> float:
    """Make `count` requests with `concurrency` clients; return requests per second."""
    left = [count]
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if not left[0]:
                    return
                left[0] -= 1
            assert one().endswith(b"hello\n")

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - started)


def start_resident(argv: list[str], path: str, env) -> subprocess.Popen:
    process = subprocess.Popen([*argv[:-1], "--listen", f"unix:{path}", "--max-children", "16", argv[-1]],
                               env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("resident scgi-run did not start")
        time.sleep(0.01)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requests", nargs="?", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flags", default="", help="interpreter flags for scgi-run, e.g. -S")
    args = parser.parse_args()
    compile_package()
    hello = str(build(workdir(), "hello", HELLO_C))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    shim = [PYTHON, *args.flags.split(), str(REPO / "bin" / "scgi-run"), hello]
    data = request()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp, "scgi.sock"))
        resident = start_resident(shim, path, env)
        try:
            modes = {
                "one-shot (spawn per request)": lambda: one_request(shim, data, env)[1],
                "resident (--listen unix:)": lambda: call_unix(path, data),
            }
            for one in modes.values():  # warm up
                run_clients(5, 1, one)
            rates = {(name, c): [] for name in modes for c in (1, args.concurrency)}
            for _ in range(args.rounds):
                for concurrency in (1, args.concurrency):
                    for name, one in modes.items():
                        rates[name, concurrency].append(run_clients(args.requests, concurrency, one))
        finally:
            resident.send_signal(signal.SIGTERM)
            resident.wait(30)
    print(f"interpreter: {PYTHON} {args.flags}; {args.requests} requests per run, best of {args.rounds} rounds; "
          f"load {os.getloadavg()[0]:.1f}")
    for concurrency in (1, args.concurrency):
        base = max(rates["one-shot (spawn per request)", concurrency])
        for name in modes:
            best = max(rates[name, concurrency])
            print(f"  {name:30s} clients {concurrency:2d}: {best:8.0f} req/s   {best / base:5.2f}x one-shot")


if __name__ == "__main__":
    main()
