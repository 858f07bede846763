"""Prototype, not the library: resident scgi-run that starts scripts with posix_spawn instead of fork.

    python proto_spawn_cgi.py SOCKET_PATH DIR/

bench/run serves it beside `scgi-run` in resident mode to measure one
proposed change. Today the resident loop forks the whole interpreter per
connection; the child reads the header and execs the script, so every
request pays the copy of the parent's page tables, copy-on-write faults and
the teardown of the copy at execve. Here the parent reads the header itself
and starts the script with posix_spawn (vfork: nothing is copied), the
connection on fds 0 and 1, default signals and its own process group, as
exec_script does. Shortcuts a real version must not take: the header is
read with a blocking call in the accept loop (one slow client stalls
everyone: it needs a poll over pending connections, with the same
--header-timeout), the script's directory is not made its cwd (posix_spawn
in Python 3.11 has no chdir action), and errors are not answered.
"""

import os
import sys

from scgi_inetd.cgi_env import build_environ, exec_environ, operator_environ
from scgi_inetd.cgi_exec import RESET_SIGNALS
from scgi_inetd.logsink import open_log
from scgi_inetd.reader import read_request
from scgi_inetd.resident import bind_listener
from scgi_inetd.script_resolver import ScriptResolver


def main() -> int:
    import _socket

    path, directory = sys.argv[1], sys.argv[2]
    open_log(None)
    resolver = ScriptResolver(directory)
    operator = operator_environ()
    listen_fd = bind_listener(f"unix:{path}")
    os.chmod(path, 0o666)
    listener = _socket.socket(fileno=listen_fd)
    while True:
        fd, _ = listener._accept()
        try:
            request = read_request(fd, timeout=30.0)
            script = resolver.resolve(request.get("SCRIPT_FILENAME"))
            environ = exec_environ(build_environ(request, script, operator))
            os.posix_spawn(script.path, [script.path], environ,
                           file_actions=[(os.POSIX_SPAWN_DUP2, fd, 0), (os.POSIX_SPAWN_DUP2, fd, 1)],
                           setpgroup=0, setsigdef=RESET_SIGNALS, setsigmask=())
        except Exception as error:  # a prototype: log and drop the connection
            sys.stderr.write(f"proto_spawn_cgi: {error!r}\n")
        finally:
            os.close(fd)
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass


if __name__ == "__main__":
    raise SystemExit(main())
