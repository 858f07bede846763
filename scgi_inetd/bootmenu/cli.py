"""`scgi-bootmenu`: serve the boot menu, or check, mark, list and render.

    scgi-bootmenu [serving options] [--cache PATH] CONFIG            serve (one-shot or resident)
    scgi-bootmenu [--cache PATH] CONFIG check                        validate; exit 1 on errors
    scgi-bootmenu CONFIG init                                        create the state database
    scgi-bootmenu CONFIG next MAC ENTRY [--until-done]               mark MAC's next boot
    scgi-bootmenu CONFIG done MAC                                    clear MAC's mark
    scgi-bootmenu CONFIG hosts [--json]                              machines seen, and marks
    scgi-bootmenu CONFIG export --tftp DIR                           menus as files, for TFTP-only loaders
    scgi-bootmenu [serving options] CONFIG admin [--secret-file PATH] [--remote-user]
                                                                     serve the admin page and API
    scgi-bootmenu CONFIG render --mac MAC [--uuid U] [--ip A] [--hostname H]
                  [--serial S] [--buildarch B] [--platform P] [--manufacturer M] [--product P]
                  [--format ipxe|pxelinux|grub]

Serving imports nothing here but the app and the WSGI front-end; no argparse
(import cost: an interpreter starts for every request).
"""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Sequence, TextIO

USAGE = __doc__.split("\n\n")[1]


def _options():
    """The serving options plus --cache and --script-name (built lazily: the
    options module is small, but only serving and the CLI need it)."""
    from ..options import SERVE_OPTIONS, ServeOptions

    class BootMenuOptions(ServeOptions):
        __slots__ = ("cache", "script_name")

        def __init__(self) -> None:
            super().__init__()
            self.cache: str | None = None
            self.script_name: str | None = None

    def text(name: str, value: str) -> str:
        return value

    known = {**SERVE_OPTIONS, "--cache": ("cache", text), "--script-name": ("script_name", text)}
    return BootMenuOptions(), known


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line; the exit status (0 ok, 1 errors found, 2 usage).

    Options come before CONFIG, or right after it when serving (inetd.conf
    style: `scgi-bootmenu CONFIG --stderr syslog`).
    """
    from ..options import SERVE_OPTIONS_HELP, UsageError, take_options

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        out.write(f"usage:\n{USAGE}\n{_OPTIONS_HELP}{SERVE_OPTIONS_HELP}\n")
        return 0
    try:
        options, known = _options()
        rest = take_options(argv, known, options)
        if not rest or rest[0].startswith("-"):
            raise UsageError(f"unknown option {rest[0]!r}" if rest else "CONFIG is missing")
        config_path, rest = rest[0], rest[1:]
        if rest and rest[0].startswith("-"):
            rest = take_options(rest, known, options)
            if rest:
                raise UsageError(f"unexpected {rest[0]!r}")
        cache = config_path + ".cache" if options.cache is None else options.cache
        if not rest:
            return _serve(config_path, cache, options)
        command, args = rest[0], rest[1:]
        if command == "admin":  # serves, like no command: it needs the serving options
            return _admin(config_path, cache, args, options, out)
        handler = _COMMANDS.get(command)
        if handler is None:
            raise UsageError(f"unknown command {command!r}")
        return handler(config_path, cache, args, out, err)
    except UsageError as exc:
        err.write(f"scgi-bootmenu: {exc}\nusage:\n{USAGE}\n")
        return 2


_OPTIONS_HELP = """options:
  --cache PATH           the compiled-config cache (default CONFIG.cache; '' for none)
  --script-name PREFIX   mount the app under PREFIX (SCRIPT_NAME)
"""


def _serve(config_path: str, cache: str, options) -> int:
    """Serve one request on fds 0/1, or resident on a listening socket.

    The log is opened first: under inetd fd 2 is the client socket.
    """
    from ..logsink import open_log
    from ..wsgi import serve_app

    errors = open_log(options.stderr)
    from .app import make_app

    return serve_app(make_app(config_path, cache), errors, script_name=options.script_name, options=options)


def _load(config_path: str, cache: str | None, err: TextIO):
    from .loader import ConfigError, load

    try:
        return load(config_path, cache or None)
    except ConfigError as exc:
        for line in exc.errors:
            err.write(f"{config_path}: {line}\n")
        return None


def _check(config_path: str, cache: str, args: list[str], out: TextIO, err: TextIO) -> int:
    """Validate the file (bypassing the cache) and refresh the cache."""
    from ..options import UsageError
    from .config import parse
    from .loader import ConfigError, write_cache

    if args:
        raise UsageError("check takes no arguments")
    try:
        with open(config_path, "rb") as file:
            raw = file.read()
        config = parse(raw)
    except OSError as exc:
        err.write(f"{config_path}: cannot read: {exc.strerror}\n")
        return 1
    except ConfigError as exc:
        for line in exc.errors:
            err.write(f"{config_path}: {line}\n")
        err.write(f"{config_path}: {len(exc.errors)} error{'s' if len(exc.errors) > 1 else ''}\n")
        return 1
    if cache:
        write_cache(cache, raw, config)
    out.write(f"{config_path}: ok: {len(config['entries'])} entries, {len(config['rules'])} rules, "
              f"{len(config['files'])} files\n")
    import os

    if not os.path.exists(config["state"]):
        out.write(f"note: the state database {config['state']} does not exist yet (the app answers 503 until "
                  f"`scgi-bootmenu {config_path} init`)\n")
    return 0


def _state(config: dict, err: TextIO, *, create: bool):
    from .state import State, StateError

    try:
        return State(config["state"], config["state_timeout"], create=create)
    except StateError as exc:
        err.write(f"scgi-bootmenu: {exc}\n")
        return None


def _init(config_path: str, cache: str, args: list[str], out: TextIO, err: TextIO) -> int:
    config = _load(config_path, cache, err)
    state = config and _state(config, err, create=True)
    if not state:
        return 1
    state.sync_flags()
    out.write(f"state database ready: {config['state']}\n")
    return 0


def _next(config_path: str, cache: str, args: list[str], out: TextIO, err: TextIO) -> int:
    from ..options import UsageError
    from .identity import parse_mac
    from .state import StateError

    until_done = "--until-done" in args
    positional = [arg for arg in args if arg != "--until-done"]
    if len(positional) != 2 or any(arg.startswith("-") for arg in positional):
        raise UsageError("usage: next MAC ENTRY [--until-done]")
    mac = parse_mac(positional[0])
    if mac is None:
        raise UsageError(f"bad MAC address {positional[0]!r}")
    config = _load(config_path, cache, err)
    if config is None:
        return 1
    entry = positional[1]
    if entry not in config["entries"]:
        err.write(f"scgi-bootmenu: no entry named {entry!r} (entries: {', '.join(config['entries'])})\n")
        return 1
    state = _state(config, err, create=True)
    if state is None:
        return 1
    try:
        state.set_mark(mac, entry, until_done)
    except StateError as exc:
        err.write(f"scgi-bootmenu: {exc}\n")
        return 1
    out.write(f"{mac}: next boot runs {entry}" + (" until GET /done?mac=" + mac if until_done else " once") + "\n")
    return 0


def _done(config_path: str, cache: str, args: list[str], out: TextIO, err: TextIO) -> int:
    from ..options import UsageError
    from .identity import parse_mac

    mac = parse_mac(args[0]) if len(args) == 1 else None
    if mac is None:
        raise UsageError("usage: done MAC")
    config = _load(config_path, cache, err)
    state = config and _state(config, err, create=True)
    if not state:
        return 1
    entry = state.done(mac)
    out.write(f"{mac}: cleared mark {entry}\n" if entry else f"{mac}: no mark\n")
    return 0


def _hosts(config_path: str, cache: str, args: list[str], out: TextIO, err: TextIO) -> int:
    """Every machine seen, every identity field; `--json` as the admin API's `{"hosts": [...]}`."""
    import time

    from ..options import UsageError
    from .state import HOST_COLUMNS

    if args not in ([], ["--json"]):
        raise UsageError("usage: hosts [--json]")
    config = _load(config_path, cache, err)
    state = config and _state(config, err, create=True)
    if not state:
        return 1
    state.sync_flags()
    if args:
        import json

        from .admin import host_json

        out.write(json.dumps({"hosts": [host_json(host) for host in state.hosts()]}, indent=1) + "\n")
        return 0
    columns = HOST_COLUMNS + ("mark",)
    rows = [columns]
    for host in state.hosts():
        seen = host.get("seen")
        host["seen"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seen)) if seen else "-"
        rows.append(tuple(str(host.get(column) or "-") for column in columns))
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")
    return 0


def _render(config_path: str, cache: str, args: list[str], out: TextIO, err: TextIO) -> int:
    import os

    from ..options import UsageError, take_options
    from . import grub, identity, ipxe, menu, pxelinux
    from .query import parse_query

    class Args:
        format = "ipxe"

    parsed = Args()
    names = ("mac",) + tuple(key for key in identity.KEYS if key != "mac") + ("format",)
    for name in names[:-1]:
        setattr(parsed, name, None)
    rest = take_options(args, {f"--{name}": (name, lambda option, text: text) for name in names}, parsed)
    if rest:
        raise UsageError(f"render: unexpected {rest[0]!r}")
    renderers = {"ipxe": ipxe, "pxelinux": pxelinux, "grub": grub}
    if parsed.format not in renderers:
        raise UsageError("--format is ipxe, pxelinux or grub")
    given = {key: getattr(parsed, key) for key in identity.KEYS if getattr(parsed, key) is not None}
    # Through the query parser, as the chain-back's request would be read.
    machine = identity.from_query(parse_query(identity.to_query(given)))
    for key in given:
        if key not in machine:
            raise UsageError(f"bad --{key} {given[key]!r}")
    config = _load(config_path, cache, err)
    if config is None:
        return 1
    forced = None
    if "mac" in machine and os.path.exists(config["state"]):
        state = _state(config, err, create=False)
        mark = state.peek(machine["mac"]) if state else None
        if mark and mark[0] in config["entries"]:
            forced = mark[0]
    resolved = menu.resolve(config, machine, forced)
    out.write(renderers[parsed.format].render(resolved))
    return 0


def _export(config_path: str, cache: str, args: list[str], out: TextIO, err: TextIO) -> int:
    """Write the per-machine GRUB and PXELINUX files for a TFTP server (export.py)."""
    from ..options import UsageError

    if len(args) != 2 or args[0] != "--tftp" or not args[1]:
        raise UsageError("usage: export --tftp DIR")
    config = _load(config_path, cache, err)
    if config is None:
        return 1
    from .export import ExportError, export

    try:
        count = export(config, args[1])
    except ExportError as exc:
        err.write(f"scgi-bootmenu: {exc}\n")
        return 1
    out.write(f"{args[1]}: {count} files\n")
    return 0


_COMMANDS = {"check": _check, "init": _init, "next": _next, "done": _done, "hosts": _hosts, "render": _render,
             "export": _export}


def _admin(config_path: str, cache: str, args: list[str], options, out: TextIO) -> int:
    """Serve the admin app (scgi_inetd.bootmenu.admin), one-shot or resident.

    It needs --secret-file (the secret the admin location sends as
    BOOTMENU_ADMIN_SECRET), --remote-user (nginx must set REMOTE_USER), or
    both; without either it would answer anyone who reaches its socket.
    """
    from ..options import UsageError, take_options, text_value

    class AdminOptions:
        secret_file: str | None = None
        remote_user = False

    if args[:1] in (["-h"], ["--help"]):
        out.write("usage: scgi-bootmenu [serving options] CONFIG admin [--secret-file PATH] [--remote-user]\n"
                  "  --secret-file PATH   refuse requests whose BOOTMENU_ADMIN_SECRET is not this file's text\n"
                  "  --remote-user        refuse requests without a REMOTE_USER (set by the web server)\n")
        return 0
    admin = AdminOptions()
    rest = take_options(args, {"--secret-file": ("secret_file", text_value)}, admin, flags=("--remote-user",))
    if rest:
        raise UsageError(f"admin: unexpected {rest[0]!r} (serving options go before CONFIG)")
    if admin.secret_file is None and not admin.remote_user:
        raise UsageError("admin needs --secret-file PATH, --remote-user, or both")
    secret = None
    if admin.secret_file is not None:
        try:
            with open(admin.secret_file, encoding="utf-8") as file:
                secret = file.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--secret-file {admin.secret_file}: {getattr(exc, 'strerror', None) or exc}") from None
        if not secret:
            raise UsageError(f"--secret-file {admin.secret_file} is empty")
    from ..logsink import open_log
    from ..wsgi import serve_app

    errors = open_log(options.stderr)
    from .admin import make_admin_app

    app = make_admin_app(config_path, cache, secret=secret, remote_user=admin.remote_user)
    return serve_app(app, errors, script_name=options.script_name, options=options)
