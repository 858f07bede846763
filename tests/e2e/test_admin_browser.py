"""The admin page in a real browser: headless Chromium -> nginx's /admin/
location (auth_basic) -> openbsd-inetd -> `scgi-bootmenu CONFIG admin`, as
examples/nginx.conf and inetd.conf.example write it; then the next boot set
there is taken, once, by a real iPXE in QEMU.

The browser is driven over the DevTools protocol (tests/e2e/browser.py);
the stack's basic-auth credentials go with each of its requests, as a
browser's cached ones would, so only the app's own checks stop a forged
form. Assertions are on the state database and nginx's access log.
"""

from __future__ import annotations

import base64
import sqlite3
import struct
from pathlib import Path

import pytest

from scgi_inetd.bootmenu.state import State
from scgi_inetd.client import call
from tests.bootmenu_helpers import HOSTILE, store_hostile
from tests.e2e.browser import Browser
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USER, Stack, bootmenu, require_frontend
from tests.e2e.qemu import boot, explain, requested, uris

MAC, HYPHEN = "52:54:00:12:34:56", "52-54-00-12-34-56"
UUID = "12345678-1234-5678-9abc-def012345678"
ROW = f"document.querySelector('tr[id=\"host-{MAC}\"]')"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    chromium = Browser(tmp_path_factory.mktemp("chromium"))
    yield chromium
    chromium.close()


@pytest.fixture
def admin_state(web: Stack):
    """The stack's state database, the machine's mark cleared before and after."""
    require_frontend("scgi-bootmenu")
    config = web.path("/srv/scgi/bootmenu.toml")
    bootmenu(config, "done", MAC)
    yield State(str(web.root / "bootstate.sqlite"))
    bootmenu(config, "done", MAC)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_browser_sets_the_next_boot_and_ipxe_takes_it_once(web: Stack, browser: Browser, admin_state: State,
                                                           tmp_path: Path) -> None:
    # The machine has booted before (so the inventory lists it).
    assert web.request(f"/netboot/boot.ipxe?mac={HYPHEN}&uuid={UUID}").status == 200
    page = browser.page(AUTH)
    page.navigate(web.nginx.url("/admin/"))
    assert page.evaluate("document.title") == "Boot farm"
    assert page.evaluate(f"{ROW}.cells[1].textContent") == UUID
    assert page.evaluate("document.scripts.length") == 0  # the page works with JavaScript off
    width, height = png_size(page.screenshot(tmp_path / "admin.png"))
    assert width >= 800 and height >= 200
    page.submit(f"const form = {ROW}.querySelector('form'); form.entry.value = 'once'; form.mode.value = 'once';"
                "form.querySelector('button[value=set]').click()")
    assert page.evaluate("document.querySelector('p.changed').textContent") == \
        f"{MAC}: next boot was none, is now once (once)."
    page.screenshot(tmp_path / "admin-changed.png")
    assert admin_state.peek(MAC) == ("once", False)

    serial = tmp_path / "serial.log"
    entries = boot(web, serial, bootfile="/netboot/boot.ipxe", mac=MAC, uuid=UUID,
                   until=lambda seen: requested(seen, "/marker/ipxe/"))
    why = explain(entries, serial)
    seen = uris(entries)
    once = [n for n, uri in enumerate(seen) if f"/marker/once/{HYPHEN}" in uri]
    default = [n for n, uri in enumerate(seen) if f"/marker/ipxe/{HYPHEN}" in uri]
    menus = [n for n, uri in enumerate(seen) if uri.startswith("/netboot/boot.ipxe?")]
    assert len(once) == 1 and default, why
    assert len(menus) == 2 and menus[0] < once[0] < menus[1] < default[0], why
    assert admin_state.peek(MAC) is None

    page.navigate(web.nginx.url("/admin/"))
    cells = page.evaluate(f"[...{ROW}.cells].map(cell => cell.textContent)")
    assert cells[9:11] == ["ipxe-marker", "ipxe"] and cells[12] == "none", cells


def test_forged_forms_change_nothing(web: Stack, browser: Browser, admin_state: State) -> None:
    """A page on another site posting the form (even with a leaked token),
    and the page's own form without its token: 403, no mark."""
    assert web.request(f"/netboot/boot.ipxe?mac={HYPHEN}").status == 200
    page = browser.page(AUTH)
    page.navigate(web.nginx.url("/admin/"))
    token = page.evaluate(f"{ROW}.querySelector('input[name=csrf]').value")
    fields = {"csrf": token, "mac": MAC, "entry": "local", "mode": "once", "action": "set"}
    inputs = "".join(f'<input name="{name}" value="{value}">' for name, value in fields.items())
    (web.path("/srv/netboot") / "forged.html").write_text(
        f'<form method=post action="{web.nginx.url("/admin/next")}">{inputs}</form>')
    # localhost and 127.0.0.1 are different sites to the browser.
    page.navigate(f"http://localhost:{web.nginx.port}/forged.html")
    page.submit("document.forms[0].submit()")
    assert "403 Forbidden" in page.evaluate("document.title"), page.evaluate("document.body.textContent")
    assert admin_state.peek(MAC) is None

    page.navigate(web.nginx.url("/admin/"))
    page.submit(f"{ROW}.querySelector('input[name=csrf]').remove(); {ROW}.querySelector('button[value=set]').click()")
    assert "403 Forbidden" in page.evaluate("document.title")
    assert admin_state.peek(MAC) is None


def test_hostile_values_are_inert_in_the_browser(web: Stack, browser: Browser, admin_state: State,
                                                 tmp_path: Path) -> None:
    macs = store_hostile(web.root / "bootstate.sqlite")
    try:
        page = browser.page(AUTH)
        page.navigate(web.nginx.url("/admin/"))
        page.screenshot(tmp_path / "hostile.png")
        found = page.evaluate("""({
            scripts: document.scripts.length,
            headings: document.querySelectorAll('h1').length,
            images: document.images.length,
            tables: document.querySelectorAll('table').length,
            handlers: [...document.querySelectorAll('*')].filter(
                element => [...element.attributes].some(a => a.name.startsWith('on'))).length,
            pwned: typeof window.pwned,
            rows: Object.fromEntries([...document.querySelectorAll('tr[id^="host-52:54:00:aa:"]')].map(
                row => [row.id.slice(5), [...row.cells].map(cell => cell.textContent)])),
        })""")
        assert (found["scripts"], found["headings"], found["images"], found["tables"], found["handlers"],
                found["pwned"]) == (0, 1, 0, 1, 0, "undefined"), found
        for mac, (_, shown) in zip(macs, HOSTILE):
            assert found["rows"][mac][2:9] == [shown] * 7, (mac, found["rows"][mac])
    finally:
        db = sqlite3.connect(web.root / "bootstate.sqlite")
        with db:
            db.executemany("DELETE FROM hosts WHERE mac = ?", [(mac,) for mac in macs])
        db.close()


def test_only_the_admin_location_reaches_the_app(web: Stack) -> None:
    """nginx asks for the password; a client reaching the admin socket itself
    (openbsd-inetd makes it 0666) gets 403 even with a REMOTE_USER of its
    choosing; the PXE clients' socket has no admin routes."""
    require_frontend("scgi-bootmenu")
    assert web.request("/admin/api/hosts").status == 401
    answer = web.request("/admin/api/hosts", headers=AUTH)
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
    assert web.request("/admin/api/hosts", headers={**AUTH, "Bootmenu-Admin-Secret": "guess"}).status == 200
    direct = call(f"unix:{web.path('/run/scgi/admin.sock')}", uri="/admin/api/hosts",
                  params={"REMOTE_USER": ADMIN_USER, "SCRIPT_NAME": "/admin", "PATH_INFO": "/api/hosts"}, timeout=20)
    assert direct.status == 403 and b'"status": 403' in direct.body
    menu = call(f"unix:{web.path('/run/scgi/boot.sock')}", uri="/api/hosts", timeout=20)
    assert menu.status == 404
