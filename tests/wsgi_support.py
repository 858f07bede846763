"""Running scgi_inetd.wsgi's per-connection path over a real socketpair, in this process.

The handler runs in a thread on one end of a socketpair (as a forked child
would on fds 0/1); the test is the client on the other end.  What is written
to wsgi.errors is captured, and what is left unread on the server's end
after the handler returns is reported, so a test can check the drain.
"""

from __future__ import annotations

import io
import socket
import threading
from dataclasses import dataclass

from scgi_inetd.client import build_params
from scgi_inetd.protocol import Response, encode_request, parse_response
from scgi_inetd.wsgi import handle_connection


@dataclass
class Exchange:
    raw: bytes  # every byte the handler wrote
    log: str  # what went to wsgi.errors
    unread: bytes  # bytes the handler left unread on its end of the connection

    @property
    def response(self) -> Response:
        return parse_response(self.raw)

    @property
    def log_lines(self) -> list[str]:
        return self.log.splitlines()


def request_bytes(method: str = "GET", uri: str = "/", *, body: bytes = b"", headers=(), params=None) -> bytes:
    return encode_request(build_params(method, uri, headers, body, params), body)


def exchange(app, request: bytes, *, trailing: bytes = b"", read_limit: int | None = None,
             close_after_send: bool = False, timeout: float = 30.0, **handler_options) -> Exchange:
    """Send `request` (then `trailing`, bytes that are not ours) and collect the response.

    `read_limit`: stop reading the response after that many bytes and close
    the client's end (a client that goes away).  `close_after_send`: shut
    down the client's writing side once the request is sent (a client that
    sends less body than it announced).
    """
    client, server = socket.socketpair()
    errors = io.StringIO()
    client.settimeout(timeout)
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            handle_connection(app, errors, stdin=server.fileno(), stdout=server.fileno(), **handler_options)
        except BaseException as error:  # surfaced by the test below
            failures.append(error)
        finally:
            try:
                server.shutdown(socket.SHUT_WR)  # as the process's exit would
            except OSError:
                pass

    def send() -> None:
        try:
            client.sendall(request + trailing)
            if close_after_send:
                client.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    handler = threading.Thread(target=serve)
    sender = threading.Thread(target=send)
    handler.start()
    sender.start()
    chunks = []
    received = 0
    try:
        while read_limit is None or received < read_limit:
            chunk = client.recv(262144)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    finally:
        if read_limit is not None:
            client.close()
        handler.join(timeout)
        sender.join(timeout)
    unread = b""
    server.setblocking(False)
    try:
        while chunk := server.recv(262144):
            unread += chunk
    except (BlockingIOError, OSError):
        pass
    server.close()
    if read_limit is None:
        client.close()
    assert not handler.is_alive(), "handler did not finish"
    if failures:
        raise failures[0]
    return Exchange(b"".join(chunks), errors.getvalue(), unread)
