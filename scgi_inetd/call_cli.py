"""`scgi-call`: make one SCGI request and print the response like `curl -i`."""

from __future__ import annotations

import shlex
import sys
from typing import Sequence

from .client import build_params, connect, exchange, exec_exchange
from .options import CALL, ServeOptions, UsageError, parse_options
from .protocol import ProtocolError, encode_request, parse_response


def parse_args(argv: Sequence[str] | None) -> ServeOptions:
    """The options (from the table in options.py), with `address` and `uri` from the positional arguments."""
    args, positionals = parse_options(CALL, sys.argv[1:] if argv is None else argv, intermixed=True)
    if len(positionals) > 2:
        raise UsageError(f"unexpected argument {positionals[2]!r}")
    args.address = positionals[0] if positionals else None
    args.uri = positionals[1] if len(positionals) > 1 else "/"
    if args.command and args.address and args.uri == "/":
        args.uri, args.address = args.address, None
    if bool(args.command) == bool(args.address):
        raise UsageError("give an address or --exec COMMAND, not both" if args.command else
                         "give an address (unix:PATH or HOST:PORT) or --exec COMMAND")
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
    try:
        args = parse_args(argv)
    except UsageError as stop:
        return stop.report(CALL, sys.stdout, sys.stderr)
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
            raw = exec_exchange(shlex.split(args.command), request, timeout=args.call_timeout)
        else:
            with connect(args.address, args.call_timeout) as sock:
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
