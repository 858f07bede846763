"""The boot-menu WSGI app.

Endpoints (GET and HEAD, all text/plain with Cache-Control: no-store):
  /boot.ipxe           no identity: a script chaining back with iPXE's settings;
                       with identity (?mac=...&uuid=...): that machine's menu
  /pxelinux.cfg/NAME   PXELINUX configuration, per machine (name and cookies)
  /grub/NAME           GRUB configuration: grub.cfg-01-<mac>, grub.cfg-<hex IP>
                       per machine; grub.cfg with identity (?mac=...) that
                       machine's menu, without it the bootstrap that asks so
  /files/NAME          a file template rendered for the machine (?mac=...)
  /done?mac=...        the installer finished: clear an until-done mark

HEAD (UEFI HTTP Boot sends it before GET) gets GET's status and headers with
no body, and changes nothing: no mark is consumed or cleared, no inventory
line written.

Per request this imports only the modules it needs: the config comes from the
marshal cache (tomllib only when the file changed), and `_sqlite3` is loaded
only for a machine that may have a mark, for /done, and to fold the
inventory queue (state.py).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Callable, Iterable

from . import identity as ident
from . import menu as menus
from ..logsink import format_line
from ..protocol import status_line
from .loader import ConfigError, load
from .query import parse_cookies, parse_query

__all__ = ["FILES_PREFIX", "GRUB_PREFIX", "PXELINUX_PREFIX", "BootMenuApp", "make_app"]

PXELINUX_PREFIX = "/pxelinux.cfg/"
FILES_PREFIX = "/files/"
GRUB_PREFIX = "/grub/"


def _log(environ: dict, message: str) -> None:
    """One line on wsgi.errors (the front-end points it at the log), as every program writes them."""
    environ["wsgi.errors"].write(format_line(message))


def _refuse(environ: dict, status: int, message: str, detail: str = "") -> tuple[int, str, list]:
    """An error answer, (status, body, no extra headers), and its log line as every program writes it."""
    from ..answer import error_line  # error paths only: a menu request does not load it

    _log(environ, error_line(status, message, detail))
    return status, message + "\n", []


class BootMenuApp:
    """The WSGI app for one config file; cheap to build, loads per request."""

    def __init__(self, config_path: str, cache: str | None = None) -> None:
        self.config_path = config_path
        self.cache = config_path + ".cache" if cache is None else cache

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        status, body, extra = self.handle(environ)
        data = body.encode("utf-8")
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"),
                   ("Content-Length", str(len(data)))] + extra
        start_response(status_line(status), headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        # menu() leaves the deferred inventory write under an app-private key
        # (PEP 3333 allows those); it runs from the body's close().
        after = environ.pop("scgi_bootmenu.after", None)
        return _Body(data, after, environ) if after else [data]

    def handle(self, environ: dict) -> tuple[int, str, list]:
        """(status, body, extra headers) for one request."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return 405, "only GET and HEAD\n", [("Allow", "GET, HEAD")]
        try:
            config = load(self.config_path, self.cache or None)
        except ConfigError as exc:
            return _refuse(environ, 500, "invalid boot-menu configuration; see the log",
                           f"{self.config_path}: {exc}")
        from .state import StateError

        path = environ.get("PATH_INFO", "")
        try:
            if path == "/boot.ipxe":
                return self.boot_ipxe(config, environ)
            if path.startswith(PXELINUX_PREFIX):
                return self.pxelinux(config, environ, path[len(PXELINUX_PREFIX):])
            if path.startswith(GRUB_PREFIX):
                return self.grub(config, environ, path[len(GRUB_PREFIX):])
            if path.startswith(FILES_PREFIX):
                return self.file(config, environ, path[len(FILES_PREFIX):])
            if path == "/done":
                return self.done(config, environ)
        except StateError as exc:
            return _refuse(environ, exc.status, exc.message, exc.detail)
        return 404, "not found\n", []

    def boot_ipxe(self, config: dict, environ: dict) -> tuple[int, str, list]:
        from . import ipxe

        params = parse_query(environ.get("QUERY_STRING", ""))
        if not any(key in params for key in ident.QUERY_NAMES):
            return 200, ipxe.chain_back(), []
        machine = ident.from_query(params, environ.get("REMOTE_ADDR", ""))
        return 200, ipxe.render(self.menu(config, environ, machine, "ipxe")), []

    def pxelinux(self, config: dict, environ: dict, name: str) -> tuple[int, str, list]:
        from . import pxelinux

        from_name = ident.from_pxelinux_name(name)
        if from_name is None:
            return 404, "not found\n", []
        machine = ident.from_pxelinux_cookies(parse_cookies(environ.get("HTTP_COOKIE", "")))
        machine.update(from_name)
        if name != "default" and not self.answers(config, machine):
            return 404, "no rule for this machine\n", []
        return 200, pxelinux.render(self.menu(config, environ, machine, "pxelinux")), []

    def grub(self, config: dict, environ: dict, name: str) -> tuple[int, str, list]:
        from . import grub

        from_name = ident.from_grub_name(name)
        if from_name is None:
            return 404, "not found\n", []
        params = parse_query(environ.get("QUERY_STRING", ""))
        machine = ident.from_query(params, environ.get("REMOTE_ADDR", "")) if params else {}
        machine.update(from_name)
        if name == "grub.cfg" and not any(key in params for key in ident.QUERY_NAMES):
            base = _grub_base(environ)
            if base is None:
                return _refuse(environ, 400, "bad Host",
                               f"no valid host for the GRUB bootstrap: {environ.get('HTTP_HOST', '')!r}")
            return 200, grub.bootstrap(base), []
        if name != "grub.cfg" and not self.answers(config, machine):
            return 404, "no rule for this machine\n", []
        return 200, grub.render(self.menu(config, environ, machine, "grub")), []

    def answers(self, config: dict, machine: ident.Identity) -> bool:
        """Whether a per-machine name (PXELINUX's, GRUB's) gets a menu: a rule
        matches, or a mark waits. Otherwise 404 sends the loader on to its
        next name and finally to the default one."""
        if menus.has_rule(config, machine):
            return True
        from . import state

        if "mac" not in machine or not state.may_have_mark(config["state"], machine["mac"]):
            return False
        state.require(config["state"])
        return self.state(config).peek(machine["mac"]) is not None

    def menu(self, config: dict, environ: dict, machine: ident.Identity, via: str) -> menus.Menu:
        """The machine's menu; for a known MAC, its mark applied, and its
        inventory line queued to be written once the menu is sent."""
        from . import state

        menu = menus.resolve(config, machine)
        if "mac" in machine:
            state.require(config["state"])
            forced = None
            if state.may_have_mark(config["state"], machine["mac"]):
                forced = self.mark(config, environ, machine["mac"])
            if forced is not None:
                menu = menus.resolve(config, machine, forced)
            entry = forced or menu["default"]
            if environ.get("REQUEST_METHOD") != "HEAD":
                environ["scgi_bootmenu.after"] = lambda: self.record(config, machine, entry, via)
        return menu

    def mark(self, config: dict, environ: dict, mac: str) -> str | None:
        """The entry the machine's mark forces: consumed by GET, only read by HEAD."""
        if environ.get("REQUEST_METHOD") != "HEAD":
            return self.state(config).take_mark(mac, config["entries"])
        mark = self.state(config).peek(mac)
        return mark[0] if mark and mark[0] in config["entries"] else None

    def record(self, config: dict, machine: ident.Identity, entry: str, via: str) -> None:
        """Queue the inventory line; fold the queue into the database when big."""
        from . import state

        if state.append_seen(config["state"], machine, entry, via) > state.FOLD_AT:
            self.state(config).fold_seen()

    def file(self, config: dict, environ: dict, name: str) -> tuple[int, str, list]:
        if name not in config["files"]:
            return 404, "no such file\n", []
        machine = ident.from_query(parse_query(environ.get("QUERY_STRING", "")), environ.get("REMOTE_ADDR", ""))
        return 200, menus.render_file(config, name, machine), []

    def done(self, config: dict, environ: dict) -> tuple[int, str, list]:
        mac = ident.parse_mac(parse_query(environ.get("QUERY_STRING", "")).get("mac", ""))
        if mac is None:
            return 400, "missing or bad mac\n", []
        if environ.get("REQUEST_METHOD") == "HEAD":
            mark = self.state(config).peek(mac)
            entry = mark[0] if mark else None
        else:
            entry = self.state(config).done(mac)
        return 200, (f"cleared {mac}: {entry}\n" if entry else f"no mark for {mac}\n"), []

    def state(self, config: dict):
        """The state database, opened for this request (never shared across a fork)."""
        from .state import State

        return State(config["state"], config["state_timeout"])


def _grub_base(environ: dict) -> str | None:
    """`(http,host:port)/mount` for GRUB to reach this app again, or None.

    The host is the request's (`Host`, else SERVER_NAME; Debian's
    scgi_params gives `$host`, without the port), the port SERVER_PORT; each
    part is validated, as it is written into a GRUB command.
    """
    host = (environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")).rpartition("]")[2].partition(":")[0]
    host = ident.parse_ip(host) or ident.parse_hostname(host)
    port = environ.get("SERVER_PORT", "80")
    mount = environ.get("SCRIPT_NAME", "")
    if host is None or not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
        return None
    if not all(c.isascii() and (c.isalnum() or c in "/-._~") for c in mount):
        return None
    return f"(http,{host}{'' if port == '80' else ':' + port}){mount.rstrip('/')}"


class _Body:
    """The response body; `close()` (called by the server once the body is
    sent, PEP 3333) runs the deferred inventory write. A failure there cannot
    change the answer any more: it is logged."""

    def __init__(self, data: bytes, after: Callable[[], None], environ: dict) -> None:
        self._data = [data]
        self._after = after
        self._errors = environ["wsgi.errors"]

    def __iter__(self):
        return iter(self._data)

    def close(self) -> None:
        from .state import StateError

        try:
            self._after()
        except StateError as exc:
            self._errors.write(format_line(f"inventory not updated: {exc.detail}"))
        except OSError as exc:
            self._errors.write(format_line(f"inventory not updated: {exc}"))


def make_app(config_path: str, cache: str | None = None) -> BootMenuApp:
    """The WSGI app serving `config_path` (cache: default CONFIG.cache, '' for none)."""
    return BootMenuApp(config_path, cache)
