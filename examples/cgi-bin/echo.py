#!/usr/bin/env python3
"""Echo the request body back: read exactly CONTENT_LENGTH bytes (never until EOF)."""
import os
import sys

length = int(os.environ.get("CONTENT_LENGTH") or 0)
out = sys.stdout.buffer
out.write(b"Status: 200 OK\r\n")
out.write(b"Content-Type: application/octet-stream\r\n")
out.write(b"Content-Length: %d\r\n\r\n" % length)
while length > 0:
    chunk = sys.stdin.buffer.read1(min(length, 65536))
    if not chunk:
        break
    out.write(chunk)
    length -= len(chunk)
out.flush()
