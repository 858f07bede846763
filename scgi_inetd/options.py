"""Every command-line option of every program, in one table, parsed without argparse; and the listener.

Modelled on waitress's ``Adjustments``: each option's names, the programs
that accept it, the attribute it sets, its default, the converter of its
text, its metavar and its help are one entry (a plain tuple) in ``OPTIONS``.
The parser, the ``--help`` text (scgi_inetd.usage), the man-page test and
the defaults the library falls back on all read that table, so adding an
option is one entry, and an option one program does not support is refused
by it (exit 2) instead of ignored.

`argparse` imports `re`, `gettext` and more: several milliseconds on every
request of a one-shot gateway. The help text is put together only when
``--help`` asks for it, and the table is one constant of plain tuples
(converters named by spec strings): no class of its own, no function
objects to build. Each class statement costs a one-shot request about 0.1 M
instructions (0.3%), which is also why one exception type serves every way
a command line ends.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms on every one-shot request
    from typing import Any, Sequence, TextIO

from . import __version__
from .protocol import DEFAULT_MAX_HEADER
from .reader import DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_SPOOL_DIR

__all__ = ["BOOTMENU", "CALL", "DEFAULT_SOCKET_MODE", "NEXT", "OPTIONS", "RENDER", "RUN", "SERVERS", "WSGI",
           "ServeOptions", "UsageError", "convert", "options_of", "parse_options", "parse_serve_options",
           "serve_options"]

RUN, WSGI, BOOTMENU, CALL = "scgi-run", "scgi-wsgi", "scgi-bootmenu", "scgi-call"
SERVERS = (RUN, WSGI, BOOTMENU)
#: The boot-menu subcommands that take options of their own.
NEXT, RENDER = "scgi-bootmenu next", "scgi-bootmenu render"

#: Permissions of a --listen unix: socket: the owner and its group (the web
#: server's, with --socket-owner) may connect, nobody else. Whoever can connect
#: chooses every request variable, so the umask must not decide.
DEFAULT_SOCKET_MODE = 0o660


class UsageError(Exception):
    """The command line ends the program before it does its work.

    A bad command line: `status` 2 and a one-line message for stderr. Or
    --help / --version answered: `status` 0 and the text for stdout. No
    RequestError: its `status` is an exit status, and no request is read.
    """

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status

    def report(self, program: str, out: "TextIO", err: "TextIO") -> int:
        """Write the message where it belongs (a usage error with a hint to --help); return the exit status."""
        if self.status == 0:
            out.write(str(self))
            return 0
        command = program.split()[0]
        sub = program[len(command):].strip()
        where = f"{command} CONFIG {sub} --help" if sub else f"{command} --help"
        err.write(f"{command}: {sub + ': ' if sub else ''}{self} (see '{where}')\n")
        return self.status


def convert(spec: str, name: str, value: str) -> "Any":
    """The value of option `name` given as `value`, read by the table's converter `spec`.

    Specs: "text"; "NAME=VALUE" (a pair); "mode" (octal permissions); "a|b"
    (one of those words); "int>=N", "float>=N", "float>N" (a number and its
    bound). Strings, not functions, so that the table is one constant the
    interpreter loads whole.
    """
    if spec == "text":
        return value
    if spec == "mode":
        try:
            mode = int(value, 8)
        except ValueError:
            raise UsageError(f"{name} needs an octal mode such as 0660, not {value!r}") from None
        if not 0 <= mode <= 0o777:
            raise UsageError(f"{name} must be at most 0777, not {value!r}")
        return mode
    if spec == "NAME=VALUE":
        key, equals, rest = value.partition("=")
        if not key or not equals:
            raise UsageError(f"{name} wants NAME=VALUE, not {value!r}")
        return key, rest
    kind, above, bound = spec.partition(">")
    if not above:
        if value not in spec.split("|"):
            raise UsageError(f"{name} is {' or '.join(spec.split('|'))}, not {value!r}")
        return value
    try:
        number = (int if kind == "int" else float)(value)
    except ValueError:
        raise UsageError(f"{name} needs a number, not {value!r}") from None
    inclusive = bound.startswith("=")
    minimum = float(bound.lstrip("="))
    if number < minimum or (number == minimum and not inclusive):
        bound_text = f"{'at least' if inclusive else 'greater than'} {minimum:g}"
        raise UsageError(f"{name} must be {bound_text}, not {value!r}")
    return number


# The table: (names, programs, attribute, default, converter, metavar, help).
# The converter is a spec for convert(); None makes a flag (no value; sets
# True). A default of ()
# makes an option repeatable (its values collected in a list, in order).
# Attribute names are unique across the table (ServeOptions() carries every
# default), and options are listed in the order --help shows them.
OPTIONS = (
    ("--stderr", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "stderr", None, "text", "PATH|syslog",
     "where the gateway's and the program's stderr go (default /dev/null: under inetd fd 2 is the client)"),
    ("--header-timeout", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "header_timeout", DEFAULT_HEADER_TIMEOUT,
     "float>0", "SECONDS", "refuse a request whose header is not complete in time (408)"),
    ("--max-header", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "max_header", DEFAULT_MAX_HEADER,
     "int>=16", "BYTES", "refuse a larger request header (413)"),
    ("--max-body", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "max_body", None, "int>=0", "BYTES",
     "refuse (413) a request whose CONTENT_LENGTH is larger, before reading its body (default: no limit)"),
    ("--body-timeout", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "body_timeout", DEFAULT_BODY_TIMEOUT,
     "float>0", "SECONDS", "refuse (408) a request body that stalls this long"),
    ("--spool-dir", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "spool_dir", DEFAULT_SPOOL_DIR, "text", "DIR",
     "where bodies over 1 MiB are spooled before the program answers, as unnamed files"),
    ("--listen", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "listen", None, "text", "unix:PATH|HOST:PORT",
     "serve resident on this address (also: a listening socket on fd 0, as inetd `wait` gives, "
     "or systemd's LISTEN_FDS); refused when a server already listens on PATH, a stale socket is replaced"),
    ("--socket-mode", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "socket_mode", DEFAULT_SOCKET_MODE, "mode",
     "MODE", "--listen unix: the socket's permissions, octal (default 0660)"),
    ("--socket-owner", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "socket_owner", None, "text", "USER[:GROUP]",
     "--listen unix: the socket's owner and group (needs root)"),
    ("--max-children", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "max_children", 16, "int>=1", "N",
     "resident: connections served at once"),
    ("--idle-timeout", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "idle_timeout", None, "float>=0", "SECONDS",
     "resident: exit after this long without a connection"),
    ("--grace", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "grace", 30.0, "float>=0", "SECONDS",
     "resident: on SIGTERM or SIGHUP, wait this long for running requests, then end them"),
    ("--requests-per-child", ("scgi-wsgi", "scgi-bootmenu"), "requests_per_child", 1, "int>=1", "N",
     "resident: with N > 1, --max-children workers are forked up front and each serves up to N "
     "connections before it is replaced: no fork per request, but what one request leaves in a "
     "worker's memory the next one in that worker sees"),
    ("--env", ("scgi-run",), "env", (), "NAME=VALUE", "NAME=VALUE",
     "add a variable to the script's environment (repeatable)"),
    ("--pass-env", ("scgi-run",), "pass_env", (), "text", "NAME",
     "pass a variable of scgi-run's own environment to the script (repeatable)"),
    ("--pass-var", ("scgi-run",), "pass_var", (), "text", "NAME",
     "let the request variable NAME reach the script, past the allow-list (repeatable)"),
    ("--fix-status", ("scgi-run",), "fix_status", False, None, "",
     "supervise the script: add a missing Status line"),
    ("--stream-body", ("scgi-run",), "stream_body", False, None, "",
     "leave the request body on the connection for the script to read itself (no spooling: the script "
     "must read all of it before it writes a byte, or nginx stops sending it)"),
    ("--timeout", ("scgi-run",), "timeout", None, "float>0", "SECONDS",
     "end the script and its process group after SECONDS"),
    ("--script-name", ("scgi-run", "scgi-wsgi", "scgi-bootmenu"), "script_name", None, "text", "PREFIX",
     "the mount point PREFIX (SCRIPT_NAME): the path below it is PATH_INFO, and for scgi-run DIR/ names "
     "the script when the server sends no SCRIPT_FILENAME path (Apache); requests outside it get 404"),
    ("--chdir", ("scgi-wsgi",), "chdir", None, "text", "DIR",
     "change to DIR (and import from it) before loading TARGET"),
    ("--cache", ("scgi-bootmenu",), "cache", None, "text", "PATH",
     "the compiled-config cache (default CONFIG.cache; '' for none)"),
    ("--secret-file", ("scgi-bootmenu admin",), "secret_file", None, "text", "PATH",
     "refuse requests whose BOOTMENU_ADMIN_SECRET is not this file's text"),
    ("--remote-user", ("scgi-bootmenu admin",), "remote_user", False, None, "",
     "refuse requests without a REMOTE_USER (set by the web server)"),
    ("--until-done", ("scgi-bootmenu next",), "until_done", False, None, "",
     "keep the mark until the machine fetches /done?mac=MAC, instead of for one boot"),
    ("--mac", ("scgi-bootmenu render",), "mac", None, "text", "MAC", "the machine's MAC address"),
    ("--uuid", ("scgi-bootmenu render",), "uuid", None, "text", "UUID", "its SMBIOS UUID"),
    ("--ip", ("scgi-bootmenu render",), "ip", None, "text", "ADDRESS", "its IPv4 address"),
    ("--hostname", ("scgi-bootmenu render",), "hostname", None, "text", "NAME", "its host name"),
    ("--serial", ("scgi-bootmenu render",), "serial", None, "text", "SERIAL", "its serial number"),
    ("--buildarch", ("scgi-bootmenu render",), "buildarch", None, "text", "ARCH",
     "iPXE's ${buildarch} (i386, x86_64, arm64)"),
    ("--platform", ("scgi-bootmenu render",), "platform", None, "text", "PLATFORM",
     "iPXE's ${platform} (pcbios, efi)"),
    ("--manufacturer", ("scgi-bootmenu render",), "manufacturer", None, "text", "TEXT", "its SMBIOS manufacturer"),
    ("--product", ("scgi-bootmenu render",), "product", None, "text", "TEXT", "its SMBIOS product name"),
    ("--format", ("scgi-bootmenu render",), "format", "ipxe", "ipxe|pxelinux|grub", "ipxe|pxelinux|grub",
     "the menu language to print"),
    ("--json", ("scgi-bootmenu hosts",), "json", False, None, "",
     "print the machines as JSON, as the admin API's GET /api/hosts does"),
    ("--tftp", ("scgi-bootmenu export",), "tftp", None, "text", "DIR",
     "write the PXELINUX and GRUB files every rule names into DIR, atomically"),
    ("--exec", ("scgi-call",), "command", None, "text", "COMMAND",
     "spawn COMMAND with the connection on fds 0, 1 and 2, as inetd does"),
    ("-X --request", ("scgi-call",), "method", None, "text", "METHOD", "method (default GET, POST with --data)"),
    ("-H --header", ("scgi-call",), "header", (), "text", "'NAME: VALUE'", "add a request header (repeatable)"),
    ("--data", ("scgi-call",), "data", None, "text", "STRING|@FILE|@-", "the request body"),
    ("--param", ("scgi-call",), "param", (), "text", "NAME=VALUE",
     "set or override an SCGI variable; an empty VALUE removes it (repeatable)"),
    ("--timeout", ("scgi-call",), "call_timeout", 30.0, "float>0", "SECONDS", "give up after SECONDS for the whole exchange, connecting included (exit 3)"),
    ("--body-only", ("scgi-call",), "body_only", False, None, "", "print only the response body"),
)


class ServeOptions:
    """The parsed options of one command line: every table default, and what was given.

    Made without a command line (``ServeOptions()``) it is the set of
    defaults the library runs with when a caller passes no options.
    """

    if TYPE_CHECKING:  # one attribute per entry of OPTIONS, set on the class below
        stderr: str | None
        header_timeout: float
        max_header: int
        max_body: int | None
        body_timeout: float
        spool_dir: str
        listen: str | None
        socket_mode: int
        socket_owner: str | None
        max_children: int
        idle_timeout: float | None
        grace: float
        requests_per_child: int
        env: list[tuple[str, str]]
        pass_env: list[str]
        pass_var: list[str]
        fix_status: bool
        stream_body: bool
        timeout: float | None
        script_name: str | None
        chdir: str | None
        cache: str | None
        secret_file: str | None
        remote_user: bool
        until_done: bool
        mac: str | None
        uuid: str | None
        ip: str | None
        hostname: str | None
        serial: str | None
        buildarch: str | None
        platform: str | None
        manufacturer: str | None
        product: str | None
        format: str
        json: bool
        tftp: str | None
        command: str | None
        method: str | None
        header: list[str]
        data: str | None
        param: list[str]
        call_timeout: float
        body_only: bool

    def __init__(self) -> None:
        for _, _, attribute, default, *_ in OPTIONS:
            if default == ():
                setattr(self, attribute, [])


for _entry in OPTIONS:
    setattr(ServeOptions, _entry[2], _entry[3])
del _entry


def serve_options(**settings: "Any") -> ServeOptions:
    """The defaults, with `settings` (attribute names from OPTIONS: max_header=..., listen=...) set.

    How a library caller gives serving options without a command line; an
    unknown name is a TypeError, as an unknown keyword argument is.
    """
    options = ServeOptions()
    for name, value in settings.items():
        if not hasattr(ServeOptions, name):
            raise TypeError(f"unknown serving option {name!r}")
        setattr(options, name, value)
    return options


def options_of(program: str) -> "list[tuple[Any, ...]]":
    """The table's entries `program` accepts, in table order."""
    return [entry for entry in OPTIONS if program in entry[1]]


def parse_options(program: str, argv: "Sequence[str]", options: "ServeOptions | None" = None, *,
                  intermixed: bool = False) -> "tuple[ServeOptions, list[str]]":
    """Set `program`'s options from `argv` on `options` (a new ServeOptions by default); return it and the rest.

    Scanning stops at the first argument not starting with '-' (which, with
    the rest, is returned), or after '--'; with `intermixed` positional
    arguments are collected and scanning goes on. -h/--help and --version
    raise UsageError with status 0 and the text to print; an option
    `program` does not accept, a missing or a bad value, with status 2.
    """
    options = ServeOptions() if options is None else options
    positionals: list[str] = []
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            positionals.extend(args[index:])
            break
        if not arg.startswith("-") or arg == "-":
            if not intermixed:
                positionals.extend(args[index - 1:])
                break
            positionals.append(arg)
            continue
        if arg in ("-h", "--help"):
            from .usage import help_text  # only now: the help is not paid for by a request

            raise UsageError(help_text(program, options_of(program)), 0)
        if arg == "--version":
            raise UsageError(f"{program.split()[0]} {__version__}\n", 0)
        name, equals, value = arg.partition("=")
        _, _, attribute, default, spec, *_ = _lookup(program, name)
        if spec is None:
            if equals:
                raise UsageError(f"{name} takes no value")
            setattr(options, attribute, True)
            continue
        if not equals:
            if index == len(args):
                raise UsageError(f"{name} needs a value")
            value = args[index]
            index += 1
        converted = convert(spec, name, value)
        if default == ():
            converted = [*getattr(options, attribute), converted]
        setattr(options, attribute, converted)
    return options, positionals


def _lookup(program: str, name: str) -> "tuple[Any, ...]":
    """The entry for option `name` of `program`; a UsageError saying why there is none."""
    other = None
    for entry in OPTIONS:
        if name in entry[0].split():
            if program in entry[1]:
                return entry
            other = entry
    if other is not None:
        raise UsageError(f"{name} is not an option of {program}")
    raise UsageError(f"unknown option {name!r}")


def parse_serve_options(argv: "Sequence[str]", program: str = WSGI) -> "tuple[ServeOptions, list[str]]":
    """The options of `program` at the front of `argv`, and the rest."""
    return parse_options(program, argv)
