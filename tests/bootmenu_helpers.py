"""Configs and app builders shared by the boot-menu tests."""

from __future__ import annotations

from pathlib import Path

import webtest

from scgi_inetd.bootmenu.app import make_app
from scgi_inetd.bootmenu.state import State

BASE = """
[server]
state = "{state}"
state_timeout = {timeout}

[variables]
base = "http://boot.example"
hostname = "unnamed"
role = "none"

[menu]
title = "Menu for {{{{hostname}}}}"
default = "local"
timeout = 7

[[entries]]
name = "local"
kind = "local"

[[entries]]
name = "install"
label = "Install {{{{role}}}}"
kind = "linux"
kernel = "{{{{base}}}}/linux"
initrd = ["{{{{base}}}}/initrd.gz", "{{{{base}}}}/extra.gz"]
args = "auto url={{{{base}}}}/files/preseed?mac={{{{mac}}}} host={{{{hostname}}}} ${{net0/ip}}"

[[entries]]
name = "memtest"
kind = "memtest"
kernel = "{{{{base}}}}/memtest86+.bin"

[[entries]]
name = "rescue"
kind = "shell"

[[entries]]
name = "disk"
kind = "sanboot"
url = "iscsi:10.0.0.9::::iqn.x:{{{{mac_hyphen}}}}"

[files]
preseed = "d-i netcfg/get_hostname string {{{{hostname}}}}\\nd-i mirror/http/hostname string boot.example\\n"
"""

MAC = "52:54:00:12:34:56"
UUID = "12345678-1234-5678-9abc-def012345678"
PXE_UUID = "78563412-3412-7856-9abc-def012345678"  # the same machine, as PXELINUX writes it


def write_config(tmp_path: Path, extra: str = "", *, timeout: float = 2.0, init: bool = True) -> Path:
    """A config file (BASE + extra) with its state database in tmp_path."""
    path = tmp_path / "bootmenu.toml"
    path.write_text(BASE.format(state=tmp_path / "state.sqlite", timeout=timeout) + extra)
    if init:
        State(str(tmp_path / "state.sqlite"), create=True).close()
    return path


def make_testapp(path: Path) -> webtest.TestApp:
    return webtest.TestApp(make_app(str(path)), lint=True)
