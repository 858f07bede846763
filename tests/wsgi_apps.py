"""WSGI apps the command-line and resident-mode tests serve in child processes."""

import json
import os
import sys
import time


def application(environ, start_response):
    """Answers with facts about the request and the process, as JSON; a few paths do more."""
    path = environ["PATH_INFO"]
    if path == "/slow":
        started = environ.get("QUERY_STRING")
        if started:
            open(started, "w").close()  # tells the test the request is in flight
        time.sleep(1.0)
    if path == "/stderr":
        print("printed to stderr", file=sys.stderr)
        environ["wsgi.errors"].write("written to wsgi.errors\n")
        os.write(2, b"written to fd 2\n")
    if path == "/exit":
        raise SystemExit(3)
    if path == "/interrupt":
        raise KeyboardInterrupt
    if path == "/cut":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _first_chunk_then_failure()
    body = environ["wsgi.input"].read()
    data = {
        "pid": os.getpid(),
        "run_once": environ["wsgi.run_once"],
        "script_name": environ["SCRIPT_NAME"],
        "path_info": path,
        "body": body.decode("latin-1"),
        "cwd": os.getcwd(),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(data).encode()]


def _first_chunk_then_failure():
    yield b"first chunk\n"
    raise RuntimeError("failed after the first chunk")
