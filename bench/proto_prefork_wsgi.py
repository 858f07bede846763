"""Prototype, not the library: resident WSGI with pre-forked workers serving many connections each.

    python proto_prefork_wsgi.py SOCKET_PATH FILE.py:CALLABLE WORKERS

bench/run serves it beside `scgi-wsgi` in resident mode to measure one
proposed change to scgi_inetd/resident.py. Today every connection costs a
fork of the whole interpreter, its copy-on-write page faults (about 150 per
hello request) and its exit; here WORKERS children each accept() in a loop
and run the same one-shot path (handle_connection) per connection, as the
scgi package's server and uWSGI do. What it gives up: the fresh process per
request (state left by one request is seen by the next in that worker).
"""

import os
import sys

from scgi_inetd.logsink import open_log
from scgi_inetd.resident import bind_listener
from scgi_inetd.wsgi import handle_connection
from scgi_inetd.wsgi_cli import load_app


def worker(listen_fd: int, app, errors) -> None:
    import _socket

    listener = _socket.socket(fileno=listen_fd)
    while True:
        fd, _ = listener._accept()
        try:
            handle_connection(app, errors, stdin=fd, stdout=fd, run_once=False)
        finally:
            os.close(fd)


def main() -> int:
    path, target, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    errors = open_log(None)
    app = load_app(target)
    listen_fd = bind_listener(f"unix:{path}")
    os.chmod(path, 0o666)
    for _ in range(workers):
        if os.fork() == 0:
            try:
                worker(listen_fd, app, errors)
            finally:
                os._exit(1)
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
