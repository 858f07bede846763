"""Instructions a pool worker spends on one hello request, from accept to close, against a bare loop.

A worker of `scgi-wsgi --requests-per-child N` accepts, reads and parses
the header, builds the environ, runs the app and sends its response: all
of it Python, where uWSGI's worker runs C. This runs that path in one
process (resident._WorkerSide.accept and the handler serve_app gives the
pool) against a client in the same process, under valgrind's callgrind at
two request counts, so that start-up cancels out; and beside it a bare
loop that makes the system calls no connection can do without (accept, one
read, one write of a canned response, close) and parses the header with
parse_request, but checks nothing else. The difference is what the
worker's Python costs a request above that.

    python3 bench/pool_worker_path.py [--python /usr/bin/python3.11] [--repo DIR ...]

Each --repo is a checkout whose package is measured (default: this one;
give two, a `git worktree` of an older commit and this one, to compare them
in one run). The request is what nginx sends with Debian's scgi_params.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COUNTS = (1000, 9000)


def nginx_request() -> bytes:
    from scgi_inetd.client import build_params
    from scgi_inetd.protocol import encode_request

    return encode_request(build_params("GET", "/hello", [("Host", "127.0.0.1:8080"), ("User-Agent", "wrk")]))


def serve(mode: str, requests: int) -> float:
    """Serve `requests` hello requests in this process; return the server's microseconds per request."""
    from scgi_inetd import resident, wsgi
    from scgi_inetd.protocol import parse_request

    namespace: dict = {}
    exec(compile((REPO / "examples" / "hello_wsgi.py").read_text(), "hello_wsgi.py", "exec"), namespace)
    application = namespace["application"]

    request = nginx_request()
    workdir = tempfile.TemporaryDirectory()
    address = f"{workdir.name}/pool.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(address)
    listener.listen(64)
    listener.setblocking(False)
    channel, _frame_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    side = resident._WorkerSide(listener, channel, memoryview(bytearray(8)).cast("d"), 0, 262144)
    errors = open("/dev/null", "w")

    def worker() -> None:  # what resident._work and serve_app's handler do with a connection
        sock, environ, received = side.accept()
        try:
            wsgi.handle_connection(application, errors, stdin=sock.fileno(), stdout=sock.fileno(),
                                   run_once=False, request=environ, received=received)
        finally:
            sock.close()

    canned = b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nHello, world!\n"

    def bare() -> None:
        fd, _ = listener._accept()  # type: ignore[attr-defined]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0, fileno=fd)
        parse_request(sock.recv(4096))
        sock.send(canned)
        sock.close()

    server = {"worker": worker, "bare": bare}[mode]
    spent = 0.0
    for _ in range(requests):
        client = socket.socket(socket.AF_UNIX)
        client.connect(address)
        client.sendall(request)
        started = time.perf_counter()
        server()
        spent += time.perf_counter() - started
        answer = client.recv(4096)
        if not answer.startswith(b"Status: 200 OK"):
            raise RuntimeError(f"{mode}: unexpected answer {answer[:80]!r}")
        client.close()
    workdir.cleanup()
    return spent / requests * 1e6


def instructions(python: str, repo: Path, mode: str, requests: int) -> int:
    with tempfile.TemporaryDirectory() as out:
        # setarch -R: the same addresses each run, for the same hash-table layouts (steadier counts).
        steady = ["setarch", "-R"] if shutil.which("setarch") else []
        subprocess.run([*steady, "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg",
                        "--log-file=/dev/null", python, "-I", "-S", __file__,
                        "--child", mode, str(requests), "--repo", str(repo)],
                       check=True, capture_output=True, env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"})
        text = Path(out, "cg").read_text()
    return int(re.search(r"^totals: (\d+)", text, re.M).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="/usr/bin/python3.11")
    parser.add_argument("--repo", action="append", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    repos = args.repo or [REPO]
    if args.child:
        sys.path.insert(0, str(repos[0]))
        print(serve(args.child[0], int(args.child[1])))
        return
    low, high = COUNTS

    def per_request(tree: Path, mode: str) -> tuple[int, float]:
        count = instructions(args.python, tree, mode, high) - instructions(args.python, tree, mode, low)
        count //= high - low
        micros = min(float(subprocess.run([args.python, "-I", "-S", __file__, "--child", mode, "5000", "--repo",
                                           str(tree)], check=True, capture_output=True, text=True).stdout)
                     for _ in range(3))
        return count, micros

    print(f"python {args.python}; instructions a request: callgrind at {high} requests minus at {low}, "
          f"divided by {high - low} (the client's share included); microseconds a request of the server's "
          "part, outside valgrind, best of 3 x 5000")
    print()
    print("| path | instructions per request | above the bare loop | µs per request |")
    print("| --- | --- | --- | --- |")
    bare, micros = per_request(repos[0], "bare")
    print(f"| bare loop: accept, one read, parse_request, one send, close | {bare:,} | | {micros:.1f} |")
    for repo in repos:
        count, micros = per_request(repo, "worker")
        print(f"| pool worker, package of {repo} | {count:,} | {count - bare:,} | {micros:.1f} |")


if __name__ == "__main__":
    main()
