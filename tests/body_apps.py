"""WSGI apps for the request-body tests: ones that answer before they read, or never read."""

import hashlib
import os


def answer_first(environ, start_response):
    """Starts its response, then reads the whole body: as an app streaming progress would."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield f"started {os.getpid()}\n".encode()
    digest = hashlib.sha256()
    while chunk := environ["wsgi.input"].read(65536):
        digest.update(chunk)
    yield digest.hexdigest().encode() + b"\n"


def ignore_body(environ, start_response):
    """Answers without reading a byte of its body."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ignored\n"]
