"""A minimal SCGI responder, independent of the package: proves the stack itself.

Reads the header netstring from fd 0 byte-exactly, reads CONTENT_LENGTH body
bytes, and answers with the request's method, path and body length.
"""

import os

def main() -> None:
    digits = b""
    while not digits.endswith(b":"):
        digits += os.read(0, 1)
    size = int(digits[:-1])
    header = b""
    while len(header) < size + 1:
        header += os.read(0, size + 1 - len(header))
    fields = header[:-1].split(b"\0")
    environ = dict(zip(fields[0::2], fields[1::2]))
    remaining = int(environ[b"CONTENT_LENGTH"])
    while remaining:
        remaining -= len(os.read(0, min(remaining, 65536)))
    body = b"method=%s uri=%s pid=%d\n" % (
        environ.get(b"REQUEST_METHOD", b""), environ.get(b"REQUEST_URI", b""), os.getpid())
    os.write(1, b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
             % (len(body), body))

main()
