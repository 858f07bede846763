"""An SCGI client that sends what nginx's stock `scgi_params` sends.

For debugging a deployment (`scgi-call`) and as the tests' harness. It can
talk to a unix socket, a TCP address, or spawn a program exactly as inetd does:
one end of a socketpair on its fds 0, 1 and 2.
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Generator, Iterable, Iterator, Mapping, Sequence
from urllib.parse import unquote

from .protocol import Response, encode_request, parse_response

__all__ = ["build_params", "call", "call_exec", "connect", "exchange", "exec_exchange", "exec_stream", "receive"]


def build_params(
    method: str = "GET",
    uri: str = "/",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    params: Mapping[str, str] | None = None,
    *,
    server_port: int = 80,
) -> list[tuple[str, str]]:
    """The SCGI variables nginx 1.22 sends with `include scgi_params`, in its order.

    HTTP headers become HTTP_* variables (names upper-cased, '-' to '_'), one
    pair per header line as nginx 1.22 sends them. `params` sets or overrides
    any variable (as `scgi_param` does); an empty string value removes it.
    """
    path, _, query = uri.partition("?")
    headers = list(headers)
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    host = next((v for k, v in headers if k.lower() == "host"), "localhost")
    pairs = [
        ("REQUEST_METHOD", method),
        ("REQUEST_URI", uri),
        ("QUERY_STRING", query),
        ("CONTENT_TYPE", content_type),
        ("DOCUMENT_URI", unquote(path, "latin-1")),
        ("DOCUMENT_ROOT", "/srv/www"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "40000"),
        ("SERVER_PORT", str(server_port)),
        ("SERVER_NAME", host.partition(":")[0]),
    ]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", host))
    for name, value in headers:
        pairs.append(("HTTP_" + name.upper().replace("-", "_"), value))
    if body and not any(k.lower() == "content-length" for k, _ in headers):
        pairs.append(("HTTP_CONTENT_LENGTH", str(len(body))))
    for name, value in (params or {}).items():
        pairs = [(k, v) for k, v in pairs if k != name]
        if value != "":
            pairs.append((name, value))
    return pairs


def connect(address: str, timeout: float) -> socket.socket:
    """Connect to `unix:PATH` or `HOST:PORT`."""
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: "str | tuple[str, int]" = address[5:]
    else:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"address must be unix:PATH or HOST:PORT, not {address!r}")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        target = (host.strip("[]"), int(port))
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except BaseException:
        sock.close()
        raise
    return sock


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send the request and read the response until the server closes.

    Like nginx, the client never half-closes its side: a server that reads
    until EOF instead of CONTENT_LENGTH hangs, and the test sees it.
    """
    sock.sendall(request)
    return b"".join(receive(sock))


def receive(sock: socket.socket, deadline: float | None = None) -> Iterator[bytes]:
    """The response as it arrives, until the server closes.

    `deadline` (a time.monotonic() value) bounds the whole response: past it
    TimeoutError is raised, however steadily a server trickles bytes. Without
    it each recv has the socket's own timeout.
    """
    while True:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline passed")
            sock.settimeout(remaining)
        chunk = sock.recv(262144)
        if not chunk:
            return
        yield chunk


def call(address: str, method: str = "GET", uri: str = "/", *, headers: Iterable[tuple[str, str]] = (),
         body: bytes = b"", params: Mapping[str, str] | None = None, timeout: float = 30.0) -> Response:
    """One request to an SCGI server at `address`; returns the parsed response."""
    request = encode_request(build_params(method, uri, headers, body, params), body)
    with connect(address, timeout) as sock:
        return parse_response(exchange(sock, request))


def call_exec(argv: Sequence[str], method: str = "GET", uri: str = "/", *,
              headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
              params: Mapping[str, str] | None = None, timeout: float = 30.0,
              env: Mapping[str, str] | None = None, raw: bytes | None = None) -> Response:
    """Spawn `argv` as inetd does (the connection on fds 0, 1, 2) and make one request.

    `raw` sends those bytes instead of an encoded request (for hostile input).
    """
    return parse_response(exec_exchange(argv, raw if raw is not None else
                                        encode_request(build_params(method, uri, headers, body, params), body),
                                        timeout=timeout, env=env))


def exec_exchange(argv: Sequence[str], request: bytes, *, timeout: float = 30.0,
                  env: Mapping[str, str] | None = None) -> bytes:
    """Spawn `argv` with a socketpair end on fds 0, 1, 2; send `request`; return all it wrote.

    `timeout` bounds the whole exchange (TimeoutError past it).
    """
    return b"".join(exec_stream(argv, request, deadline=time.monotonic() + timeout, env=env))


def exec_stream(argv: Sequence[str], request: bytes, *, deadline: float,
                env: Mapping[str, str] | None = None) -> Generator[bytes, None, None]:
    """Spawn `argv` as inetd does, send `request`, and yield what it writes as it arrives.

    The program is waited for once it closes the connection, and killed if it
    is still running at `deadline` (or when the caller stops early).
    """
    ours, theirs = socket.socketpair()
    with ours:
        try:
            fd = theirs.fileno()
            process = subprocess.Popen(list(argv), stdin=fd, stdout=fd, stderr=fd,
                                       env=dict(env) if env is not None else None)
        finally:
            theirs.close()
        try:
            ours.settimeout(max(deadline - time.monotonic(), 0.001))
            ours.sendall(request)
            yield from receive(ours, deadline)
        finally:
            try:
                process.wait(max(deadline - time.monotonic(), 0.001))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
