"""Command line of ``scgi-run``: parse the arguments, then serve one connection or many.

``scgi-run [OPTIONS] DIR/`` runs the script SCRIPT_FILENAME names inside DIR;
``scgi-run [OPTIONS] SCRIPT [ARGS...]`` always runs SCRIPT with ARGS. Options
come before the positional arguments. Without a listening socket (fd 0, or
LISTEN_FDS, or --listen) it serves the one connection on fds 0 and 1, as
inetd's ``nowait`` expects; with one it serves resident on resident.Frame:
spawning each script (cgi_resident.CgiSpawner), or, with --fix-status,
forking a supervisor per connection (resident.ForkEach).
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .cgi_exec import Runner

from .cgi_env import is_variable_name, operator_environ
from .cgi_exec import CgiConfig, serve_connection, serve_handed
from .logsink import open_log
from .options import RUN, ServeOptions, UsageError, parse_options
from .paths import S_IFDIR, S_IFREG, file_type
from .reader import one_connection

__all__ = ["main", "make_config", "parse_arguments"]


def parse_arguments(argv: list[str]) -> tuple[ServeOptions, list[str]]:
    """scgi-run's options (from the table in options.py) and the positional arguments."""
    return parse_options(RUN, argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        options, positionals = parse_arguments(argv)
        if not positionals:
            raise UsageError("name a directory (ending in '/') or a script")
        config = make_config(options, positionals)
    except UsageError as stop:
        return stop.report(RUN, sys.stdout, sys.stderr)
    listen_fd = None
    if options.listen or not one_connection(0):
        from .listener import find_listener

        try:
            listen_fd = find_listener(options.listen, mode=options.socket_mode, owner=options.socket_owner)
        except (OSError, ValueError) as error:
            sys.stderr.write(f"scgi-run: cannot listen: {error}\n")
            return 1
    try:
        open_log(options.stderr)
    except OSError as error:
        from .answer import log_unavailable

        return log_unavailable(options.stderr, error, resident=listen_fd is not None)
    run: "Runner | None" = None
    if config.fix_status:
        from .status_fixup import run_supervised

        run = run_supervised
    if listen_fd is None:
        return serve_connection(config, run)
    if config.fix_status:
        # The supervisor that fixes the Status line is a process per request.
        from .resident import serve

        # No body bytes come with the header (the third argument): only pool workers read past it.
        return serve(listen_fd, lambda request, fd, _: serve_handed(config, run, request, fd), options)
    from .cgi_resident import serve as serve_spawning

    return serve_spawning(listen_fd, config, options)


def make_config(options: ServeOptions, positionals: list[str]) -> "CgiConfig":
    """The CgiConfig for these arguments; a missing DIR or SCRIPT is a UsageError."""
    target = positionals[0]
    for name in options.pass_var:
        if not is_variable_name(name):
            raise UsageError(f"--pass-var wants a variable name (letters, digits, '_'), not {name!r}")
    common: "dict[str, Any]" = {
        "operator_env": operator_environ(dict(options.env), tuple(options.pass_env)),
        "pass_vars": tuple(options.pass_var),
        "script_name": options.script_name,
        "timeout": options.timeout,
        "fix_status": options.fix_status,
        "header_timeout": options.header_timeout,
        "max_header": options.max_header,
        "stream_body": options.stream_body,
        "max_body": options.max_body,
        "body_timeout": options.body_timeout,
        "spool_dir": options.spool_dir,
    }
    if target.endswith("/"):
        if len(positionals) > 1:
            raise UsageError("directory mode takes no script arguments")
        if file_type(target) != S_IFDIR:
            raise UsageError(f"not a directory: {target!r}")
        return CgiConfig(directory=target, **common)
    if file_type(target) != S_IFREG:
        raise UsageError(f"no such script: {target!r}")
    return CgiConfig(script=target, args=tuple(positionals[1:]), **common)
