"""One-shot WSGI hello, per-request wall time, against a minimal responder and a bare start.

Each request is what inetd does: a socketpair, a process spawned with one end
on fds 0, 1 and 2, the SCGI request written, the response read to EOF, the
process reaped.  The three commands run alternately in every round, with the
same interpreter and the same flags, so drift hits all of them alike.

    python bench/wsgi_oneshot.py [--python /usr/bin/python3.11] [--rounds 200] [--flags=-S]

--python must be a real interpreter binary, not a wrapper script (a pyenv
shim adds ~50 ms).  The package is found through PYTHONPATH, so the flags
cannot include -I or -E; -S (no site) is the default because site-packages
.pth files cost 15-20 ms here and are not the gateway's doing.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scgi_inetd.client import build_params  # noqa: E402
from scgi_inetd.protocol import encode_request  # noqa: E402

RESPONSE = b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nHello, world!\n"


def run_once(argv: list[str], request: bytes, env: dict[str, str]) -> tuple[float, bytes]:
    """Spawn argv on a socketpair as inetd does; return (wall seconds, response)."""
    ours, theirs = socket.socketpair()
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[
        (os.POSIX_SPAWN_DUP2, theirs.fileno(), 0),
        (os.POSIX_SPAWN_DUP2, theirs.fileno(), 1),
        (os.POSIX_SPAWN_DUP2, theirs.fileno(), 2),
    ])
    theirs.close()
    chunks = []
    try:  # `-c pass` reads nothing: its exit resets the connection
        ours.sendall(request)
        while chunk := ours.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    os.waitpid(pid, 0)
    elapsed = time.perf_counter() - started
    ours.close()
    return elapsed, b"".join(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=os.path.realpath(sys.executable))
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--flags", default="-S", help="interpreter flags for every command (default -S)")
    args = parser.parse_args()
    python = os.path.realpath(args.python)
    flags = args.flags.split()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    subprocess.run([python, "-m", "compileall", "-q", "-l", str(REPO / "scgi_inetd"), str(REPO / "examples")],
                   check=True, stdout=subprocess.DEVNULL)
    request = encode_request(build_params("GET", "/", [("User-Agent", "bench")]))
    with tempfile.TemporaryDirectory() as tmp:
        responder = Path(tmp, "responder.py")
        responder.write_text(f"import os\nos.read(0, 65536)\nos.write(1, {RESPONSE!r})\n")
        commands = {
            "bare start (-c pass)": [python, *flags, "-c", "pass"],
            "minimal responder": [python, *flags, str(responder)],
            "scgi-wsgi hello": [python, *flags, str(REPO / "bin" / "scgi-wsgi"),
                                str(REPO / "examples" / "hello_wsgi.py")],
        }
        for name, argv in commands.items():  # warm up, write .pyc files, check the answers
            for _ in range(5):
                _, response = run_once(argv, request, dict(env, PYTHONDONTWRITEBYTECODE=""))
            if name != "bare start (-c pass)":
                assert response.endswith(b"Hello, world!\n") and response.startswith(b"Status: 200 OK"), response
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(run_once(argv, request, env)[0])
    print(f"interpreter: {python} {' '.join(flags)}; {args.rounds} rounds, alternating")
    base = statistics.median(times["minimal responder"])
    bare = statistics.median(times["bare start (-c pass)"])
    print(f"{'command':24} {'median ms':>10} {'mean ms':>9} {'vs responder':>13} {'vs bare':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24} {median * 1000:10.2f} {statistics.fmean(values) * 1000:9.2f} "
              f"{median / base:12.3f}x {median / bare:7.3f}x")


if __name__ == "__main__":
    main()
