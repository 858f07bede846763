"""`scgi-bootmenu`: serve the boot menu, or check, mark, list and render.

    scgi-bootmenu [serving options] [--cache PATH] CONFIG            serve (one-shot or resident)
    scgi-bootmenu [--cache PATH] CONFIG check|init|next|done|hosts|render|export [ARGS]
    scgi-bootmenu [serving options] CONFIG admin [--secret-file PATH] [--remote-user]

Every option, and the usage `--help` prints, is in the table of
scgi_inetd.options. Serving imports nothing here but the app and the WSGI
front-end; no argparse (import cost: an interpreter starts for every request).
"""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Sequence, TextIO

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line; the exit status (0 ok, 1 errors found, 2 usage).

    Options come before CONFIG, or right after it when serving (inetd.conf
    style: `scgi-bootmenu CONFIG --stderr syslog`); a subcommand's own
    options (from the table in scgi_inetd.options) follow it.
    """
    from ..options import BOOTMENU, UsageError, parse_options

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    program = BOOTMENU
    try:
        options, rest = parse_options(program, sys.argv[1:] if argv is None else argv)
        if not rest:
            raise UsageError("CONFIG is missing")
        config_path, rest = rest[0], rest[1:]
        if rest and rest[0].startswith("-"):
            options, rest = parse_options(program, rest, options)
            if rest:
                raise UsageError(f"unexpected {rest[0]!r}")
        cache = config_path + ".cache" if options.cache is None else options.cache
        if not rest:
            return _serve(config_path, cache, options)
        command, args = rest[0], rest[1:]
        handler = _COMMANDS.get(command)
        if handler is None and command != "admin":
            raise UsageError(f"unknown command {command!r}")
        program = f"{BOOTMENU} {command}"
        parsed, positionals = parse_options(program, args, intermixed=True)
        if handler is None:  # admin serves, like no command: it needs the serving options too
            return _admin(config_path, cache, options, parsed, positionals)
        return handler(config_path, cache, parsed, positionals, out, err)
    except UsageError as stop:
        return stop.report(program, out, err)


def _serve(config_path: str, cache: str, options) -> int:
    """Serve one request on fds 0/1, or resident on a listening socket.

    The log is opened first: under inetd fd 2 is the client socket.
    """
    from ..wsgi import listen_and_log, serve_app

    started = listen_and_log(options, "scgi-bootmenu")
    if isinstance(started, int):
        return started
    listen_fd, errors = started
    from .app import make_app

    return serve_app(make_app(config_path, cache), errors, stdin=listen_fd, script_name=options.script_name,
                     options=options)


def _load(config_path: str, cache: str | None, err: TextIO):
    from .loader import ConfigError, load

    try:
        return load(config_path, cache or None)
    except ConfigError as exc:
        for line in exc.errors:
            err.write(f"{config_path}: {line}\n")
        return None


def _check(config_path: str, cache: str, options, args: list[str], out: TextIO, err: TextIO) -> int:
    """Validate the file (bypassing the cache) and refresh the cache."""
    from ..options import UsageError
    from .config import parse
    from .loader import ConfigError, write_cache

    if args:
        raise UsageError(f"takes no arguments, not {args[0]!r}")
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
        err.write(f"scgi-bootmenu: {exc.detail}\n")
        return None


def _state_for_command(config_path: str, cache: str, args: list[str], err: TextIO):
    """(config, state) for a command that takes no arguments, the state created and its flags synced; or None."""
    from ..options import UsageError

    if args:
        raise UsageError(f"takes no arguments, not {args[0]!r}")
    config = _load(config_path, cache, err)
    state = config and _state(config, err, create=True)
    if not state:
        return None
    state.sync_flags()
    return config, state


def _init(config_path: str, cache: str, options, args: list[str], out: TextIO, err: TextIO) -> int:
    opened = _state_for_command(config_path, cache, args, err)
    if opened is None:
        return 1
    out.write(f"state database ready: {opened[0]['state']}\n")
    return 0


def _next(config_path: str, cache: str, options, args: list[str], out: TextIO, err: TextIO) -> int:
    from ..options import UsageError
    from .identity import parse_mac
    from .state import StateError

    if len(args) != 2:
        raise UsageError("needs MAC and ENTRY")
    until_done = options.until_done
    mac = parse_mac(args[0])
    if mac is None:
        raise UsageError(f"bad MAC address {args[0]!r}")
    config = _load(config_path, cache, err)
    if config is None:
        return 1
    entry = args[1]
    if entry not in config["entries"]:
        err.write(f"scgi-bootmenu: no entry named {entry!r} (entries: {', '.join(config['entries'])})\n")
        return 1
    state = _state(config, err, create=True)
    if state is None:
        return 1
    try:
        state.set_mark(mac, entry, until_done)
    except StateError as exc:
        err.write(f"scgi-bootmenu: {exc.detail}\n")
        return 1
    out.write(f"{mac}: next boot runs {entry}" + (" until GET /done?mac=" + mac if until_done else " once") + "\n")
    return 0


def _done(config_path: str, cache: str, options, args: list[str], out: TextIO, err: TextIO) -> int:
    from ..options import UsageError
    from .identity import parse_mac

    if len(args) != 1:
        raise UsageError("needs MAC")
    mac = parse_mac(args[0])
    if mac is None:
        raise UsageError(f"bad MAC address {args[0]!r}")
    config = _load(config_path, cache, err)
    state = config and _state(config, err, create=True)
    if not state:
        return 1
    entry = state.done(mac)
    out.write(f"{mac}: cleared mark {entry}\n" if entry else f"{mac}: no mark\n")
    return 0


def _hosts(config_path: str, cache: str, options, args: list[str], out: TextIO, err: TextIO) -> int:
    """Every machine seen, every identity field; `--json` as the admin API's `{"hosts": [...]}`."""
    import time

    from .state import HOST_COLUMNS

    opened = _state_for_command(config_path, cache, args, err)
    if opened is None:
        return 1
    state = opened[1]
    if options.json:
        import json

        from .admin import host_json

        out.write(json.dumps({"hosts": [host_json(host) for host in state.hosts()]}, indent=1) + "\n")
        return 0
    columns = HOST_COLUMNS + ("mark",)
    rows: list[tuple[str, ...]] = [columns]
    for host in state.hosts():
        seen = host.get("seen")
        host["seen"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seen)) if seen else "-"
        rows.append(tuple(str(host.get(column) or "-") for column in columns))
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")
    return 0


def _render(config_path: str, cache: str, options, args: list[str], out: TextIO, err: TextIO) -> int:
    import os

    from ..options import UsageError
    from . import grub, identity, ipxe, menu, pxelinux
    from .query import parse_query

    if args:
        raise UsageError(f"unexpected {args[0]!r}")
    parsed = options
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
    renderers = {"ipxe": ipxe, "pxelinux": pxelinux, "grub": grub}
    out.write(renderers[parsed.format].render(resolved))
    return 0


def _export(config_path: str, cache: str, options, args: list[str], out: TextIO, err: TextIO) -> int:
    """Write the per-machine GRUB and PXELINUX files for a TFTP server (export.py)."""
    from ..options import UsageError

    if args:
        raise UsageError(f"unexpected {args[0]!r}")
    if not options.tftp:
        raise UsageError("needs --tftp DIR")
    config = _load(config_path, cache, err)
    if config is None:
        return 1
    from .export import ExportError, export

    try:
        count = export(config, options.tftp)
    except ExportError as exc:
        err.write(f"scgi-bootmenu: {exc}\n")
        return 1
    out.write(f"{options.tftp}: {count} files\n")
    return 0


_COMMANDS = {"check": _check, "init": _init, "next": _next, "done": _done, "hosts": _hosts, "render": _render,
             "export": _export}


def _admin(config_path: str, cache: str, options, admin, args: list[str]) -> int:
    """Serve the admin app (scgi_inetd.bootmenu.admin), one-shot or resident.

    It needs --secret-file (the secret the admin location sends as
    BOOTMENU_ADMIN_SECRET), --remote-user (nginx must set REMOTE_USER), or
    both; without either it would answer anyone who reaches its socket.
    """
    from ..options import UsageError

    if args:
        raise UsageError(f"unexpected {args[0]!r} (serving options go before CONFIG)")
    if admin.secret_file is None and not admin.remote_user:
        raise UsageError("needs --secret-file PATH, --remote-user, or both")
    secret = None
    if admin.secret_file is not None:
        try:
            with open(admin.secret_file, encoding="utf-8") as file:
                secret = file.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--secret-file {admin.secret_file}: {getattr(exc, 'strerror', None) or exc}") from None
        if not secret:
            raise UsageError(f"--secret-file {admin.secret_file} is empty")
    from ..wsgi import listen_and_log, serve_app

    started = listen_and_log(options, "scgi-bootmenu")
    if isinstance(started, int):
        return started
    listen_fd, errors = started
    from .admin import make_admin_app

    app = make_admin_app(config_path, cache, secret=secret, remote_user=admin.remote_user)
    return serve_app(app, errors, stdin=listen_fd, script_name=options.script_name, options=options)
