"""The one-shot CGI path: read the SCGI header, build the environment, exec the script.

Strategy: the shim does as little as possible and then gets out of the way.
The request header is read exactly, the script is resolved and confined,
the body is spooled (reader.spool_body says why: nginx stops sending it once
the script answers) and put on the script's stdin, and the process
*becomes* the script with execve: the response flows straight into the
socket, with no process in between. Without a body, stdin is /dev/null and
nothing is spooled. ``--stream-body`` leaves the body on the socket for the
script to read itself, with no copy at all. Only ``--fix-status`` keeps a
supervisor (see status_fixup).

This module runs on every request, so it imports only built-in modules
(posix, _signal): `os` costs 5 M instructions, a fifth of a request, to an
interpreter started without site (README, "Speed"). The rest is imported
where an error or an option needs it (process_group for --timeout).
"""

import posix
import _signal

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds on every one-shot request
    from typing import Callable

    from .script_resolver import ScriptResolver

    Runner = Callable[..., int]

from .cgi_env import REQUEST_VARIABLES, Script, build_environ, exec_environ, operator_environ
from .logsink import log_line
from .paths import absolute
from .protocol import (DEFAULT_MAX_HEADER, ProtocolError, RequestError, hint_whole_path, request_path,
                       sends_whole_path, split_mount)
from .reader import (DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_SPOOL_DIR, BodyError,
                     check_body_size, read_request, spool_body)

__all__ = ["RESET_SIGNALS", "CgiConfig", "body_on_stdin", "content_length", "enter_own_process_group",
           "enter_script_directory", "exec_script", "find_script", "not_started", "refuse", "refuse_to_run",
           "restore_signals", "script_invocation", "serve_connection", "serve_handed"]

#: Signals set back to their default action before exec: Python ignores SIGPIPE
#: and SIGXFSZ, the resident loop handles others, and ignored dispositions
#: survive execve (a script with SIGPIPE ignored misbehaves in pipelines).
RESET_SIGNALS = tuple(
    getattr(_signal, name)
    for name in ("SIGPIPE", "SIGXFSZ", "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT",
                 "SIGCHLD", "SIGALRM", "SIGUSR1", "SIGUSR2")
    if hasattr(_signal, name)
)


class CgiConfig:
    """What one connection needs to know: the script (or directory) and the options."""

    __slots__ = ("resolver", "script", "script_name", "args", "operator_env", "allowed", "timeout",
                 "fix_status", "max_header", "header_timeout",
                 "stream_body", "max_body", "body_timeout", "spool_dir")

    def __init__(
        self,
        *,
        directory: str | None = None,
        script: str | None = None,
        args: tuple[str, ...] = (),
        script_name: str | None = None,
        operator_env: dict[str, str] | None = None,
        pass_vars: "tuple[str, ...] | list[str]" = (),
        timeout: float | None = None,
        fix_status: bool = False,
        max_header: int = DEFAULT_MAX_HEADER,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        stream_body: bool = False,
        max_body: int | None = None,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        spool_dir: str = DEFAULT_SPOOL_DIR,
    ) -> None:
        if (directory is None) == (script is None):
            raise ValueError("give exactly one of directory and script")
        self.resolver: "ScriptResolver | None" = None
        self.script: Script | None = None
        if directory is not None:
            from .script_resolver import ScriptResolver  # directory mode only

            self.resolver = ScriptResolver(directory)
        elif script is not None:
            self.script = Script(absolute(script))
        self.args = tuple(args)
        self.script_name = script_name  # the mount point (--script-name), or None
        self.operator_env = operator_environ() if operator_env is None else dict(operator_env)
        self.allowed = REQUEST_VARIABLES | frozenset(pass_vars)
        self.timeout = timeout
        self.fix_status = fix_status
        self.max_header = max_header
        self.header_timeout = header_timeout
        self.stream_body = stream_body
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.spool_dir = spool_dir

    @property
    def root(self) -> str | None:
        """DIR's real path in directory mode, below which the exec finds the checked script again."""
        return None if self.resolver is None else self.resolver.real_directory


def serve_handed(config: CgiConfig, run: "Runner | None", request: dict[str, str], fd: int) -> int:
    """serve_connection for a connection a resident loop hands on, on ``fd``, its header read.

    The connection goes on fds 0 and 1 first: they are the script's stdin
    and stdout, as in one-shot mode.
    """
    posix.dup2(fd, 0)
    posix.dup2(fd, 1)
    return serve_connection(config, run, request)


def serve_connection(config: CgiConfig, run: "Runner | None" = None,
                     request: "dict[str, str] | None" = None) -> int:
    """Serve the connection on fds 0 and 1 with ``run`` (exec_script unless given).

    The caller picks the runner: exec_script, which does not return when the
    script starts, or status_fixup.run_supervised for --fix-status.
    ``request``, the header a resident loop has read already, is not read again.
    """
    try:
        if request is None:
            request = read_request(0, max_header=config.max_header, timeout=config.header_timeout)
    except ProtocolError as error:
        refuse(error.status, error.message, unread=None)
        return 1
    length = content_length(request)
    try:
        check_body_size(length, config.max_body)
    except BodyError as error:
        from .answer import DISCARD_LIMIT

        refuse(error.status, error.message, unread=min(error.left, DISCARD_LIMIT))
        return 1
    try:
        script = find_script(config, request)
    except RequestError as error:  # ScriptError among them
        refuse(error.status, error.message, error.detail, unread=length)
        return 1
    argv, environ = script_invocation(config, request, script)
    unread = length
    if not config.stream_body:
        try:
            body_on_stdin(length, config)
        except BodyError as error:
            refuse(error.status, error.message, error.detail, unread=error.left)
            return 1
        unread = 0
    return (run or exec_script)(argv, environ, timeout=config.timeout, unread=unread, root=config.root)


def find_script(config: CgiConfig, request: dict[str, str]) -> Script:
    """The script this request runs, with its SCRIPT_NAME and PATH_INFO; a ProtocolError when none.

    A SCRIPT_FILENAME that is a file path (nginx's scgi_param, lighttpd)
    names it inside DIR. Without one (Apache sends a proxy: URL), the path
    below the --script-name mount point does: walked inside DIR, or in
    single-script mode all of it PATH_INFO. Nothing is imported here for
    a fixed script: it runs on every one-shot request.
    """
    filename = request.get("SCRIPT_FILENAME", "")
    if config.resolver is not None and filename and not sends_whole_path(request):
        return config.resolver.resolve(filename)
    mount = config.script_name
    if mount is None:
        if sends_whole_path(request):
            hint_whole_path(log_line)
        if config.script is not None:
            return config.script
        raise ProtocolError(400, "no script named: the server sent no SCRIPT_FILENAME path",
                            "give --script-name with the mount point to find scripts from the URL")
    rest = split_mount(request_path(request) or "", mount)
    if config.script is not None:
        return Script(config.script.path, rest, script_name=mount.rstrip("/"))
    assert config.resolver is not None  # one of the two is set
    return config.resolver.resolve_path(rest, mount)


def body_on_stdin(length: int, config: CgiConfig) -> None:
    """Put the whole request body on fd 0 (a spool file, or /dev/null without a body).

    fd 1 stays the connection. Raises BodyError (400, 408, 503) with the
    body not taken: nothing must run on a partial body.
    """
    if length:
        source = spool_body(0, length, spool_dir=config.spool_dir, timeout=config.body_timeout)
    else:
        source = posix.open("/dev/null", posix.O_RDONLY)
    posix.dup2(source, 0)
    posix.close(source)


def script_invocation(
    config: CgiConfig, request: dict[str, str], script: Script
) -> tuple[list[str], dict[bytes, bytes]]:
    """The argv and the execve environment ``script`` runs with for ``request``.

    One place for both the one-shot path and the resident loop (cgi_resident).
    """
    argv = [script.path, *config.args]
    return argv, exec_environ(build_environ(request, script, config.operator_env, config.allowed))


def exec_script(
    argv: list[str], environ: dict[bytes, bytes], *, timeout: float | None, unread: int = 0,
    root: str | None = None,
) -> int:
    """Become the script: own process group, cwd its folder, default signals, execve.

    With a timeout, a detached watchdog ends the whole process group (a
    shell's ``sleep`` child holds the socket as long as the script does),
    and an interval timer set before execve, which survives it, ends the
    script itself even if the watchdog could not be started. ``root`` is
    DIR's real path in directory mode (see enter_script_directory); the
    folder is entered last, so that only execve follows its final check.
    """
    try:
        enter_own_process_group()
        if timeout is not None:
            from .process_group import KILL_GRACE, start_watchdog

            start_watchdog(posix.getpid(), timeout, KILL_GRACE)
        restore_signals()
        if timeout is not None:
            _signal.setitimer(_signal.ITIMER_REAL, timeout + KILL_GRACE)
        posix.execve(enter_script_directory(argv[0], root), argv, environ)
    except (OSError, ProtocolError) as error:
        if timeout is not None:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
        refuse_to_run(error, argv[0], unread)
    return 1


def enter_script_directory(path: str, root: str | None) -> str:
    """Change into the script's folder; the name to exec it by.

    A fixed script (``root`` None) is the operator's: its path is used as
    given. A script found in DIR was checked by its real path, and walking
    that path again at exec would follow a symlink swapped in since:
    script_resolver.enter_checked gets there by descriptors instead and
    gives the last component. ScriptError (403, 404) when it changed.
    """
    if root is None:
        posix.chdir(path.rpartition("/")[0] or "/")  # path is absolute (CgiConfig)
        return path
    from .script_resolver import enter_checked  # directory mode only

    return enter_checked(path, root)


def refuse_to_run(error: "OSError | ProtocolError", path: str, unread: int) -> None:
    """Answer a script that did not start (see not_started)."""
    failure = not_started(error, path)
    refuse(failure.status, failure.message, failure.detail, unread=unread)


def not_started(error: "OSError | ProtocolError", path: str) -> RequestError:
    """What to answer for a script that did not start: its status when it changed since the check, else 500."""
    if isinstance(error, ProtocolError):
        return RequestError(error.status, error.message, f"{path!r}: {error.detail}")
    return RequestError(500, "cannot execute the script", f"{path!r}: {error.strerror}")


def enter_own_process_group() -> None:
    """Make this process a group leader so a timeout can end the script and its children.

    Under inetd the handler is already a session (and so group) leader, and
    setpgid then fails with EPERM: that is fine.
    """
    if posix.getpgrp() != posix.getpid():
        try:
            posix.setpgid(0, 0)
        except PermissionError:
            pass


def restore_signals() -> None:
    """Default dispositions and an empty signal mask, as a CGI script expects."""
    for signum in RESET_SIGNALS:
        _signal.signal(signum, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def refuse(status: int, message: str, detail: str = "", *, unread: "int | None" = 0) -> None:
    """answer.refuse on fds 0 and 1, imported only when a request is refused: answer is no part of a served request."""
    from .answer import refuse as answer_refuse

    answer_refuse(status, message, detail, unread=unread)


def content_length(request: dict[str, str]) -> int:
    value = request.get("CONTENT_LENGTH", "0")
    return int(value) if value.isdigit() else 0
