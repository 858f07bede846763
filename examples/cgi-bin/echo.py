#!/usr/bin/env python3
"""Echo the request body back.

Reads exactly CONTENT_LENGTH bytes (never until EOF: nginx does not half-close
the connection), and reads all of them before answering: nginx sends the
whole request body before it reads the response, so a script that writes
while still reading stalls once both socket buffers are full (seen at about
200 KB), until nginx's timeout.
"""
import os
import sys

length = int(os.environ.get("CONTENT_LENGTH") or 0)
body = bytearray()
while len(body) < length:
    chunk = sys.stdin.buffer.read1(min(length - len(body), 1 << 20))
    if not chunk:
        break
    body += chunk
out = sys.stdout.buffer
out.write(b"Status: 200 OK\r\nContent-Type: application/octet-stream\r\n")
out.write(b"Content-Length: %d\r\n\r\n" % len(body))
out.write(body)
out.flush()
