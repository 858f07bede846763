"""Command line of ``scgi-run``: parse the arguments, then serve one connection or many.

``scgi-run [OPTIONS] DIR/`` runs the script SCRIPT_FILENAME names inside DIR;
``scgi-run [OPTIONS] SCRIPT [ARGS...]`` always runs SCRIPT with ARGS. Options
come before the positional arguments. Without a listening socket (fd 0, or
LISTEN_FDS, or --listen) it serves the one connection on fds 0 and 1, as
inetd's ``nowait`` expects; with one it serves resident: reading each
header itself and spawning the script (cgi_resident), or, with
--fix-status, forking a supervisor per connection (resident.serve).
"""

import os
import sys

from .cgi_env import allow_request_variables, is_variable_name, operator_environ
from .cgi_exec import CgiConfig, serve_connection
from .logsink import open_log
from .options import (SERVE_OPTIONS, SERVE_OPTIONS_HELP, ServeOptions, UsageError, find_listener,
                      take_options, text_value)

USAGE = f"""\
usage: scgi-run [OPTIONS] DIR/              run the script SCRIPT_FILENAME names, inside DIR
       scgi-run [OPTIONS] SCRIPT [ARGS...]  run SCRIPT with ARGS, whatever the request names
options:
  --env NAME=VALUE       add a variable to the script's environment (repeatable)
  --pass-env NAME        pass a variable of scgi-run's own environment (repeatable)
  --pass-var NAME        let the request variable NAME reach the script, beyond the CGI
                         variables and HTTP_* (repeatable; e.g. REMOTE_USER, AUTH_TYPE)
  --fix-status           supervise the script: add a missing Status line
  --stream-body          leave the request body on the connection for the script to read
                         itself (no spooling: the script must read all of it before it
                         writes a byte, or nginx stops sending it)
  --timeout SECONDS      end the script and its process group after SECONDS
{SERVE_OPTIONS_HELP}
"""


class CgiOptions(ServeOptions):
    """The shared serving options and scgi-run's own."""

    __slots__ = ("env", "pass_env", "pass_var", "fix_status", "stream_body", "timeout")

    def __init__(self) -> None:
        super().__init__()
        self.env: list[tuple[str, str]] = []
        self.pass_env: list[str] = []
        self.pass_var: list[str] = []
        self.fix_status = False
        self.stream_body = False
        self.timeout: float | None = None


def _assignment(name: str, text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not key or not equals:
        raise UsageError(f"{name} wants NAME=VALUE, not {text!r}")
    return key, value


def _variable_name(name: str, text: str) -> str:
    if not is_variable_name(text):
        raise UsageError(f"{name} wants a variable name (letters, digits, '_'), not {text!r}")
    return text


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name} needs a number, not {text!r}") from None
    if not value > 0:
        raise UsageError(f"{name} must be positive, not {text!r}")
    return value


_CGI = {
    "--env": ("env", _assignment),
    "--pass-env": ("pass_env", text_value),
    "--pass-var": ("pass_var", _variable_name),
    "--timeout": ("timeout", _seconds),
}


_FLAGS = ("--fix-status", "--stream-body")


def parse_arguments(argv: list[str]) -> tuple[CgiOptions, list[str]]:
    """The options (shared and scgi-run's own) and the positional arguments."""
    options = CgiOptions()
    rest = take_options(argv, {**SERVE_OPTIONS, **_CGI}, options, flags=_FLAGS)
    if rest and rest[0] == "--":
        rest = rest[1:]
    elif rest and rest[0].startswith("-") and rest[0] != "-":
        raise UsageError(f"unknown option {rest[0]!r}")
    return options, rest


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        options, positionals = parse_arguments(argv)
        if not positionals:
            raise UsageError("name a directory (ending in '/') or a script")
        config = make_config(options, positionals)
    except UsageError as error:
        sys.stderr.write(f"scgi-run: {error}\n{USAGE}")
        return 2
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
    run = None
    if config.fix_status:
        from .status_fixup import run_supervised as run
    if listen_fd is None:
        return serve_connection(config, run)
    limits = {"max_children": options.max_children, "idle_timeout": options.idle_timeout,
              "grace": options.grace}
    if config.fix_status:
        # The supervisor that fixes the Status line is a process per request.
        from .resident import serve

        return serve(listen_fd, lambda: serve_connection(config, run), **limits)
    from .cgi_resident import serve as serve_spawning

    return serve_spawning(listen_fd, config, **limits)


def make_config(options: CgiOptions, positionals: list[str]) -> "CgiConfig":
    """The CgiConfig for these arguments; a missing DIR or SCRIPT is a UsageError."""
    target = positionals[0]
    allow_request_variables(options.pass_var)
    common = {
        "operator_env": operator_environ(dict(options.env), tuple(options.pass_env)),
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
        if not os.path.isdir(target):
            raise UsageError(f"not a directory: {target!r}")
        return CgiConfig(directory=target, **common)
    if not os.path.isfile(target):
        raise UsageError(f"no such script: {target!r}")
    return CgiConfig(script=target, args=tuple(positionals[1:]), **common)
