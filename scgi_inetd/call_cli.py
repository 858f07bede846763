"""`scgi-call`: make one SCGI request and print the response like `curl -i`.

The response is streamed to stdout as it arrives (a 200 MB answer needs no
200 MB of memory), and --timeout bounds the whole exchange, so a server that
trickles bytes cannot keep the client waiting past it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import BinaryIO, Iterator, Sequence

from .client import build_params, connect, exec_stream, receive
from .protocol import ProtocolError, Response, encode_request, parse_response

#: The most response header bytes held while looking for the blank line that ends
#: them: nginx's scgi_buffer_size is 4 or 8 KiB and it refuses more (502).
MAX_RESPONSE_HEAD = 65536
#: Exit status when --timeout passed before the response was complete.
EXIT_TIMEOUT = 3

USAGE_EXAMPLES = """examples:
  scgi-call unix:/run/scgi.sock /cgi-bin/hello.sh?name=you
  scgi-call 127.0.0.1:4000 -X POST --data @form.txt /submit
  scgi-call --exec 'scgi-wsgi examples/hello_wsgi.py' /hello

exit status: 0 for a 1xx-4xx answer, 1 for 5xx, 2 for a protocol or connection error,
3 when --timeout passed before the response was complete (what arrived is printed)"""


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
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds for the whole exchange, connecting included (default 30)")
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
    deadline = time.monotonic() + args.timeout
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
            with connect(args.address, args.timeout) as sock:
                sock.sendall(request)
                response = relay(receive(sock, deadline), out, args.body_only)
    except TimeoutError:
        sys.stdout.flush()
        print(f"scgi-call: no complete response within {args.timeout:g} s", file=sys.stderr)
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
        if b"\r\n\r\n" in received or b"\n\n" in received:
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
