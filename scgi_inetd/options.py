"""Every command-line option of every program, in one table, parsed without argparse; and the listener.

Modelled on waitress's ``Adjustments``: each option's names, the attribute
it sets, its default, the converter of its text, its help, and the programs
that accept it are one ``Option`` entry in ``OPTIONS``. The parser, the
``--help`` text, the man-page test and the defaults the library falls back
on all read that table, so adding an option is one entry, and an option one
program does not support is refused by it (exit 2) instead of ignored.

`argparse` imports `re`, `gettext` and more: several milliseconds on every
request of a one-shot gateway. The help text is put together only when
``--help`` asks for it.
"""

import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms on every one-shot request
    from typing import Any, Callable, Sequence, TextIO

from . import __version__
from .protocol import DEFAULT_MAX_HEADER
from .reader import DEFAULT_HEADER_TIMEOUT

__all__ = ["OPTIONS", "PROGRAMS", "CommandLineExit", "InfoRequest", "Option", "ServeOptions", "UsageError",
           "find_listener", "help_text", "options_of", "parse_options", "parse_serve_options"]

RUN, WSGI, BOOTMENU, CALL = "scgi-run", "scgi-wsgi", "scgi-bootmenu", "scgi-call"
SERVERS = (RUN, WSGI, BOOTMENU)
#: The boot-menu subcommands that take options of their own.
NEXT, RENDER = "scgi-bootmenu next", "scgi-bootmenu render"


class CommandLineExit(Exception):
    """Ends a program before it does its work: a usage error, or --help / --version answered."""

    def report(self, program: str, out: "TextIO", err: "TextIO") -> int:
        raise NotImplementedError


class UsageError(CommandLineExit):
    """A command line that cannot be used; the message says why, in one line."""

    def report(self, program: str, out: "TextIO", err: "TextIO") -> int:
        """One line on `err` naming the problem and where help is; exit status 2."""
        command = program.split()[0]
        sub = program[len(command):].strip()
        where = f"{command} CONFIG {sub} --help" if sub else f"{command} --help"
        err.write(f"{command}: {sub + ': ' if sub else ''}{self} (see '{where}')\n")
        return 2


class InfoRequest(CommandLineExit):
    """--help or --version: the text to print on stdout, exit status 0."""

    def report(self, program: str, out: "TextIO", err: "TextIO") -> int:
        out.write(str(self))
        return 0


class Option:
    """One option: its names, the attribute it sets, its default, converter, help, and who accepts it.

    A `convert` of None makes a flag (no value; sets True). A repeatable
    option collects its values in a list, in order.
    """

    __slots__ = ("names", "programs", "attribute", "default", "convert", "metavar", "help", "repeatable")

    def __init__(self, names: "str | tuple[str, ...]", programs: "str | tuple[str, ...]", attribute: str,
                 default: "Any" = None, convert: "Callable[[str, str], Any] | None" = None, metavar: str = "",
                 help: str = "", repeatable: bool = False) -> None:
        self.names = (names,) if isinstance(names, str) else names
        self.programs = (programs,) if isinstance(programs, str) else programs
        self.attribute = attribute
        self.default = default
        self.convert = convert
        self.metavar = metavar
        self.help = help
        self.repeatable = repeatable


def number(kind: type, minimum: float, *, above: bool = False) -> "Callable[[str, str], Any]":
    """Converter for a number of `kind` no less than (or, with `above`, greater than) `minimum`."""
    def convert(name: str, text: str) -> "Any":
        try:
            value = kind(text)
        except ValueError:
            raise UsageError(f"{name} needs a number, not {text!r}") from None
        if value < minimum or (above and value == minimum):
            raise UsageError(f"{name} must be {'greater than' if above else 'at least'} {minimum:g}, not {text!r}")
        return value
    return convert


def text(name: str, value: str) -> str:
    """Converter for an option whose value is any string."""
    return value


def assignment(name: str, value: str) -> tuple[str, str]:
    """Converter for NAME=VALUE."""
    key, equals, rest = value.partition("=")
    if not key or not equals:
        raise UsageError(f"{name} wants NAME=VALUE, not {value!r}")
    return key, rest


def choice(*allowed: str) -> "Callable[[str, str], str]":
    """Converter for one of `allowed`."""
    def convert(name: str, value: str) -> str:
        if value not in allowed:
            raise UsageError(f"{name} is {' or '.join(allowed)}, not {value!r}")
        return value
    return convert


# The table. Attribute names are unique across it (ServeOptions() carries
# every default), and options are listed in the order --help shows them.
OPTIONS = (
    Option("--stderr", SERVERS, "stderr", None, text, "PATH|syslog",
           "where the gateway's and the program's stderr go (default /dev/null: under inetd fd 2 is the client)"),
    Option("--header-timeout", SERVERS, "header_timeout", DEFAULT_HEADER_TIMEOUT, number(float, 0, above=True),
           "SECONDS", "refuse a request whose header is not complete in time (408)"),
    Option("--max-header", SERVERS, "max_header", DEFAULT_MAX_HEADER, number(int, 16), "BYTES",
           "refuse a larger request header (413)"),
    Option("--listen", SERVERS, "listen", None, text, "unix:PATH|HOST:PORT",
           "serve resident on this address (also: a listening socket on fd 0, as inetd `wait` gives, "
           "or systemd's LISTEN_FDS)"),
    Option("--max-children", SERVERS, "max_children", 16, number(int, 1), "N",
           "resident: connections served at once"),
    Option("--idle-timeout", SERVERS, "idle_timeout", None, number(float, 0), "SECONDS",
           "resident: exit after this long without a connection"),
    Option("--grace", SERVERS, "grace", 30.0, number(float, 0), "SECONDS",
           "resident: on SIGTERM, wait this long for running requests, then end them"),
    Option("--requests-per-child", (WSGI, BOOTMENU), "requests_per_child", 1, number(int, 1), "N",
           "resident: with N > 1, --max-children workers are forked up front and each serves up to N "
           "connections before it is replaced: no fork per request, but what one request leaves in a "
           "worker's memory the next one in that worker sees"),
    Option("--env", RUN, "env", (), assignment, "NAME=VALUE",
           "add a variable to the script's environment (repeatable)", repeatable=True),
    Option("--pass-env", RUN, "pass_env", (), text, "NAME",
           "pass a variable of scgi-run's own environment to the script (repeatable)", repeatable=True),
    Option("--fix-status", RUN, "fix_status", False, None, "",
           "supervise the script: add a missing Status line, drain an unread request body"),
    Option("--timeout", RUN, "timeout", None, number(float, 0, above=True), "SECONDS",
           "end the script and its process group after SECONDS"),
    Option("--script-name", (WSGI, BOOTMENU), "script_name", None, text, "PREFIX",
           "mount the app under PREFIX (SCRIPT_NAME); requests outside it get 404"),
    Option("--chdir", WSGI, "chdir", None, text, "DIR", "change to DIR (and import from it) before loading TARGET"),
    Option("--cache", BOOTMENU, "cache", None, text, "PATH",
           "the compiled-config cache (default CONFIG.cache; '' for none)"),
    Option("--until-done", NEXT, "until_done", False, None, "",
           "keep the mark until the machine fetches /done?mac=MAC, instead of for one boot"),
    Option("--mac", RENDER, "mac", None, text, "MAC", "the machine's MAC address"),
    Option("--uuid", RENDER, "uuid", None, text, "UUID", "its SMBIOS UUID"),
    Option("--ip", RENDER, "ip", None, text, "ADDRESS", "its IPv4 address"),
    Option("--hostname", RENDER, "hostname", None, text, "NAME", "its host name"),
    Option("--serial", RENDER, "serial", None, text, "SERIAL", "its serial number"),
    Option("--buildarch", RENDER, "buildarch", None, text, "ARCH", "iPXE's ${buildarch} (i386, x86_64, arm64)"),
    Option("--platform", RENDER, "platform", None, text, "PLATFORM", "iPXE's ${platform} (pcbios, efi)"),
    Option("--manufacturer", RENDER, "manufacturer", None, text, "TEXT", "its SMBIOS manufacturer"),
    Option("--product", RENDER, "product", None, text, "TEXT", "its SMBIOS product name"),
    Option("--format", RENDER, "format", "ipxe", choice("ipxe", "pxelinux"), "ipxe|pxelinux",
           "the menu language to print"),
    Option("--exec", CALL, "command", None, text, "COMMAND",
           "spawn COMMAND with the connection on fds 0, 1 and 2, as inetd does"),
    Option(("-X", "--request"), CALL, "method", None, text, "METHOD", "method (default GET, POST with --data)"),
    Option(("-H", "--header"), CALL, "header", (), text, "'NAME: VALUE'", "add a request header (repeatable)",
           repeatable=True),
    Option("--data", CALL, "data", None, text, "STRING|@FILE|@-", "the request body"),
    Option("--param", CALL, "param", (), text, "NAME=VALUE",
           "set or override an SCGI variable; an empty VALUE removes it (repeatable)", repeatable=True),
    Option("--timeout", CALL, "call_timeout", 30.0, number(float, 0, above=True), "SECONDS",
           "give up on the server after SECONDS"),
    Option("--body-only", CALL, "body_only", False, None, "", "print only the response body"),
)

# Usage lines and a description for each program and subcommand, for --help.
PROGRAMS = {
    RUN: ("scgi-run [OPTIONS] DIR/              run the script SCRIPT_FILENAME names, inside DIR\n"
          "scgi-run [OPTIONS] SCRIPT [ARGS...]  run SCRIPT with ARGS, whatever the request names",
          "Run a CGI script for the SCGI connection on fds 0 and 1 (inetd nowait), or for each\n"
          "connection on a listening socket (inetd wait, systemd Accept=no, --listen).\n"
          "Options come before DIR/ or SCRIPT."),
    WSGI: ("scgi-wsgi [OPTIONS] TARGET [OPTIONS]",
           "Serve the WSGI app TARGET on the SCGI connection on fds 0 and 1 (inetd nowait), or on\n"
           "a listening socket (inetd wait, systemd Accept=no, --listen).\n"
           "TARGET: package.module:callable or path/to/file.py:callable\n"
           "(the callable defaults to `application`, then `app`)."),
    BOOTMENU: ("scgi-bootmenu [OPTIONS] CONFIG [OPTIONS]     serve the boot menu (one-shot or resident)\n"
               "scgi-bootmenu [--cache PATH] CONFIG check    validate; exit 1 on errors\n"
               "scgi-bootmenu CONFIG init                    create the state database\n"
               "scgi-bootmenu CONFIG next MAC ENTRY [--until-done]\n"
               "                                             mark MAC's next boot\n"
               "scgi-bootmenu CONFIG done MAC                clear MAC's mark\n"
               "scgi-bootmenu CONFIG hosts                   machines seen, and marks\n"
               "scgi-bootmenu CONFIG render --mac MAC [OPTIONS]\n"
               "                                             print the menu a machine would get",
               "Serve per-machine iPXE and PXELINUX boot menus from CONFIG, or manage them.\n"
               "Each subcommand answers --help."),
    "scgi-bootmenu check": ("scgi-bootmenu [--cache PATH] CONFIG check",
                            "Validate CONFIG (bypassing the cache) and refresh the cache; exit 1 on errors."),
    "scgi-bootmenu init": ("scgi-bootmenu CONFIG init", "Create the state database CONFIG names."),
    NEXT: ("scgi-bootmenu CONFIG next MAC ENTRY [--until-done]", "Make the machine MAC boot ENTRY next."),
    "scgi-bootmenu done": ("scgi-bootmenu CONFIG done MAC", "Clear the mark of the machine MAC."),
    "scgi-bootmenu hosts": ("scgi-bootmenu CONFIG hosts", "List the machines seen, and their marks."),
    RENDER: ("scgi-bootmenu CONFIG render --mac MAC [OPTIONS]",
             "Print the menu the machine described by the options would get now."),
    CALL: ("scgi-call [OPTIONS] ADDRESS [URI]\n"
           "scgi-call [OPTIONS] --exec COMMAND [URI]",
           "Make one SCGI request, as nginx would send it, and print the response like `curl -i`.\n"
           "ADDRESS is unix:PATH or HOST:PORT; URI (default /) may carry a query string.\n"
           "Exit status: 0 for a 1xx-4xx answer, 1 for 5xx, 2 for a usage, protocol or\n"
           "connection error."),
}


class ServeOptions:
    """The parsed options of one command line: every table default, and what was given.

    Made without a program (``ServeOptions()``) it is the set of defaults the
    library runs with when a caller passes no options.
    """

    def __init__(self) -> None:
        for option in OPTIONS:
            if option.repeatable:
                setattr(self, option.attribute, [])


for _option in OPTIONS:
    setattr(ServeOptions, _option.attribute, _option.default)
del _option


def options_of(program: str) -> "list[Option]":
    """The table's entries `program` accepts, in table order."""
    return [option for option in OPTIONS if program in option.programs]


def parse_options(program: str, argv: "Sequence[str]", options: "ServeOptions | None" = None, *,
                  intermixed: bool = False) -> "tuple[ServeOptions, list[str]]":
    """Set `program`'s options from `argv` on `options` (a new ServeOptions by default); return it and the rest.

    Scanning stops at the first argument not starting with '-' (which, with
    the rest, is returned), or after '--'; with `intermixed` positional
    arguments are collected and scanning goes on. -h/--help and --version
    raise InfoRequest; an option `program` does not accept, a missing or a
    bad value raise UsageError.
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
            raise InfoRequest(help_text(program))
        if arg == "--version":
            raise InfoRequest(f"{program.split()[0]} {__version__}\n")
        name, equals, value = arg.partition("=")
        option = _lookup(program, name)
        if option.convert is None:
            if equals:
                raise UsageError(f"{name} takes no value")
            setattr(options, option.attribute, True)
            continue
        if not equals:
            if index == len(args):
                raise UsageError(f"{name} needs a value")
            value = args[index]
            index += 1
        converted = option.convert(name, value)
        if option.repeatable:
            converted = [*getattr(options, option.attribute), converted]
        setattr(options, option.attribute, converted)
    return options, positionals


def _lookup(program: str, name: str) -> Option:
    """The entry for option `name` of `program`; a UsageError saying why there is none."""
    other = None
    for option in OPTIONS:
        if name in option.names:
            if program in option.programs:
                return option
            other = option
    if other is not None:
        raise UsageError(f"{name} is not an option of {program}")
    raise UsageError(f"unknown option {name!r}")


def parse_serve_options(argv: "Sequence[str]", program: str = WSGI) -> "tuple[ServeOptions, list[str]]":
    """The options of `program` at the front of `argv`, and the rest."""
    return parse_options(program, argv)


def help_text(program: str) -> str:
    """The --help of `program` (a program, or 'scgi-bootmenu SUBCOMMAND'), from PROGRAMS and OPTIONS."""
    import textwrap

    synopsis, description = PROGRAMS[program]
    lines = ["usage: " + synopsis.replace("\n", "\n       "), "", description, "", "options:"]
    entries = [(("-h", "--help"), "", "show this help and exit", None),
               (("--version",), "", "print the program's name and version and exit", None)]
    entries += [(option.names, option.metavar, option.help, option.default) for option in options_of(program)]
    for names, metavar, help, default in entries:
        if default not in (None, False, ()):
            help += f" (default {default:g})" if isinstance(default, float) else f" (default {default})"
        label = "  " + ", ".join(names) + (" " + metavar if metavar else "")
        wrapped = textwrap.wrap(help, 79 - 25)
        if len(label) > 23:
            lines.append(label)
            label = ""
        lines.append(label.ljust(25) + wrapped[0])
        lines.extend(" " * 25 + line for line in wrapped[1:])
    return "\n".join(lines) + "\n"


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
