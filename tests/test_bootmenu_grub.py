"""GRUB menus: the renderer's quoting, GRUB's config names, the bootstrap."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from scgi_inetd.bootmenu import config as configuration, grub, identity, menu
from scgi_inetd.bootmenu.state import State
from tests.bootmenu_helpers import MAC, UUID, make_testapp, write_config

RULES = """
[[rules]]
name = "by-mac"
match = { mac = "52-54-00-12-34-56" }
default = "install"
timeout = 2

[[rules]]
name = "by-ip"
match = { ip = "10.0.2.16" }
default = "memtest"
"""

# Values GRUB's script language would expand or read as syntax, unquoted.
HOSTILE = ["$(reboot)", "${prefix}", "$root", "'", "'; reboot; '", '"', "\\", "{", "}", ";reboot", "# x",
           "a&&b", "a|b", "x\\'y", "`id`", "$", "''", "menuentry x { reboot }"]


def hostile_config(value: str) -> dict:
    return configuration.validate({
        "server": {"state": "/nonexistent"},
        "menu": {"default": "a", "title": value, "timeout": 0},
        "entries": [{"name": "a", "kind": "linux", "label": value, "kernel": "http://h/" + value,
                     "initrd": [value], "args": f"x={value} {value}"},
                    {"name": "b", "kind": "chain", "label": value, "url": value},
                    {"name": "c", "kind": "local", "label": value}],
    })


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_single_literal_words(value):
    text = grub.render(menu.resolve(hostile_config(value), {}))
    lines = text.splitlines()
    # GRUB's quoting is sh's for these characters: shlex in POSIX mode reads each line as GRUB would.
    words = {}
    for line in lines[1:]:
        if line.strip():
            words.setdefault(line.split()[0], shlex.split(line, comments=False))
    assert words["linux"] == ["linux", "(http,h)/" + value] + f"x={value} {value}".split()
    assert words["initrd"] == ["initrd", value]
    assert words["chainloader"][:2] == ["chainloader", value]
    assert words["menuentry"] == ["menuentry", value, "--id", "a", "{"]
    assert sum(line.startswith("menuentry ") for line in lines) == 3
    assert [line for line in lines if line.strip() in ("reboot", "}")].count("}") == 3
    check = shutil.which("grub-script-check")
    if check:
        done = subprocess.run([check], input=text, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_render_structure():
    config = hostile_config("plain")
    text = grub.render(menu.resolve(config, {"mac": MAC}))
    assert text.splitlines()[:3] == [f"# scgi-bootmenu: {MAC}; rules: none", "set default='a'", "set timeout=-1"]
    forced = grub.render(menu.resolve(config, {"mac": MAC}, "c"))
    assert "set default='c'\nset timeout=0\n" in forced
    assert "search --no-floppy --file --set=root /EFI/BOOT/BOOTX64.EFI" in forced
    assert grub.grub_path("http://10.0.2.2:8080/a/b?x=1") == "(http,10.0.2.2:8080)/a/b?x=1"
    assert grub.grub_path("/marker/x") == "/marker/x"


def test_grub_names_in_measured_order():
    machine = {"mac": "52:54:00:12:34:57", "ip": "10.0.2.15", "uuid": UUID}
    assert identity.grub_names(machine) == [
        "grub.cfg-01-52-54-00-12-34-57", "grub.cfg-0A00020F", "grub.cfg-0A00020", "grub.cfg-0A0002",
        "grub.cfg-0A000", "grub.cfg-0A00", "grub.cfg-0A0", "grub.cfg-0A", "grub.cfg-0", "grub.cfg"]
    for name in identity.grub_names(machine):
        assert identity.from_grub_name(name) is not None
    for bad in ("grub.cfg-default", "grub.cfg-78563412-3412-7856-9abc-def012345678", "grub.cfg.x", "x", "grub.cfg-"):
        assert identity.from_grub_name(bad) is None


@pytest.fixture
def app(tmp_path):
    return make_testapp(write_config(tmp_path, RULES))


def test_per_machine_names_answer_only_for_a_rule(app, tmp_path):
    text = app.get("/grub/grub.cfg-01-52-54-00-12-34-56").text
    assert text.startswith(f"# scgi-bootmenu: {MAC}; rules: by-mac\nset default='install'\nset timeout=2\n")
    assert "  linux '(http,boot.example)/linux' 'auto'" in text
    app.get("/grub/grub.cfg-01-52-54-00-12-34-99", status=404)
    assert "rules: by-ip" in app.get("/grub/grub.cfg-0A000210").text
    app.get("/grub/grub.cfg-0A0002", status=404)
    app.get("/grub/grub.cfg-../x", status=404)
    hosts = State(str(tmp_path / "state.sqlite")).hosts()
    assert [(host["mac"], host["via"], host["entry"]) for host in hosts] == [(MAC, "grub", "install")]


def test_a_mark_makes_the_per_machine_name_answer(app, tmp_path):
    State(str(tmp_path / "state.sqlite")).set_mark("52:54:00:00:00:09", "memtest", False)
    text = app.get("/grub/grub.cfg-01-52-54-00-00-00-09").text
    assert "set default='memtest'\nset timeout=0" in text
    app.get("/grub/grub.cfg-01-52-54-00-00-00-09", status=404)  # used once


def test_bootstrap_asks_again_with_the_identity(app):
    text = app.get("/grub/grub.cfg", extra_environ={"HTTP_HOST": "10.0.2.2", "SERVER_PORT": "8080",
                                                     "SCRIPT_NAME": "/netboot"}).text
    line = text.splitlines()[-1]
    assert line == ('configfile "(http,10.0.2.2:8080)/netboot/grub/grub.cfg?mac=${net_default_mac}'
                    '&uuid=${bootmenu_uuid}&ip=${net_default_ip}&buildarch=${grub_cpu}&platform=${bootmenu_platform}"')
    text = app.get(f"/grub/grub.cfg?mac={MAC}&uuid={UUID}&platform=efi&buildarch=x86_64").text
    assert "rules: by-mac" in text


@pytest.mark.parametrize("environ", [
    {"HTTP_HOST": "evil\"; reboot; \"", "SERVER_PORT": "80"},
    {"HTTP_HOST": "10.0.2.2", "SERVER_PORT": "80;reboot"},
    {"HTTP_HOST": "10.0.2.2", "SERVER_PORT": "80", "SCRIPT_NAME": "/a\"b"},
    {"HTTP_HOST": "", "SERVER_NAME": "", "SERVER_PORT": "80"},
])
def test_bootstrap_refuses_a_host_it_cannot_write(app, environ):
    response = app.get("/grub/grub.cfg", extra_environ=environ, status=400, expect_errors=True)
    assert response.text == "bad Host\n"
