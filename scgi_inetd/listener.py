"""Where a server's connections come from: a socket bound for --listen, or one a super-server passed.

Imported only when a front-end may serve resident (--listen given, or fd 0
not surely the one connection: reader.one_connection says so cheaply):
scgi_inetd.resident, which does the binding and the exact check, would
cost every one-shot request about as much as the gateway itself.
"""

import os

from .options import ServeOptions
from .reader import one_connection

__all__ = ["find_listener", "listen_first"]


def find_listener(listen: str | None, stdin: int = 0, *, mode: int, owner: str | None = None) -> int | None:
    """The listening socket to serve in resident mode, or None to serve the one connection on `stdin`.

    `listen` (--listen) is bound (a unix socket with `mode` and `owner`);
    otherwise scgi_inetd.resident looks for a socket the super-server passed
    (LISTEN_FDS, or a listening socket on `stdin` from inetd `wait`).
    """
    if listen:
        from .resident import bind_listener

        return bind_listener(listen, mode=mode, owner=owner)
    if one_connection(stdin):
        return None
    from .resident import listener_from_environment

    return listener_from_environment(stdin)


def listen_first(options: ServeOptions, program: str) -> int | None:
    """Bind --listen now, before the log replaces stderr, so a failure is told on the real stderr.

    Returns the descriptor to serve on: the bound socket, which the front-end
    then finds as a passed listener (options.listen is cleared), or fd 0
    without --listen; None after writing the one-line reason (exit 1).
    """
    if not options.listen:
        return 0
    try:
        fd = find_listener(options.listen, mode=options.socket_mode, owner=options.socket_owner)
    except (OSError, ValueError) as error:
        os.write(2, f"{program}: cannot listen: {error}\n".encode("utf-8", "backslashreplace"))
        return None
    options.listen = None
    return fd
