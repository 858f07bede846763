"""Latency of legitimate requests while hostile clients of the socket attack each resident mode.

    python3 bench/attack.py [--requests N] [--quick]

Every resident mode (scgi-run spawning, scgi-wsgi forking per connection, the
scgi-wsgi pool, scgi-bootmenu) runs with its default 16 slots on a unix socket
that the attackers reach directly, as any local user can reach a socket
inetd made 0666. For each attack the script makes N requests one after the
other and reports how many were answered 200 within 5 s, with the median and
the 99th percentile of their latency; "none" is the same server unattacked.

- slowloris: 64 clients send a header a byte every 5 s;
- drain-hold: 16 clients send a malformed header, then a body byte a second;
- non-reader: 8 clients ask for 8 MB and never read (8: half the slots; as
  many as there are slots hold them until the send timeout, 60 s);
- huge-length: 8 clients send CONTENT_LENGTH = 10 GiB, then nothing (each
  holds a slot for --body-timeout).

The tests of the same attacks (without timing) are tests/test_attacks.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scgi_inetd.client import build_params, call  # noqa: E402
from scgi_inetd.protocol import encode_request  # noqa: E402

BIG_APP = """
def app(environ, start_response):
    if environ.get("QUERY_STRING") == "big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [b"x" * (8 << 20)]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\\n"]
"""
BIG_CGI = """#!/bin/sh
printf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n'
if [ "$QUERY_STRING" = big ]; then head -c 8388608 /dev/zero; else echo hello; fi
"""


class Attack:
    """Hostile connections kept busy by a thread until stopped."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.socks: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def connect(self, data: bytes, count: int) -> None:
        for _ in range(count):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(self.path)
            if data:
                sock.sendall(data)
            self.socks.append(sock)

    def every(self, seconds: float, data: bytes) -> None:
        def loop() -> None:
            while not self.stopping.wait(seconds):
                for sock in self.socks:
                    try:
                        sock.send(data)
                    except OSError:
                        pass

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
        for sock in self.socks:
            sock.close()


def slowloris(path: str, uri: str) -> Attack:
    attack = Attack(path)
    attack.connect(b"7", 64)
    attack.every(5.0, b"0")
    return attack


def drain_hold(path: str, uri: str) -> Attack:
    attack = Attack(path)
    attack.connect(b"012:" + b"x" * 40, 16)
    attack.every(1.0, b"x")
    return attack


def non_reader(path: str, uri: str) -> Attack:
    attack = Attack(path)
    big = uri + ("&" if "?" in uri else "?") + "big"
    attack.connect(encode_request(build_params("GET", big)), 8)
    return attack


def huge_length(path: str, uri: str) -> Attack:
    attack = Attack(path)
    header = encode_request(build_params("POST", uri), b"")
    header = header.replace(b"CONTENT_LENGTH\x000\x00", b"CONTENT_LENGTH\x0010737418240\x00")
    length = header.index(b":")
    body = header[length + 1:-1]
    attack.connect(b"%d:%s," % (len(body), body), 8)
    return attack


ATTACKS = {"none": None, "slowloris": slowloris, "drain-hold": drain_hold, "non-reader": non_reader,
           "huge-length": huge_length}


def modes(folder: Path, env: dict[str, str]) -> dict[str, tuple[list[str], str]]:
    app = folder / "big_app.py"
    app.write_text(BIG_APP)
    script = folder / "big.sh"
    script.write_text(BIG_CGI)
    script.chmod(0o755)
    config = folder / "bootmenu.toml"
    example = (REPO / "examples" / "bootmenu.toml").read_text()
    config.write_text(example.replace("/var/lib/scgi-bootmenu/state.sqlite", str(folder / "state.sqlite")))
    subprocess.run([sys.executable, str(REPO / "bin" / "scgi-bootmenu"), str(config), "init"],
                   check=True, capture_output=True, env=env)
    return {
        "scgi-run": (["scgi-run", str(script)], "/"),
        "scgi-wsgi": (["scgi-wsgi", f"{app}:app"], "/"),
        "pool": (["scgi-wsgi", "--requests-per-child", "1000", f"{app}:app"], "/"),
        "scgi-bootmenu": (["scgi-bootmenu", str(config)], "/boot.ipxe?mac=52:54:00:12:34:56"),
    }


def measure(address: str, uri: str, requests: int) -> tuple[int, float, float]:
    """(answered 200 within 5 s, median ms, p99 ms) of `requests` requests one after the other."""
    latencies, ok = [], 0
    for _ in range(requests):
        started = time.perf_counter()
        try:
            ok += call(address, uri=uri, timeout=5).status == 200
        except OSError:
            pass
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return ok, statistics.median(latencies), latencies[max(0, int(len(latencies) * 0.99) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="slowloris only, 50 requests")
    args = parser.parse_args()
    attacks = ["none", "slowloris"] if args.quick else list(ATTACKS)
    requests = 50 if args.quick else args.requests
    env = dict(os.environ, PYTHONPATH=str(REPO))
    print("| mode | attack | served | median ms | p99 ms |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name, (argv, uri) in modes(folder, env).items():
            for attack_name in attacks:
                path = folder / f"{name}-{attack_name}.sock"
                process = subprocess.Popen(
                    [sys.executable, str(REPO / "bin" / argv[0]), "--listen", f"unix:{path}",
                     "--stderr", str(folder / f"{name}.log"), "--grace", "1", *argv[1:]],
                    env=env, stdin=subprocess.DEVNULL)
                try:
                    while not path.exists():
                        time.sleep(0.02)
                    start = ATTACKS[attack_name]
                    attack = start(str(path), uri) if start else None
                    time.sleep(0.5)
                    ok, median, p99 = measure(f"unix:{path}", uri, requests)
                    if attack:
                        attack.stop()
                    print(f"| {name} | {attack_name} | {ok}/{requests} | {median:.1f} | {p99:.1f} |", flush=True)
                finally:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(40)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
