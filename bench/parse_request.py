#!/usr/bin/env python3
"""Parse a realistic ~1 KB nginx header block: microseconds per parse, against the 2011 algorithm and sioscgi.

The baseline is the 2011 `inetd_scgi` way, over the same bytes in memory:
length digits read one at a time, `split(b"\\0")`, one decode per item, no
validation. Ours validates every rule of the protocol module. sioscgi
(PyPI; a sans-I/O SCGI parser, bench-only) is timed too when the
interpreter has it. Then the same three over header blocks from 0.5 KB to
256 KB (one cookie grown), per KB: a parser's cost must grow linearly.

    python bench/parse_request.py [--rounds N] [--number N] [--sweep-json]
    python -m venv v && v/bin/pip install sioscgi && v/bin/python bench/parse_request.py

--sweep-json prints only the sweep, as JSON (bench/run draws its curve from it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scgi_inetd.protocol import encode_request, parse_request  # noqa: E402

NGINX_HEADERS = [
    ("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/cgi/x.sh/extra?a=1&b=%20"), ("QUERY_STRING", "a=1&b=%20"),
    ("CONTENT_TYPE", "application/x-www-form-urlencoded"), ("DOCUMENT_URI", "/cgi/x.sh/extra"),
    ("DOCUMENT_ROOT", "/srv/nginx/html"), ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_SCHEME", "http"),
    ("REMOTE_ADDR", "127.0.0.1"), ("REMOTE_PORT", "32826"), ("SERVER_PORT", "18080"), ("SERVER_NAME", ""),
    ("HTTP_HOST", "127.0.0.1"),
    ("HTTP_USER_AGENT", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/120.0.0.0 Safari/537.36"),
    ("HTTP_ACCEPT", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    ("HTTP_ACCEPT_LANGUAGE", "en-GB,en;q=0.9"), ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br"),
    ("HTTP_COOKIE", "session=" + "9f8e7d6c5b4a" * 20 + "; theme=dark; _ga=GA1.1.123456789.1700000000"),
    ("HTTP_PROXY", "evil"), ("HTTP_CONTENT_LENGTH", "7"),
    ("HTTP_CONTENT_TYPE", "application/x-www-form-urlencoded"),
]


def parse_2011(data: bytes) -> dict[str, str]:
    """The 2011 algorithm: digits one at a time, split, decode each item, no checks."""
    index = 0
    length = 0
    while True:
        byte = data[index : index + 1]
        index += 1
        if byte == b":":
            break
        length = length * 10 + int(byte)
    items = data[index : index + length].split(b"\0")
    environ = {}
    for position in range(0, len(items) - 1, 2):
        environ[items[position].decode("latin-1")] = items[position + 1].decode("latin-1")
    return environ


def parse_sioscgi(data: bytes) -> dict[str, bytes]:
    """sioscgi's reader fed the whole request at once, up to its Headers event."""
    from sioscgi.request import Headers, SCGIReader

    reader = SCGIReader(rx_buffer_limit=len(data) + 1)
    reader.receive_data(data)
    event = reader.next_event()
    assert isinstance(event, Headers), event
    return event.environment


def have_sioscgi() -> bool:
    try:
        import sioscgi.request  # noqa: F401
    except ImportError:
        return False
    return True


def sized_headers(size: int) -> list[tuple[str, str]]:
    """A header block of about `size` bytes: NGINX_HEADERS cut short, or with the cookie grown."""
    base = len(encode_request(NGINX_HEADERS))
    if size < base:
        return [pair for index, pair in enumerate(NGINX_HEADERS)
                if len(encode_request(NGINX_HEADERS[:index + 1])) <= size]
    grown = dict(NGINX_HEADERS)
    grown["HTTP_COOKIE"] += "c" * (size - base)
    return list(grown.items())


def interleaved_microseconds(functions, data: bytes, rounds: int, number: int) -> list[list[float]]:
    """Time each function `rounds` times, alternating, so machine load drifts over both alike."""
    timers = [timeit.Timer(lambda f=f: f(data)) for f in functions]
    results: list[list[float]] = [[] for _ in functions]
    for _ in range(rounds):
        for timer, times in zip(timers, results):
            times.append(timer.timeit(number) / number * 1e6)
    return results


#: Header block sizes of the sweep, bytes.
SIZES = (512, 1024, 4096, 16384, 65536, 262144)


def sweep(parsers, number: int, rounds: int = 5) -> list[tuple[float, list[float]]]:
    """(header block KB, min µs per parse of each parser) for each of SIZES.

    `number` parses of a 1 KB block per round, fewer of larger ones (at least 20).
    """
    points = []
    for size in SIZES:
        block = encode_request(sized_headers(size))
        kilobytes = parse_request(block)[1] / 1024
        runs = interleaved_microseconds(list(parsers.values()), block, rounds, max(number * 1024 // size, 20))
        points.append((kilobytes, [min(r) for r in runs]))
    return points


def available_parsers(data: bytes) -> dict:
    """parse_request, the 2011 algorithm and sioscgi if installed, checked to agree on `data`."""
    assert parse_2011(data) == parse_request(data)[0]
    parsers = {"parse_request": parse_request, "2011 algorithm": parse_2011}
    if have_sioscgi():
        parsers["sioscgi"] = parse_sioscgi
        assert {k: v.encode("latin-1") for k, v in parse_request(data)[0].items()} == parse_sioscgi(data)
    return parsers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=10000)
    parser.add_argument("--sweep-json", action="store_true")
    args = parser.parse_args()
    data = encode_request(NGINX_HEADERS, b"BODY123")
    parsers = available_parsers(data)
    if args.sweep_json:
        print(json.dumps({"python": sys.version.split()[0], "parsers": list(parsers),
                          "points": sweep(parsers, args.number, min(args.rounds, 5))}))
        return 0
    header_size = parse_request(data)[1]
    times = dict(zip(parsers, interleaved_microseconds(list(parsers.values()), data, args.rounds, args.number)))
    print(f"python {sys.version.split()[0]}, header block {header_size} bytes, {len(NGINX_HEADERS) + 2} headers")
    print(f"{'':24}{'min':>9}{'median':>9}   (microseconds per parse)")
    for name, runs in times.items():
        print(f"{name:24}{min(runs):9.2f}{statistics.median(runs):9.2f}")
    for name in parsers:
        if name != "parse_request":
            print(f"parse_request against {name} (min): {min(times[name]) / min(times['parse_request']):.2f}x")
    if not have_sioscgi():
        print("sioscgi: not installed in this interpreter (pip install sioscgi), not timed")
    print()
    print("| header block | " + " | ".join(f"{name}, µs per KB" for name in parsers) + " |")
    print("| --- |" + " --- |" * len(parsers))
    for kilobytes, microseconds in sweep(parsers, args.number):
        print(f"| {kilobytes:.1f} KB | " + " | ".join(f"{us / kilobytes:.2f}" for us in microseconds) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
