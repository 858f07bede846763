"""Error answers: every refusal is a `Status:` response with a short text body and one log line.

The one place where an error becomes bytes on the wire, so that every front-end
answers the same way and never sends a traceback to the client.
"""

import os

from .logsink import log_line

__all__ = ["REASONS", "error_response", "send_error", "status_line"]

# Reason phrases for the statuses the gateway itself answers with (RFC 9110).
# A table instead of http.HTTPStatus: importing `http` pulls in `enum`.
REASONS = {
    200: "OK",
    302: "Found",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def status_line(status: int) -> str:
    """`NNN Reason` for a status the gateway answers with."""
    return f"{status} {REASONS.get(status, 'Error')}"


def error_response(status: int, message: str) -> bytes:
    """A complete CGI response: Status line, text/plain, Content-Length, the message."""
    body = f"{status_line(status)}: {message}\n".encode("utf-8", "backslashreplace")
    head = (
        f"Status: {status_line(status)}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def send_error(fd: int, status: int, message: str, detail: str = "") -> None:
    """Answer `status` on `fd` and log one line; a client that went away is only logged.

    `message` goes to the client and the log; `detail` (a path, an errno text)
    goes to the log only.
    """
    log_line(f"{status_line(status)}: {message}{' (' + detail + ')' if detail else ''}")
    data = error_response(status, message)
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass
