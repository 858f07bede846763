"""The admin page and JSON API through WebTest with lint on: every route,
every refusal, CSRF, hostile stored values, and the database states that
give 503. A write to wsgi.errors fails a test unless it says expect_errors."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
from html.parser import HTMLParser

import pytest
import webtest

from scgi_inetd.bootmenu.admin import SECRET_VARIABLE, SESSION_COOKIE, make_admin_app
from scgi_inetd.bootmenu.cli import main
from scgi_inetd.bootmenu.state import HOST_COLUMNS, State
from scgi_inetd.client import call_exec
from tests.bootmenu_helpers import HOSTILE, MAC, TEXT_FIELDS, UUID, store_hostile, write_config
from tests.support import child_env, python_cmd

SECRET = "s3cret-for-tests"
OTHER = "52:54:00:00:00:02"
NEVER_SEEN = "52:54:00:00:00:99"


def admin(path, *, secret=SECRET, remote_user=False, environ=None) -> webtest.TestApp:
    """A TestApp on the admin app; `environ` is what the admin location sends."""
    if environ is None:
        environ = {SECRET_VARIABLE: secret} if secret else {}
        if remote_user:
            environ["REMOTE_USER"] = "alice"
    app = make_admin_app(str(path), secret=secret, remote_user=remote_user)
    return webtest.TestApp(app, lint=True, extra_environ=environ)


@pytest.fixture
def farm(tmp_path):
    """A config with two machines seen and one marked machine never seen."""
    path = write_config(tmp_path)
    state = State(str(tmp_path / "state.sqlite"))
    state.record({"mac": MAC, "uuid": UUID, "ip": "10.0.2.15", "hostname": "db1", "serial": "SN 1",
                  "buildarch": "x86_64", "platform": "efi", "manufacturer": "QEMU", "product": "Standard PC"},
                 "local", "ipxe")
    state.record({"mac": OTHER, "ip": "10.0.2.16"}, "memtest", "pxelinux")
    state.set_mark(NEVER_SEEN, "install", until_done=True)
    return path, state


def marks(state: State) -> dict:
    return {mac: state.peek(mac) for mac in (MAC, OTHER, NEVER_SEEN)}


def test_page_lists_every_machine_with_all_fields(farm):
    path, _ = farm
    response = admin(path).get("/")
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'none': no script
    row = _rows(response.text)[MAC]
    for value in (MAC, UUID, "10.0.2.15", "db1", "SN 1", "x86_64", "efi", "QEMU", "Standard PC", "local", "ipxe"):
        assert value in row, (value, row)
    assert "+00:00" in row or "-" in row.split("ipxe")[1]  # ISO 8601 with the UTC offset
    assert "install (until done)" in _rows(response.text)[NEVER_SEEN]
    assert "never" in _rows(response.text)[NEVER_SEEN]
    assert "3 machines, 1 with a next boot set" in response.text


def test_page_sorts_by_last_seen_and_filters(farm, tmp_path):
    path, state = farm
    db = sqlite3.connect(tmp_path / "state.sqlite")
    with db:
        db.execute("UPDATE hosts SET seen = 1000 WHERE mac = ?", (MAC,))
    app = admin(path)
    newest_first = list(_rows(app.get("/").text))
    assert newest_first == [OTHER, MAC, NEVER_SEEN]
    assert list(_rows(app.get("/?sort=seen").text)) == [MAC, OTHER, NEVER_SEEN]
    assert 'href="/?sort=seen"' in app.get("/").text and 'href="/?sort=-seen"' in app.get("/?sort=seen").text
    assert list(_rows(app.get("/?q=DB1").text)) == [MAC]
    assert list(_rows(app.get("/?q=pxelinux").text)) == [OTHER]
    assert list(_rows(app.get("/?q=until+done").text)) == [NEVER_SEEN]
    assert list(_rows(app.get("/?q=nothing-like-this").text)) == []


def test_page_is_mounted_under_script_name(farm):
    path, _ = farm
    app = admin(path)
    assert app.get("", extra_environ={"SCRIPT_NAME": "/admin"}, status=301).headers["Location"].endswith("/admin/")
    page = app.get("/", extra_environ={"SCRIPT_NAME": "/admin"})
    assert 'action="/admin/next"' in page.text
    assert f"{SESSION_COOKIE}=" in page.headers["Set-Cookie"]
    cookie = page.headers["Set-Cookie"]
    assert "Path=/admin;" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


@pytest.mark.parametrize("mode, expected, shown", [
    ("once", ("memtest", False), "memtest (once)"),
    ("until-done", ("memtest", True), "memtest (until done)"),
])
def test_form_sets_the_next_boot_and_confirms(farm, mode, expected, shown):
    path, state = farm
    form = _form(admin(path).get("/"), MAC)
    form["entry"], form["mode"] = "memtest", mode
    response = form.submit("action", value="set")
    assert state.peek(MAC) == expected
    assert f"{MAC}: next boot was none, is now {shown}." in response.text
    assert shown in _rows(response.text)[MAC]


def test_form_clears_the_next_boot(farm):
    path, state = farm
    response = _form(admin(path).get("/"), NEVER_SEEN).submit("action", value="clear")
    assert state.peek(NEVER_SEEN) is None
    assert f"{NEVER_SEEN}: next boot was install (until done), is now none." in response.text


def test_session_cookie_is_kept_and_token_is_per_session(farm, tmp_path):
    path, state = farm
    app = admin(path)
    first = app.get("/")
    assert "Set-Cookie" in first.headers and "Set-Cookie" not in app.get("/").headers
    token = _form(first, MAC)["csrf"].value
    assert _form(app.get("/"), MAC)["csrf"].value == token
    assert _form(admin(path).get("/"), MAC)["csrf"].value != token  # another browser, another token
    key = tmp_path / "state.sqlite.admin-key"
    assert len(key.read_bytes()) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600


def _post_fields(app, token, **extra):
    fields = {"csrf": token, "mac": MAC, "entry": "install", "mode": "once", "action": "set"}
    fields.update(extra)
    return {name: value for name, value in fields.items() if value is not None}


@pytest.mark.parametrize("change, why", [
    ({"csrf": None}, "no token"),
    ({"csrf": "0" * 32}, "wrong token"),
    ({"csrf": "other-session"}, "another session's token"),
    ({"csrf": "t\u00f6ken"}, "a token that is not ASCII"),
    ({"cookie": None}, "no session cookie"),
    ({"headers": {"Origin": "http://evil.example"}}, "other origin"),
    ({"headers": {"Origin": "null"}}, "opaque origin"),
    ({"headers": {"Sec-Fetch-Site": "cross-site"}}, "cross-site"),
    ({"headers": {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost"}}, "sibling site"),
])
def test_csrf_attempts_change_nothing(farm, change, why):
    path, state = farm
    app = admin(path)
    token = _form(app.get("/"), MAC)["csrf"].value
    if change.get("csrf") == "other-session":
        change["csrf"] = _form(admin(path).get("/"), MAC)["csrf"].value
    if "cookie" in change:
        app.reset()
    fields = _post_fields(app, token, **{key: value for key, value in change.items() if key == "csrf"})
    before = marks(state)
    response = app.post("/next", fields, headers=change.get("headers", {}), status=403, expect_errors=True)
    assert marks(state) == before, why
    assert response.content_type == "text/html" and "<p>" in response.text
    assert response.errors.count("\n") == 1 and "403" in response.errors


def test_same_origin_post_is_accepted(farm):
    path, state = farm
    app = admin(path)
    token = _form(app.get("/"), MAC)["csrf"].value
    for headers in ({"Origin": "http://localhost:8443"}, {"Sec-Fetch-Site": "same-origin"}):
        app.post("/next", _post_fields(app, token), headers=headers)
        assert state.peek(MAC) == ("install", False)
        state.done(MAC)


@pytest.mark.parametrize("change, status", [
    ({"mac": NEVER_SEEN.replace("99", "98")}, 404),
    ({"mac": "not-a-mac"}, 404),
    ({"entry": "windows"}, 404),
    ({"mode": "twice"}, 400),
    ({"action": "reboot"}, 400),
])
def test_form_bad_input_writes_nothing(farm, change, status):
    path, state = farm
    app = admin(path)
    token = _form(app.get("/"), MAC)["csrf"].value
    before = marks(state)
    response = app.post("/next", _post_fields(app, token, **change), status=status, expect_errors=True)
    assert marks(state) == before
    assert response.content_type == "text/html" and response.errors.count("\n") == 1
    assert state.host(NEVER_SEEN.replace("99", "98")) is None


def test_form_needs_post_and_a_form_body(farm):
    path, _ = farm
    app = admin(path)
    assert app.get("/next", status=405, expect_errors=True).headers["Allow"] == "POST"
    assert app.post("/", {}, status=405, expect_errors=True).headers["Allow"] == "GET"
    app.post("/next", b"{}", content_type="application/json", status=415, expect_errors=True)
    app.post("/next", "x" * 20000, content_type="application/x-www-form-urlencoded", status=413, expect_errors=True)


# The JSON API.

def test_api_hosts(farm):
    path, _ = farm
    response = admin(path).get("/api/hosts")
    assert response.content_type == "application/json"
    hosts = {host["mac"]: host for host in response.json["hosts"]}
    assert list(hosts)[2] == NEVER_SEEN and set(hosts) == {MAC, OTHER, NEVER_SEEN}  # seen in the same second
    host = hosts[MAC]
    assert {key: host[key] for key in HOST_COLUMNS if key != "seen"} == {
        "mac": MAC, "uuid": UUID, "ip": "10.0.2.15", "hostname": "db1", "serial": "SN 1", "buildarch": "x86_64",
        "platform": "efi", "manufacturer": "QEMU", "product": "Standard PC", "entry": "local", "via": "ipxe"}
    assert host["seen"][:2] == "20" and host["seen"][19] in "+-" and host["next"] is None
    assert hosts[NEVER_SEEN]["seen"] is None
    assert hosts[NEVER_SEEN]["next"]["entry"] == "install" and hosts[NEVER_SEEN]["next"]["until_done"] is True


def test_api_one_host_in_any_mac_form(farm):
    path, _ = farm
    app = admin(path)
    for form in (MAC, MAC.replace(":", "-"), MAC.replace(":", "").upper()):
        assert app.get(f"/api/hosts/{form}").json["hostname"] == "db1"


@pytest.mark.parametrize("url", [f"/api/hosts/{NEVER_SEEN[:-2]}98", "/api/hosts/zz", f"/api/hosts/{MAC}/other",
                                 f"/api/hosts/{MAC}/", "/api/nothing", "/nothing"])
def test_unknown_paths_and_machines_are_404(farm, url):
    path, _ = farm
    response = admin(path).get(url, status=404, expect_errors=True)
    if url.startswith("/api/"):
        assert response.json["status"] == 404 and response.json["error"]
    else:
        assert response.content_type == "text/html"
    assert response.errors.count("\n") == 1


@pytest.mark.parametrize("until_done", [False, True])
def test_api_put_and_delete_next(farm, until_done):
    path, state = farm
    app = admin(path)
    response = app.put_json(f"/api/hosts/{MAC}/next", {"entry": "rescue", "until_done": until_done})
    assert state.peek(MAC) == ("rescue", until_done)
    assert response.json["next"]["entry"] == "rescue" and response.json["next"]["until_done"] is until_done
    assert response.json["previous"] is None
    response = app.delete(f"/api/hosts/{MAC}/next")
    assert state.peek(MAC) is None
    assert response.json["next"] is None and response.json["previous"]["entry"] == "rescue"
    assert app.delete(f"/api/hosts/{MAC}/next").json["previous"] is None  # nothing to clear: fine


def test_api_put_until_done_defaults_to_once(farm):
    path, state = farm
    admin(path).put_json(f"/api/hosts/{OTHER}/next", {"entry": "install"})
    assert state.peek(OTHER) == ("install", False)


@pytest.mark.parametrize("url, body, content_type, status", [
    (f"/api/hosts/{NEVER_SEEN[:-2]}98/next", b'{"entry": "install"}', "application/json", 404),
    (f"/api/hosts/{MAC}/next", b'{"entry": "windows"}', "application/json", 404),
    (f"/api/hosts/{MAC}/next", b'{"entry": "install"', "application/json", 400),
    (f"/api/hosts/{MAC}/next", b'["install"]', "application/json", 400),
    (f"/api/hosts/{MAC}/next", b'{"entry": 1}', "application/json", 400),
    (f"/api/hosts/{MAC}/next", b'{"entry": "install", "until_done": "yes"}', "application/json", 400),
    (f"/api/hosts/{MAC}/next", b'{"entry": "install", "once": true}', "application/json", 400),
    (f"/api/hosts/{MAC}/next", b"\xff\xfe", "application/json", 400),
    (f"/api/hosts/{MAC}/next", b'{"entry": "install"}', "text/plain", 415),
    (f"/api/hosts/{MAC}/next", b'{"entry": "' + b"x" * 20000 + b'"}', "application/json", 413),
])
def test_api_bad_put_writes_nothing(farm, url, body, content_type, status):
    path, state = farm
    before = marks(state)
    response = admin(path).put(url, body, content_type=content_type, status=status, expect_errors=True)
    assert marks(state) == before
    assert response.content_type == "application/json" and response.json["status"] == status
    assert response.errors.count("\n") == 1


def test_api_delete_unknown_machine_is_404(farm):
    path, state = farm
    response = admin(path).delete(f"/api/hosts/{NEVER_SEEN[:-2]}98/next", status=404, expect_errors=True)
    assert response.json == {"error": f"no machine {NEVER_SEEN[:-2]}98 seen", "status": 404}


@pytest.mark.parametrize("method, url, allow", [
    ("POST", "/api/hosts", "GET"), ("DELETE", "/api/hosts", "GET"), ("PUT", "/api/entries", "GET"),
    ("PUT", f"/api/hosts/{MAC}", "GET"), ("GET", f"/api/hosts/{MAC}/next", "PUT, DELETE"),
    ("POST", f"/api/hosts/{MAC}/next", "PUT, DELETE"),
])
def test_api_wrong_method_is_405(farm, method, url, allow):
    path, state = farm
    before = marks(state)
    response = admin(path).request(url, method=method, body=b"{}", content_type="application/json",
                                   status=405, expect_errors=True)
    assert response.headers["Allow"] == allow and response.json["status"] == 405
    assert marks(state) == before


def test_api_entries(farm):
    path, _ = farm
    entries = admin(path).get("/api/entries").json["entries"]
    assert [entry["name"] for entry in entries] == ["local", "install", "memtest", "rescue", "disk"]
    assert entries[0] == {"name": "local", "label": "local", "kind": "local", "in_menu": True, "default": True}
    assert entries[1]["label"] == "Install {{role}}" and entries[1]["kind"] == "linux"


def test_api_agrees_with_the_cli(farm):
    """The CLI and the API write and read the same state."""
    path, _ = farm
    out = io.StringIO()
    assert main([str(path), "next", OTHER, "rescue", "--until-done"], stdout=out, stderr=io.StringIO()) == 0
    assert admin(path).get(f"/api/hosts/{OTHER}").json["next"]["entry"] == "rescue"
    admin(path).delete(f"/api/hosts/{OTHER}/next")
    out = io.StringIO()
    assert main([str(path), "hosts"], stdout=out, stderr=io.StringIO()) == 0
    assert "rescue" not in out.getvalue()


# Who may ask.

ROUTES = [("GET", "/"), ("GET", ""), ("POST", "/next"), ("GET", "/api/hosts"), ("GET", f"/api/hosts/{MAC}"),
          ("PUT", f"/api/hosts/{MAC}/next"), ("DELETE", f"/api/hosts/{MAC}/next"), ("GET", "/api/entries"),
          ("GET", "/nothing")]


@pytest.mark.parametrize("configured, environ", [
    ({"secret": SECRET}, {}),
    ({"secret": SECRET}, {SECRET_VARIABLE: "guess"}),
    ({"secret": SECRET}, {SECRET_VARIABLE: SECRET + " "}),
    ({"secret": SECRET}, {SECRET_VARIABLE: "s\u00e9cret\udcff"}),
    ({"secret": SECRET}, {"HTTP_BOOTMENU_ADMIN_SECRET": SECRET}),  # a client's header is not the variable
    ({"secret": SECRET}, {"REMOTE_USER": "alice"}),
    ({"secret": None, "remote_user": True}, {}),
    ({"secret": None, "remote_user": True}, {"REMOTE_USER": ""}),
    ({"secret": SECRET, "remote_user": True}, {SECRET_VARIABLE: SECRET}),
    ({"secret": SECRET, "remote_user": True}, {"REMOTE_USER": "alice"}),
], ids=["no-secret", "wrong-secret", "secret-plus-space", "not-ascii", "header-not-variable", "user-instead-of-secret",
        "no-user", "empty-user", "both-needed-user-missing", "both-needed-secret-missing"])
@pytest.mark.parametrize("method, url", ROUTES, ids=[f"{m} {u or '(mount)'}" for m, u in ROUTES])
def test_refused_unless_through_the_admin_location(farm, configured, environ, method, url):
    path, state = farm
    app = admin(path, environ=environ, **configured)
    before = marks(state)
    response = app.request(url, method=method, body=b'{"entry": "install"}', content_type="application/json",
                           status=403, expect_errors=True)
    assert marks(state) == before
    if url.startswith("/api/"):
        assert response.json["status"] == 403
    else:
        assert response.content_type == "text/html" and "Forbidden" in response.text
    assert response.errors.count("\n") == 1 and "not through the admin location" in response.errors


@pytest.mark.parametrize("configured, environ", [
    ({"secret": None, "remote_user": True}, {"REMOTE_USER": "alice"}),
    ({"secret": SECRET, "remote_user": True}, {SECRET_VARIABLE: SECRET, "REMOTE_USER": "alice"}),
])
def test_admitted_through_the_admin_location(farm, configured, environ):
    path, state = farm
    admin(path, environ=environ, **configured).put_json(f"/api/hosts/{MAC}/next", {"entry": "install"})
    assert state.peek(MAC) == ("install", False)


def test_an_admin_app_without_a_check_cannot_be_made(tmp_path):
    with pytest.raises(ValueError):
        make_admin_app(str(write_config(tmp_path)))


# The state database unavailable, the config invalid.

def test_missing_state_database_gives_503(tmp_path):
    path = write_config(tmp_path, init=False)
    app = admin(path)
    for response in (app.get("/", status=503, expect_errors=True),
                     app.put_json(f"/api/hosts/{MAC}/next", {"entry": "install"}, status=503, expect_errors=True)):
        assert response.errors.count("\n") == 1 and "missing" in response.errors
    assert response.json == {"error": "state database unavailable; see the log", "status": 503}
    assert not (tmp_path / "state.sqlite").exists()


def test_locked_state_database_gives_503_and_writes_nothing(tmp_path):
    path = write_config(tmp_path, timeout=0.05)
    state = State(str(tmp_path / "state.sqlite"))
    state.record({"mac": MAC}, "local", "ipxe")
    app = admin(path)
    token = _form(app.get("/"), MAC)["csrf"].value
    holder = sqlite3.connect(tmp_path / "state.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        for response in (
                app.put_json(f"/api/hosts/{MAC}/next", {"entry": "install"}, status=503, expect_errors=True),
                app.delete(f"/api/hosts/{MAC}/next", status=503, expect_errors=True),
                app.post("/next", _post_fields(app, token), status=503, expect_errors=True)):
            assert "locked" in response.errors and response.errors.count("\n") == 1
    finally:
        holder.execute("ROLLBACK")
    assert state.peek(MAC) is None


def test_invalid_config_gives_500(farm):
    path, _ = farm
    path.write_text(path.read_text().replace('default = "local"', 'default = "windows"'))
    response = admin(path).get("/api/hosts", status=500, expect_errors=True)
    assert response.json["status"] == 500 and "dangling default" in response.errors


def test_hostile_values_are_inert_on_the_page(tmp_path):
    path = write_config(tmp_path)
    macs = store_hostile(tmp_path / "state.sqlite")
    page = admin(path).get("/").text
    parsed = _Page(page)
    assert parsed.tags - {"html", "head", "meta", "title", "style", "body", "h1", "p", "form", "label", "input",
                          "button", "a", "table", "thead", "tbody", "tr", "th", "td", "time", "br", "small",
                          "select", "option"} == set()
    assert all(not name.startswith("on") for name in parsed.attributes), parsed.attributes
    assert parsed.comments == [] and "<script" not in page and "<img" not in page
    for mac, (_, shown) in zip(macs, HOSTILE):
        cells = parsed.rows[f"host-{mac}"]
        assert cells[2:9] == [shown] * 7, (mac, cells)  # serial .. product, as text
    assert len(parsed.rows) == len(HOSTILE)


def test_hostile_values_round_trip_through_the_api(tmp_path):
    path = write_config(tmp_path)
    macs = store_hostile(tmp_path / "state.sqlite")
    response = admin(path).get("/api/hosts")
    hosts = {host["mac"]: host for host in response.json["hosts"]}
    for mac, (value, _) in zip(macs, HOSTILE):
        assert all(hosts[mac][field] == value for field in TEXT_FIELDS)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# The command line and one-shot serving.

def test_cli_admin_needs_a_check(tmp_path):
    path = write_config(tmp_path)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for args in ([], ["--secret-file", str(tmp_path / "missing")], ["--secret-file", str(empty)], ["--bogus"]):
        err = io.StringIO()
        assert main([str(path), "admin", *args], stdout=io.StringIO(), stderr=err) == 2, args
        assert "admin" in err.getvalue()
    out = io.StringIO()
    assert main([str(path), "admin", "--help"], stdout=out, stderr=io.StringIO()) == 0
    assert "--secret-file" in out.getvalue()


def test_one_shot_admin_as_inetd_runs_it(farm, tmp_path):
    path, state = farm
    secret = tmp_path / "admin.secret"
    secret.write_text(SECRET + "\n")
    os.chmod(secret, 0o600)
    log = tmp_path / "admin.log"
    argv = python_cmd("scgi-bootmenu", "--stderr", str(log), str(path), "admin", "--secret-file", str(secret))
    env = child_env()
    response = call_exec(argv, uri="/api/hosts", params={SECRET_VARIABLE: SECRET}, env=env, timeout=20)
    assert response.status == 200
    assert {host["mac"] for host in json.loads(response.body)["hosts"]} == {MAC, OTHER, NEVER_SEEN}
    body = b'{"entry": "memtest", "until_done": true}'
    response = call_exec(argv, "PUT", f"/api/hosts/{MAC}/next", body=body, headers=[("Content-Type", "application/json")],
                         params={SECRET_VARIABLE: SECRET}, env=env, timeout=20)
    assert response.status == 200 and state.peek(MAC) == ("memtest", True)
    response = call_exec(argv, "DELETE", f"/api/hosts/{MAC}/next", env=env, timeout=20)
    assert response.status == 403 and state.peek(MAC) == ("memtest", True)
    assert log.read_text().count("\n") == 1 and "403" in log.read_text()


# Helpers: the page's rows and forms.

def _form(response, mac):
    return next(form for form in response.forms.values() if form.method.lower() == "post" and form["mac"].value == mac)


def _rows(page: str) -> dict[str, str]:
    """The machine rows in order: mac -> the row's text."""
    return {key[len("host-"):]: " ".join(cells) for key, cells in _Page(page).rows.items()}


class _Page(HTMLParser):
    """Tags, attribute names, comments, and each machine row's cell texts."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.comments: list[str] = []
        self.rows: dict[str, list[str]] = {}
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        if tag == "tr" and dict(attrs).get("id", "").startswith("host-"):
            self._row = self.rows.setdefault(dict(attrs)["id"], [])
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_comment(self, data):
        self.comments.append(data)


def test_resident_admin(farm, tmp_path, serving):
    """The same serving code as the menu's: --listen, a child per connection."""
    from scgi_inetd.client import call

    path, state = farm
    secret = tmp_path / "admin.secret"
    secret.write_text(SECRET)
    server = serving("scgi-bootmenu", str(path), "admin", "--secret-file", str(secret), log=None)
    address = server.address
    body = b'{"entry": "rescue"}'
    put = call(address, "PUT", f"/api/hosts/{OTHER}/next", body=body, headers=[("Content-Type", "application/json")],
               params={SECRET_VARIABLE: SECRET}, timeout=20)
    assert put.status == 200 and state.peek(OTHER) == ("rescue", False)
    assert call(address, uri="/api/hosts", timeout=20).status == 403
    page = call(address, uri="/", params={SECRET_VARIABLE: SECRET}, timeout=20)
    assert page.status == 200 and b"rescue (once)" in page.body
    assert server.stop(30) == 0


@pytest.mark.parametrize("zone, expected", [
    ("UTC0", "2023-11-14T22:13:20+00:00"),
    ("IST-5:30", "2023-11-15T03:43:20+05:30"),  # POSIX TZ: no tzdata needed
    ("BRT+3", "2023-11-14T19:13:20-03:00"),
])
def test_times_are_local_iso_8601(monkeypatch, zone, expected):
    import time

    from scgi_inetd.bootmenu.admin import local_time

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert local_time(1700000000) == expected
    finally:
        monkeypatch.undo()
        time.tzset()
