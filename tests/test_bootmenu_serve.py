"""bin/scgi-bootmenu on the real front-end: one-shot on a socketpair as inetd
runs it, and resident on a unix socket."""

from __future__ import annotations

from scgi_inetd.bootmenu.state import State
from scgi_inetd.client import call, call_exec
from tests.bootmenu_helpers import MAC, write_config
from tests.support import child_env, python_cmd


def header(response, name):
    return next(value for key, value in response.headers if key.lower() == name.lower())


def test_one_shot_menu_and_inventory(tmp_path):
    path = write_config(tmp_path)
    log = tmp_path / "log"
    argv = python_cmd("scgi-bootmenu", str(path), "--stderr", str(log))
    response = call_exec(argv, uri=f"/boot.ipxe?mac={MAC}&uuid=12345678-1234-5678-9abc-def012345678",
                         env=child_env(), timeout=20)
    assert response.status == 200
    assert header(response, "Cache-Control") == "no-store"
    assert header(response, "Content-Type").startswith("text/plain")
    assert response.body.startswith(b"#!ipxe\n") and b"choose --default local" in response.body
    hosts = State(str(tmp_path / "state.sqlite")).hosts()
    assert [(host["mac"], host["via"], host["entry"]) for host in hosts] == [(MAC, "ipxe", "local")]
    assert log.read_text() == ""


def test_one_shot_chain_back_under_a_script_name(tmp_path):
    path = write_config(tmp_path)
    argv = python_cmd("scgi-bootmenu", "--script-name", "/netboot", str(path))
    response = call_exec(argv, uri="/netboot/boot.ipxe", env=child_env(), timeout=20)
    assert response.status == 200 and response.body.startswith(b"#!ipxe\nchain boot.ipxe?mac=${net0/mac:hexhyp}&")
    assert call_exec(argv, uri="/elsewhere/boot.ipxe", env=child_env(), timeout=20).status == 404


def test_one_shot_invalid_config_logs_one_line(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('kind = "shell"', 'kind = "shell"\nlabel = "x\\ny"'))
    log = tmp_path / "log"
    argv = python_cmd("scgi-bootmenu", "--stderr", str(log), str(path))
    response = call_exec(argv, uri=f"/boot.ipxe?mac={MAC}", env=child_env(), timeout=20)
    assert response.status == 500 and b"ipxe" not in response.body
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "entries[3].label: newline" in lines[0]


def test_resident(tmp_path, serving):
    path = write_config(tmp_path)
    server = serving("scgi-bootmenu", str(path), log=None)
    address = server.address
    State(str(tmp_path / "state.sqlite")).set_mark(MAC, "memtest", False)
    first = call(address, uri=f"/boot.ipxe?mac={MAC}", timeout=20)
    second = call(address, uri=f"/boot.ipxe?mac={MAC}", timeout=20)
    assert b"\ngoto memtest\n" in first.body and b"goto memtest" not in second.body
    cookie = [("Cookie", "_Syslinux_BOOTIF=01-52-54-00-12-34-56")]
    third = call(address, uri="/pxelinux.cfg/01-52-54-00-12-34-56", headers=cookie, timeout=20)
    assert third.status == 404
    assert call(address, uri="/pxelinux.cfg/default", headers=cookie, timeout=20).status == 200
    assert server.stop(30) == 0
