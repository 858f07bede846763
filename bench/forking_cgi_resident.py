"""Baseline, not the library: resident scgi-run as it was, one forked interpreter per connection.

    python forking_cgi_resident.py SOCKET_PATH DIR/

bench/run serves it beside `scgi-run` in resident mode, so the gain of
cgi_resident (headers read in the loop, scripts started with posix_spawn) is
measured in the same run. It is resident.serve (ForkEach) calling the unchanged one-shot
path in each forked child, which is what `scgi-run` still does with
--fix-status.
"""

import os
import sys

from scgi_inetd.cgi_exec import CgiConfig, serve_handed
from scgi_inetd.logsink import open_log
from scgi_inetd.listener import bind_listener
from scgi_inetd.resident import serve


def main() -> int:
    path, directory = sys.argv[1], sys.argv[2]
    open_log(None)
    config = CgiConfig(directory=directory)
    listen_fd = bind_listener(f"unix:{path}", mode=0o666)
    return serve(listen_fd, lambda request, fd, _: serve_handed(config, None, request, fd))


if __name__ == "__main__":
    raise SystemExit(main())
