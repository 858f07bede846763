"""The serving options every front-end shares, parsed without argparse, and the listener they name.

`argparse` imports `re`, `gettext` and more: several milliseconds on every
request of a one-shot gateway. These few options do not need it.
"""

import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms on every one-shot request
    from typing import Sequence

from .protocol import DEFAULT_MAX_HEADER
from .reader import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_SPOOL_DIR

__all__ = ["SERVE_OPTIONS", "SERVE_OPTIONS_HELP", "ServeOptions", "UsageError", "find_listener",
           "parse_serve_options", "take_options", "text_value"]

SERVE_OPTIONS_HELP = """serving options:
  --stderr PATH|syslog   where the gateway's and the program's stderr go (default /dev/null)
  --listen unix:PATH|HOST:PORT
                         serve resident on this address (also: a listening socket on
                         fd 0, as inetd `wait` gives, or systemd's LISTEN_FDS)
  --max-children N       resident: connections served at once (default 16)
  --idle-timeout SECONDS resident: exit after this long without a connection
  --grace SECONDS        resident: on SIGTERM, wait this long for running requests (default 30)
  --requests-per-child N resident: with N > 1, --max-children workers are forked up front
                         and each serves up to N connections before it is replaced: no
                         fork per request, but what one request leaves in a worker's
                         memory (module globals, caches, open files) the next one in
                         that worker sees. Default 1: a fresh child per connection.
  --header-timeout SECONDS
                         refuse a request whose header is not complete in time (default 30)
  --max-header BYTES     refuse a larger request header (default 262144)
  --max-body BYTES       refuse (413) a request whose CONTENT_LENGTH is larger, before
                         reading its body (default: no limit)
  --body-timeout SECONDS refuse (408) a request body that stalls this long (default 30)
  --spool-dir DIR        where bodies over 1 MiB are spooled before the program answers,
                         as unnamed files (default /var/tmp)"""


class UsageError(Exception):
    """A command line that cannot be used; the message says why."""


class ServeOptions:
    """Where logs go, how requests are read, and how resident mode behaves."""

    __slots__ = ("stderr", "listen", "max_children", "idle_timeout", "grace", "requests_per_child",
                 "header_timeout", "max_header", "max_body", "body_timeout", "spool_dir")

    def __init__(self) -> None:
        self.stderr: str | None = None
        self.listen: str | None = None
        self.max_children = 16
        self.idle_timeout: float | None = None
        self.grace = 30.0
        self.requests_per_child = 1
        self.header_timeout = DEFAULT_HEADER_TIMEOUT
        self.max_header = DEFAULT_MAX_HEADER
        self.max_body: int | None = None
        self.body_timeout = DEFAULT_BODY_TIMEOUT
        self.spool_dir = DEFAULT_SPOOL_DIR


def _number(kind: type, minimum: float):
    def convert(name: str, text: str):
        try:
            value = kind(text)
        except ValueError:
            raise UsageError(f"{name} needs a number, not {text!r}") from None
        if value < minimum:
            raise UsageError(f"{name} must be at least {minimum}")
        return value
    return convert


def text_value(name: str, text: str) -> str:
    """Converter for an option whose value is any string."""
    return text


# Option name -> (ServeOptions attribute, converter). A front-end with options of
# its own subclasses ServeOptions and passes {**SERVE_OPTIONS, **its own} to
# take_options, so one pass parses both.
SERVE_OPTIONS = {
    "--stderr": ("stderr", text_value),
    "--listen": ("listen", text_value),
    "--max-children": ("max_children", _number(int, 1)),
    "--idle-timeout": ("idle_timeout", _number(float, 0)),
    "--grace": ("grace", _number(float, 0)),
    "--requests-per-child": ("requests_per_child", _number(int, 1)),
    "--header-timeout": ("header_timeout", _number(float, 0.001)),
    "--max-header": ("max_header", _number(int, 16)),
    "--max-body": ("max_body", _number(int, 0)),
    "--body-timeout": ("body_timeout", _number(float, 0.001)),
    "--spool-dir": ("spool_dir", text_value),
}


def take_options(argv: "Sequence[str]", known: dict, target: object, flags: "Sequence[str]" = ()) -> list[str]:
    """Move the options named in `known` (name -> (attribute, converter)) onto `target`.

    Options come before positional arguments: scanning stops at the first
    argument not starting with '-' or after '--'. Options not in `known` or
    `flags` are kept, in order, for the caller's own parser. A flag in `flags`
    sets its attribute (dashes to underscores) to True; a repeated option whose
    attribute holds a list is appended to.
    """
    rest: list[str] = []
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            rest.extend(args[index:])
            break
        name, equals, value = arg.partition("=")
        if name in flags and not equals:
            setattr(target, name[2:].replace("-", "_"), True)
        elif name in known:
            if not equals:
                index += 1
                if index == len(args):
                    raise UsageError(f"{name} needs a value")
                value = args[index]
            attribute, convert = known[name]
            current = getattr(target, attribute)
            if isinstance(current, list):
                current.append(convert(name, value))
            else:
                setattr(target, attribute, convert(name, value))
        else:
            rest.append(arg)
        index += 1
    return rest


def parse_serve_options(argv: "Sequence[str]") -> tuple[ServeOptions, list[str]]:
    """Pull the shared serving options out of `argv`; return them and the rest."""
    options = ServeOptions()
    return options, take_options(argv, SERVE_OPTIONS, options)


def find_listener(listen: str | None, stdin: int = 0) -> int | None:
    """The listening socket to serve in resident mode, or None to serve the one connection on `stdin`.

    `listen` (--listen) is bound; otherwise scgi_inetd.resident looks for a
    socket the super-server passed (LISTEN_FDS, or a listening socket on
    `stdin` from inetd `wait`). That module and the _socket its check needs
    would cost every one-shot request about as much as the gateway itself,
    so the usual inetd `nowait` case is settled first: a connected socket is
    writable, a listening socket never is. Anything else gets the exact check.
    """
    if listen:
        from .resident import bind_listener

        return bind_listener(listen)
    if "LISTEN_PID" not in os.environ and _writable(stdin):
        return None
    from .resident import listener_from_environment

    return listener_from_environment(stdin)


def _writable(fd: int) -> bool:
    try:
        return bool(select.select([], [fd], [], 0)[1])
    except (OSError, ValueError):
        return False
