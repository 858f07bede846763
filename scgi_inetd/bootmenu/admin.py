"""The boot farm's admin page and JSON API: machines seen, and next boots set or cleared.

Routes, under the mount point (SCRIPT_NAME):

  GET    /                       one HTML page: every machine, its pending mark, a form
                                 each; `?q=TEXT` filters, `?sort=seen` oldest first
  POST   /next                   the page's form: mac, entry, mode (once|until-done),
                                 action (set|clear), csrf
  GET    /api/hosts              every machine, as JSON
  GET    /api/hosts/MAC          one machine
  PUT    /api/hosts/MAC/next     {"entry": "...", "until_done": true}: set its next boot
  DELETE /api/hosts/MAC/next     clear it
  GET    /api/entries            the entries a next boot may name

This app is never on the PXE clients' socket: it is served by
`scgi-bootmenu CONFIG admin` behind its own nginx location. Anyone who can
reach its socket can send any SCGI variable (openbsd-inetd creates sockets
0666), so every request must carry what only that location sends: the
shared secret in the SCGI variable SECRET_VARIABLE (`scgi_param`, which no
HTTP client can set through nginx) and/or a REMOTE_USER (nginx
`auth_basic`); anything else gets 403.

Writes from a browser are POSTs carrying a per-session token: the session
is a random id in an HttpOnly, SameSite=Strict cookie, the token a keyed
BLAKE2 hash of it (and of REMOTE_USER) with a key kept beside the state
database, so a token cannot be made without the key nor reused by another
session. A browser write from another origin (`Sec-Fetch-Site`, else
`Origin`) is refused before the token is even looked at.

All reads and writes go through `state.State`, as the CLI's do. Cost: the
page imports no `json`, `html`, `http.cookies`, `re` or `hmac` (an
interpreter starts per request under inetd); the API loads `json`.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Any, Callable, Iterable

from .identity import parse_mac
from ..logsink import format_line
from ..protocol import RequestError, status_line
from .loader import ConfigError, load
from .query import parse_cookies, parse_query
from .state import State, StateError, require

__all__ = ["COLUMNS", "MAX_BODY", "SECRET_VARIABLE", "SESSION_COOKIE", "STYLE", "AdminApp", "Refusal",
           "describe_mark", "host_json", "local_time", "make_admin_app", "render_page", "text"]

SECRET_VARIABLE = "BOOTMENU_ADMIN_SECRET"
"""The SCGI variable the admin location sets to the shared secret."""

SESSION_COOKIE = "bootmenu_admin"
MAX_BODY = 16384
"""Largest form or JSON body read: a next-boot request is under 200 bytes."""


_PAGE_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    # No script may run, whatever a stored value holds; only our own inline style.
    ("Content-Security-Policy",
     "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
]


class Refusal(RequestError):
    """A request the admin app answers with an error; `allow` is the Allow header of a 405."""

    def __init__(self, status: int, message: str, allow: str | None = None, detail: str = "") -> None:
        super().__init__(status, message, detail)
        self.allow = allow


class AdminApp:
    """The admin WSGI app for one config file; cheap to build, loads per request."""

    def __init__(self, config_path: str, cache: str | None = None, *, secret: str | None = None,
                 remote_user: bool = False) -> None:
        if not secret and not remote_user:
            raise ValueError("the admin app needs a shared secret, REMOTE_USER, or both")
        self.config_path = config_path
        self.cache = config_path + ".cache" if cache is None else cache
        self.secret = secret
        self.remote_user = remote_user

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        api = environ.get("PATH_INFO", "").startswith("/api/")
        try:
            status, content_type, body, headers = self.handle(environ)
        except Refusal as refusal:
            from ..answer import error_line  # error paths only: the page does not load it

            request = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')!r}"
            _log(environ, error_line(refusal.status, f"{request}: {refusal.message}", refusal.detail))
            status, headers = refusal.status, [("Allow", refusal.allow)] if refusal.allow else []
            if api:
                content_type, body = "application/json", _json({"error": refusal.message, "status": status})
            else:
                content_type, body = "text/html; charset=utf-8", _error_page(status, refusal.message)
        data = body.encode("utf-8")
        start_response(status_line(status),
                       [("Content-Type", content_type), ("Content-Length", str(len(data)))] + _PAGE_HEADERS + headers)
        return [data]

    def handle(self, environ: dict) -> tuple[int, str, str, list]:
        """(status, content type, body, extra headers); raises Refusal."""
        self.admit(environ)
        method = environ.get("REQUEST_METHOD", "")
        if method not in ("GET", "HEAD"):
            _same_origin(environ)
        path = environ.get("PATH_INFO", "")
        try:
            config = load(self.config_path, self.cache or None)
        except ConfigError as exc:
            raise Refusal(500, "invalid boot-menu configuration; see the log",
                          detail=f"{self.config_path}: {exc}") from None
        try:
            if path.startswith("/api/"):
                status, body = self.api(environ, config, method, path[len("/api/"):])
                return status, "application/json", body, []
            if path == "":
                return 301, "text/html; charset=utf-8", "", [("Location", _base(environ) + "/")]
            if path == "/":
                _allow(method, "GET")
                return self.page(environ, config)
            if path == "/next":
                _allow(method, "POST")
                return self.form(environ, config)
        except StateError as exc:
            raise Refusal(exc.status, exc.message, detail=exc.detail) from None
        raise Refusal(404, "not found")

    def admit(self, environ: dict) -> None:
        """Refuse (403) a request that did not come through the admin location."""
        if self.secret is not None:
            if not _equal(environ.get(SECRET_VARIABLE, ""), self.secret):
                raise Refusal(403, "not through the admin location (no or wrong shared secret)")
        if self.remote_user and not environ.get("REMOTE_USER"):
            raise Refusal(403, "not through the admin location (no REMOTE_USER)")

    def state(self, config: dict) -> State:
        require(config["state"])
        return State(config["state"], config["state_timeout"])

    # The JSON API.

    def api(self, environ: dict, config: dict, method: str, path: str) -> tuple[int, str]:
        if path == "entries":
            _allow(method, "GET")
            return 200, _json({"entries": [_entry_json(config, name) for name in config["entries"]]})
        if path == "hosts":
            _allow(method, "GET")
            return 200, _json({"hosts": [host_json(host) for host in self.state(config).hosts()]})
        mac_text, slash, rest = path.removeprefix("hosts/").partition("/")
        if not path.startswith("hosts/") or rest not in ("", "next") or slash and not rest:
            raise Refusal(404, "not found")
        state = self.state(config)
        mac, host = _known_host(state, mac_text)
        if not rest:
            _allow(method, "GET")
            return 200, _json(host_json(host))
        _allow(method, "PUT, DELETE")
        if method == "PUT":
            entry, until_done = _next_request(environ)
            if entry not in config["entries"]:
                raise Refusal(404, f"no entry named {entry!r}")
            state.set_mark(mac, entry, until_done)
        else:
            state.done(mac)
        return 200, _json(host_json(_after(state, mac, host)) | {"previous": _mark_json(host)})

    # The page.

    def page(self, environ: dict, config: dict, changed: str = "") -> tuple[int, str, str, list]:
        session, headers = _session(environ)
        token = _token(config, session, environ)
        params = parse_query(environ.get("QUERY_STRING", ""))
        hosts = self.state(config).hosts()
        body = render_page(config, hosts, token, _base(environ), params.get("q", ""), params.get("sort", ""), changed)
        return 200, "text/html; charset=utf-8", body, headers

    def form(self, environ: dict, config: dict) -> tuple[int, str, str, list]:
        """The page's POST: checked (token, machine, entry) before anything is written."""
        if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            raise Refusal(415, "a form post is application/x-www-form-urlencoded")
        fields = parse_query(_read_body(environ).decode("latin-1"))
        session = parse_cookies(environ.get("HTTP_COOKIE", "")).get(SESSION_COOKIE, "")
        if not _valid_session(session) or not _equal(fields.get("csrf", ""), _token(config, session, environ)):
            raise Refusal(403, "missing or wrong form token: reload the page and try again")
        state = self.state(config)
        mac, host = _known_host(state, fields.get("mac", ""))
        before = describe_mark(host)
        action = fields.get("action")
        if action == "clear":
            state.done(mac)
        elif action == "set":
            entry, mode = fields.get("entry", ""), fields.get("mode")
            if entry not in config["entries"]:
                raise Refusal(404, f"no entry named {entry!r}")
            if mode not in ("once", "until-done"):
                raise Refusal(400, "mode is once or until-done")
            state.set_mark(mac, entry, mode == "until-done")
        else:
            raise Refusal(400, "action is set or clear")
        after = describe_mark(_after(state, mac, host))
        return self.page(environ, config, f"{mac}: next boot was {before}, is now {after}.")


def make_admin_app(config_path: str, cache: str | None = None, *, secret: str | None = None,
                   remote_user: bool = False) -> AdminApp:
    """The admin WSGI app for `config_path`: needs `secret`, `remote_user`, or both (each then required)."""
    return AdminApp(config_path, cache, secret=secret, remote_user=remote_user)


def _log(environ: dict, message: str) -> None:
    environ["wsgi.errors"].write(format_line(message))


def _equal(given: str, expected: str) -> bool:
    """A comparison that takes as long wherever the texts differ (secrets, tokens)."""
    from _operator import _compare_digest  # what hmac.compare_digest is, without hashlib's import

    return _compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def _allow(method: str, allowed: str) -> None:
    if method not in allowed.split(", "):
        raise Refusal(405, f"{method} not allowed here", allow=allowed)


def _base(environ: dict) -> str:
    return environ.get("SCRIPT_NAME", "").rstrip("/")


def _same_origin(environ: dict) -> None:
    """Refuse a browser's write from another origin (CSRF), before anything is read.

    `Sec-Fetch-Site` (sent by current browsers) says it directly; else an
    `Origin` must name this host (the port is not compared: Debian's
    scgi_params sends HTTP_HOST without it). Scripts send neither.
    """
    site = environ.get("HTTP_SEC_FETCH_SITE")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise Refusal(403, f"cross-site request refused (Sec-Fetch-Site: {site})")
        return
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return
    host = origin.partition("://")[2]
    host = host.rpartition(":")[0] if host.rpartition(":")[2].isdigit() else host
    own = environ.get("HTTP_HOST", "")
    own = own.rpartition(":")[0] if own.rpartition(":")[2].isdigit() else own
    if not host or host.lower() != own.lower():
        raise Refusal(403, f"cross-origin request refused (Origin: {origin})")


def _read_body(environ: dict) -> bytes:
    length = environ.get("CONTENT_LENGTH") or "0"
    if not length.isdigit():
        raise Refusal(400, "bad CONTENT_LENGTH")
    if int(length) > MAX_BODY:
        raise Refusal(413, f"body over {MAX_BODY} bytes")
    return environ["wsgi.input"].read(int(length))


def _known_host(state: State, text: str) -> tuple[str, dict]:
    """The machine `text` names, as (mac, host); 404 unless it was seen or is marked."""
    mac = parse_mac(text)
    if mac is None:
        raise Refusal(404, f"not a MAC address: {text[:40]!r}")
    host = state.host(mac)
    if host is None:
        raise Refusal(404, f"no machine {mac} seen")
    return mac, host


def _after(state: State, mac: str, before: dict) -> dict:
    """The machine after a change; a marked machine never seen is gone once cleared."""
    return state.host(mac) or before | {"mark": None, "mark_entry": None, "until_done": None, "marked": None}


def _next_request(environ: dict) -> tuple[str, bool]:
    """`{"entry": "...", "until_done": bool}` from a PUT body; 400/415 otherwise."""
    if environ.get("CONTENT_TYPE", "").partition(";")[0].strip() != "application/json":
        raise Refusal(415, "the body must be application/json")
    import json

    try:
        request = json.loads(_read_body(environ))
    except ValueError:
        raise Refusal(400, "the body is not JSON") from None
    if not isinstance(request, dict) or not isinstance(request.get("entry"), str):
        raise Refusal(400, 'the body must be {"entry": "NAME", "until_done": false}')
    unknown = sorted(set(request) - {"entry", "until_done"})
    if unknown:
        raise Refusal(400, f"unknown key {unknown[0]!r}")
    until_done = request.get("until_done", False)
    if not isinstance(until_done, bool):
        raise Refusal(400, "until_done must be true or false")
    return request["entry"], until_done


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=1) + "\n"


def local_time(seconds: int | None) -> str | None:
    """`seconds` as ISO 8601 in the server's local time, with its UTC offset."""
    if seconds is None:
        return None
    moment = time.localtime(seconds)
    offset = moment.tm_gmtoff
    sign, offset = ("+" if offset >= 0 else "-"), abs(offset)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f"{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"


def describe_mark(host: dict) -> str:
    """`install (once)`, `install (until done)` or `none`."""
    if host["mark_entry"] is None:
        return "none"
    return f"{host['mark_entry']} ({'until done' if host['until_done'] else 'once'})"


def _mark_json(host: dict) -> dict | None:
    if host["mark_entry"] is None:
        return None
    return {"entry": host["mark_entry"], "until_done": host["until_done"], "set": local_time(host["marked"])}


def host_json(host: dict) -> dict:
    """One machine as the API and `hosts --json` show it."""
    out = {key: host[key] for key in ("mac", "uuid", "ip", "hostname", "serial", "buildarch", "platform",
                                      "manufacturer", "product", "entry", "via")}
    out["seen"] = local_time(host["seen"])
    out["next"] = _mark_json(host)
    return out


def _entry_json(config: dict, name: str) -> dict:
    entry = config["entries"][name]
    return {"name": name, "label": entry["label"], "kind": entry["kind"],
            "in_menu": name in config["menu"]["entries"], "default": name == config["menu"]["default"]}


# Sessions and form tokens.

def _valid_session(session: str) -> bool:
    return len(session) == 32 and all(c in "0123456789abcdef" for c in session)


def _session(environ: dict) -> tuple[str, list]:
    """The browser's session id, and the Set-Cookie header when it is new."""
    session = parse_cookies(environ.get("HTTP_COOKIE", "")).get(SESSION_COOKIE, "")
    if _valid_session(session):
        return session, []
    session = os.urandom(16).hex()
    secure = "; Secure" if environ.get("wsgi.url_scheme") == "https" else ""
    cookie = f"{SESSION_COOKIE}={session}; Path={_base(environ) or '/'}; HttpOnly; SameSite=Strict{secure}"
    return session, [("Set-Cookie", cookie)]


def _token(config: dict, session: str, environ: dict) -> str:
    """The form token of this session (and user): a keyed BLAKE2 hash."""
    from _blake2 import blake2b  # hashlib would load OpenSSL: milliseconds per request

    data = f"{session}\0{environ.get('REMOTE_USER', '')}".encode("utf-8", "surrogateescape")
    return blake2b(data, key=_key(config["state"]), digest_size=16).hexdigest()


def _key(state: str) -> bytes:
    """The token key, `STATE.admin-key` (made once, 0600, atomically: linked into place)."""
    path = state + ".admin-key"
    try:
        with open(path, "rb") as file:
            key = file.read()
    except FileNotFoundError:
        key = b""
    except OSError as exc:
        raise StateError(f"admin key {path}: {exc.strerror}") from None
    if len(key) == 32:
        return key
    try:
        draft = f"{path}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, os.urandom(32))
        finally:
            os.close(fd)
        try:
            os.link(draft, path)
        finally:
            os.unlink(draft)
    except FileExistsError:
        pass  # another request made it first: use that one
    except OSError as exc:
        raise StateError(f"admin key {path}: {exc.strerror}") from None
    with open(path, "rb") as file:
        return file.read()


# HTML.

def text(value: Any) -> str:
    """`value` safe inside HTML text and quoted attributes.

    Stored values come from booting machines (a client picks its host name,
    serial and product); characters that do not print (controls, bidi
    overrides) are shown as escapes rather than passed to the browser.
    """
    value = "" if value is None else str(value)
    if not value.isprintable():
        value = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                        for c in value)
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#x27;"))


COLUMNS = (("mac", "MAC"), ("uuid", "UUID"), ("serial", "Serial"), ("hostname", "Host name"), ("ip", "IP"),
           ("buildarch", "Arch"), ("platform", "Platform"), ("manufacturer", "Manufacturer"),
           ("product", "Product"), ("entry", "Last entry"), ("via", "Loader"))

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .2em .4em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.mark { font-weight: bold; }
td.mark small { font-weight: normal; }
time, small { white-space: nowrap; }
p.changed { background: #dfd; border: 1px solid #9c9; padding: .4em; }
small { color: #555; }
"""


def _matches(host: dict, query: str) -> bool:
    words = [str(host.get(key) or "") for key, _ in COLUMNS] + [host["mark"] or "", local_time(host["seen"]) or ""]
    return query.lower() in " ".join(words).lower()


def render_page(config: dict, hosts: list[dict], token: str, base: str, query: str = "", sort: str = "",
                changed: str = "") -> str:
    """The whole page. Every value is passed through `text()`; there is no script."""
    shown = [host for host in hosts if _matches(host, query)] if query else hosts
    if sort == "seen":  # oldest first; machines never seen stay last
        shown = sorted(shown, key=lambda host: (host["seen"] is None, host["seen"] or 0))
    marked = sum(1 for host in hosts if host["mark"])
    other = "-seen" if sort == "seen" else "seen"
    arrow = "\u2191" if sort == "seen" else "\u2193"
    sort_link = f"{text(base)}/?sort={other}" + (f"&amp;q={_quote(query)}" if query else "")
    options = "".join(f'<option value="{text(name)}">{text(name)}: {text(entry["label"])}</option>'
                      for name, entry in config["entries"].items())
    out = ["<!doctype html>\n<html lang=en><head><meta charset=utf-8>",
           "<meta name=viewport content='width=device-width, initial-scale=1'>",
           f"<title>Boot farm</title><style>{STYLE}</style></head><body>",
           f"<h1>Boot farm</h1><p>{len(hosts)} machine{'s' if len(hosts) != 1 else ''}, {marked} with a next boot set. "
           f"Times are the server's local time.</p>"]
    if changed:
        out.append(f'<p class=changed role=status>{text(changed)}</p>')
    out.append(f'<form method=get action="{text(base)}/"><label>Filter <input name=q value="{text(query)}"></label>'
               f' <input type=hidden name=sort value="{text(sort)}"><button>Filter</button>'
               f' <a href="{text(base)}/">all</a></form>')
    if query:
        out.append(f"<p>{len(shown)} of {len(hosts)} machines match {text(repr(query))}.</p>")
    out.append("<table><thead><tr>" + "".join(f"<th>{label}</th>" for _, label in COLUMNS)
               + f'<th><a href="{sort_link}">Last seen {arrow}</a></th>'
               "<th>Next boot</th><th>Set the next boot</th></tr></thead><tbody>")
    for host in shown:
        cells = "".join(f"<td>{text(host.get(key))}</td>" for key, _ in COLUMNS)
        seen = local_time(host["seen"])
        seen_cell = (f'<time datetime="{seen}">{time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(host["seen"]))}'
                     f"</time><br><small>{seen}</small>") if seen else "never"
        mark = text(describe_mark(host))
        if host["mark_entry"] is not None:
            mark += f"<br><small>set {local_time(host['marked'])}</small>"
        mac = text(host["mac"])
        form = (f'<form method=post action="{text(base)}/next"><input type=hidden name=csrf value="{token}">'
                f'<input type=hidden name=mac value="{mac}">'
                f'<select name=entry aria-label="entry for {mac}">{options}</select> '
                f'<select name=mode aria-label="mode for {mac}"><option value=once>once</option>'
                f'<option value=until-done>until done</option></select> '
                f'<button name=action value=set>Set</button> <button name=action value=clear>Clear</button></form>')
        out.append(f'<tr id="host-{mac}">{cells}<td>{seen_cell}</td><td class=mark>{mark}</td><td>{form}</td></tr>')
    out.append("</tbody></table></body></html>\n")
    return "\n".join(out)


def _quote(value: str) -> str:
    """Percent-encode a query value (urllib.parse costs milliseconds of import)."""
    safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
    return "".join(c if c in safe else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in value)


def _error_page(status: int, message: str) -> str:
    return (f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{status_line(status)}</title>"
            f"</head><body><h1>{status_line(status)}</h1><p>{text(message)}</p></body></html>\n")
