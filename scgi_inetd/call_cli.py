"""`scgi-call`: make one SCGI request and print the response like `curl -i`."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Sequence

from .client import build_params, connect, exchange, exec_exchange
from .protocol import ProtocolError, encode_request, parse_response

USAGE_EXAMPLES = """examples:
  scgi-call unix:/run/scgi.sock /cgi-bin/hello.sh?name=you
  scgi-call 127.0.0.1:4000 -X POST --data @form.txt /submit
  scgi-call --exec 'scgi-wsgi examples/hello_wsgi.py' /hello

exit status: 0 for a 1xx-4xx answer, 1 for 5xx, 2 for a protocol or connection error"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scgi-call", description=__doc__, epilog=USAGE_EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("address", nargs="?", help="unix:PATH or HOST:PORT (omit with --exec)")
    parser.add_argument("uri", nargs="?", default="/", help="request URI with query string (default /)")
    parser.add_argument("--exec", dest="command", metavar="COMMAND",
                        help="spawn COMMAND with the connection on fds 0, 1, 2, as inetd does")
    parser.add_argument("-X", "--request", dest="method", default=None, help="method (default GET, POST with --data)")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'")
    parser.add_argument("--data", metavar="STRING|@FILE|@-", help="request body")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="set or override an SCGI variable (empty VALUE removes it)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--body-only", action="store_true", help="print only the response body")
    args = parser.parse_args(argv)
    if args.command and args.address and args.uri == "/":
        args.uri, args.address = args.address, None
    if bool(args.command) == bool(args.address):
        parser.error("give an address or --exec COMMAND, not both")
    return args


def read_body(spec: str | None) -> bytes:
    if spec is None:
        return b""
    if spec == "@-":
        return sys.stdin.buffer.read()
    if spec.startswith("@"):
        with open(spec[1:], "rb") as file:
            return file.read()
    return spec.encode("utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        headers = []
        for header in args.header:
            name, colon, value = header.partition(":")
            if not colon or not name.strip():
                raise ValueError(f"header must be 'Name: value', not {header!r}")
            headers.append((name.strip(), value.strip()))
        params = {}
        for param in args.param:
            name, equals, value = param.partition("=")
            if not equals or not name:
                raise ValueError(f"--param must be NAME=VALUE, not {param!r}")
            params[name] = value
        body = read_body(args.data)
        method = args.method or ("POST" if args.data is not None else "GET")
        request = encode_request(build_params(method, args.uri, headers, body, params), body)
        if args.command:
            raw = exec_exchange(shlex.split(args.command), request, timeout=args.timeout)
        else:
            with connect(args.address, args.timeout) as sock:
                raw = exchange(sock, request)
        response = parse_response(raw)
    except (OSError, ValueError, ProtocolError) as error:
        print(f"scgi-call: {error}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    if not args.body_only:
        head = [f"HTTP/1.1 {response.status} {response.reason}".rstrip()]
        head += [f"{name}: {value}" for name, value in response.headers]
        out.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    out.write(response.body)
    out.flush()
    return 1 if response.status >= 500 else 0
