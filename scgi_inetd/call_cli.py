"""`scgi-call`: make one SCGI request and print the response like `curl -i`.

The response is streamed to stdout as it arrives (a 200 MB answer needs no
200 MB of memory), and --timeout bounds the whole exchange, so a server that
trickles bytes cannot keep the client waiting past it.
"""

from __future__ import annotations

import shlex
import sys
import time
from typing import BinaryIO, Iterator, Sequence

from .client import build_params, connect, exec_stream, receive
from .options import CALL, ServeOptions, UsageError, parse_options
from .protocol import ProtocolError, Response, encode_request, parse_response, response_header_end

__all__ = ["EXIT_TIMEOUT", "MAX_RESPONSE_HEAD", "CallArguments", "main", "parse_args", "read_body", "relay"]

#: The most response header bytes held while looking for the blank line that ends
#: them: nginx's scgi_buffer_size is 4 or 8 KiB and it refuses more (502).
MAX_RESPONSE_HEAD = 65536
#: Exit status when --timeout passed before the response was complete.
EXIT_TIMEOUT = 3


class CallArguments(ServeOptions):
    """scgi-call's options, and what its positional arguments name."""

    address: str | None = None  # unix:PATH or HOST:PORT; None with --exec
    uri: str = "/"


def parse_args(argv: Sequence[str] | None) -> CallArguments:
    """The options (from the table in options.py), with `address` and `uri` from the positional arguments."""
    args, positionals = parse_options(CALL, sys.argv[1:] if argv is None else argv, CallArguments(),
                                      intermixed=True)
    assert isinstance(args, CallArguments)
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
    deadline = time.monotonic() + args.call_timeout
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
        out = sys.stdout.buffer
        if args.command:
            chunks = exec_stream(shlex.split(args.command), request, deadline=deadline)
            try:
                response = relay(chunks, out, args.body_only)
            finally:
                chunks.close()
        else:
            with connect(args.address or "", args.call_timeout) as sock:
                sock.sendall(request)
                response = relay(receive(sock, deadline), out, args.body_only)
    except TimeoutError:
        sys.stdout.flush()
        print(f"scgi-call: no complete response within {args.call_timeout:g} s", file=sys.stderr)
        return EXIT_TIMEOUT
    except (OSError, ValueError, ProtocolError) as error:
        print(f"scgi-call: {error}", file=sys.stderr)
        return 2
    return 1 if response.status >= 500 else 0


def relay(chunks: Iterator[bytes], out: BinaryIO, body_only: bool = False) -> Response:
    """Print the response head like `curl -i` once it is in, then copy the body as it arrives.

    Returns the head (its body only what came with it). Raises ProtocolError
    for a response without a header block, or one over MAX_RESPONSE_HEAD.
    """
    received = b""
    for chunk in chunks:
        received += chunk
        if response_header_end(received) >= 0:
            break
        if len(received) > MAX_RESPONSE_HEAD:
            raise ProtocolError(502, f"response header block over {MAX_RESPONSE_HEAD} bytes")
    response = parse_response(received)
    if not body_only:
        head = [f"HTTP/1.1 {response.status} {response.reason}".rstrip()]
        head += [f"{name}: {value}" for name, value in response.headers]
        out.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    out.write(response.body)
    try:
        for chunk in chunks:
            out.write(chunk)
    finally:
        out.flush()
    return response
