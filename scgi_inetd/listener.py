"""Where a server's connections come from: a socket bound for --listen, or one a super-server passed.

Imported only when a front-end may serve resident (--listen given, or fd 0
not surely the one connection: reader.one_connection says so cheaply): the
exact check and the binding need `_socket` or `socket`, which would cost
every one-shot request about as much as the gateway itself.
"""

import errno
import os
import stat

from .options import ServeOptions
from .reader import one_connection

__all__ = ["bind_listener", "find_listener", "listen_first", "listener_from_environment", "refuse_live_socket",
           "socket_owner_ids"]


def find_listener(listen: str | None, stdin: int = 0, *, mode: int, owner: str | None = None) -> int | None:
    """The listening socket to serve in resident mode, or None to serve the one connection on `stdin`.

    `listen` (--listen) is bound (a unix socket with `mode` and `owner`);
    otherwise this looks for a socket the super-server passed
    (LISTEN_FDS, or a listening socket on `stdin` from inetd `wait`).
    """
    if listen:
        return bind_listener(listen, mode=mode, owner=owner)
    if one_connection(stdin):
        return None
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


# systemd's sd_listen_fds(3): passed sockets start at fd 3.
SD_LISTEN_FDS_START = 3
LISTEN_BACKLOG = 128


def listener_from_environment(stdin: int = 0) -> int | None:
    """The listening socket a super-server passed us, or None for a one-shot connection.

    systemd (`Accept=no`) sets LISTEN_PID and LISTEN_FDS; inetd `wait` puts the
    listening socket itself on fd 0.
    """
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS", "0") != "0":
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
        os.set_inheritable(SD_LISTEN_FDS_START, False)
        return SD_LISTEN_FDS_START
    try:
        if not stat.S_ISSOCK(os.fstat(stdin).st_mode):
            return None
    except OSError:
        return None
    import _socket

    sock = _socket.socket(fileno=stdin)
    try:
        listening = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ACCEPTCONN)
    finally:
        sock.detach()
    return stdin if listening else None


def bind_listener(address: str, *, mode: int, owner: str | None = None) -> int:
    """Listen on `unix:PATH` or `HOST:PORT`; return the fd.

    A unix socket gets `mode` and `owner` (USER[:GROUP]) before anyone can
    reach it: it is bound under a temporary name, set up, and renamed onto
    PATH once listening, so PATH never names a socket that refuses
    connections or has the umask's permissions. PATH may be a stale socket
    (replaced), not one a server still listens on (refused).
    """
    import socket

    if address.startswith("unix:"):
        path = address[5:]
        refuse_live_socket(path)
        uid, gid = socket_owner_ids(owner)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            sock.bind(temporary)
            try:
                os.chmod(temporary, mode)
                if owner:
                    os.chown(temporary, uid, gid)
                sock.listen(LISTEN_BACKLOG)
                os.rename(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise
        except BaseException:
            sock.close()
            raise
        return sock.detach()
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"listen address must be unix:PATH or HOST:PORT, not {address!r}")
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(LISTEN_BACKLOG)
    return sock.detach()


def refuse_live_socket(path: str) -> None:
    """Raise ValueError when `path` is not a socket, or is one a server still listens on.

    Without the check a second server renames its socket over the first's,
    which keeps running, unreachable. The probe is a non-blocking connect:
    refused means a stale file (no listener), which may be replaced; the
    probed server sees one empty connection.
    """
    import socket

    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise ValueError(f"{path} exists and is not a socket")
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        result = probe.connect_ex(path)
    finally:
        probe.close()
    if result in (0, errno.EAGAIN, errno.EINPROGRESS):  # EAGAIN: listening, its queue full
        raise ValueError(f"a server is already listening on {path}")
    if result not in (errno.ECONNREFUSED, errno.ENOENT):
        raise ValueError(f"cannot tell whether a server listens on {path}: {os.strerror(result)}")


def socket_owner_ids(owner: str | None) -> tuple[int, int]:
    """(uid, gid) for `USER[:GROUP]` (names or numbers), -1 for a part not given."""
    if not owner:
        return -1, -1
    import grp
    import pwd

    user, _, group = owner.partition(":")
    try:
        uid = -1 if not user else int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
        gid = -1 if not group else int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"no such user or group in --socket-owner {owner!r}") from None
    return uid, gid
