"""Prototype, not the library: scgi-wsgi whose one-shot process ends with os._exit.

bench/run serves it beside bin/scgi-wsgi to measure one proposed change: a
one-shot handler has answered and flushed by the time main() returns, so the
interpreter's finalization (module teardown, a last garbage collection:
about 2.5 ms of CPU for a bare `python -I -c pass` here) buys nothing. The
cost of skipping it: atexit handlers and __del__ of the app's objects do not
run, so the library would need it as an opt-out, or run atexit first.
"""

import os
import sys

from scgi_inetd.wsgi_cli import main

status = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
