"""Configs and app builders shared by the boot-menu tests."""

from __future__ import annotations

import sqlite3
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


# Hostile values a machine chose, stored as they came (an older version, a
# hand edit): (stored, what the page shows as text).
HOSTILE = [
    ("<script>window.pwned=1</script>", "<script>window.pwned=1</script>"),
    ('"><img src=x onerror=alert(1)>', '"><img src=x onerror=alert(1)>'),
    ("' onmouseover='alert(1)' x='", "' onmouseover='alert(1)' x='"),
    ("</td></tr></table><h1>owned</h1>", "</td></tr></table><h1>owned</h1>"),
    ("&lt;b&gt; &amp; &#x3c;", "&lt;b&gt; &amp; &#x3c;"),
    ("bell\x07 nul\x00 esc\x1b[31m", "bell\\x07 nul\\x00 esc\\x1b[31m"),
    ("two\nlines\r\ttab", "two\\x0alines\\x0d\\x09tab"),
    ("\u202egnp.exe del\x7f c1\x85", "\\u202egnp.exe del\\x7f c1\\x85"),
    ("<!-- --><![CDATA[ x ]]>", "<!-- --><![CDATA[ x ]]>"),
]
TEXT_FIELDS = ("uuid", "ip", "hostname", "serial", "buildarch", "platform", "manufacturer", "product", "entry", "via")


def store_hostile(state_path) -> list[str]:
    """One machine per hostile value, the value in every text field; their MACs."""
    macs = [f"52:54:00:aa:00:{n:02x}" for n in range(len(HOSTILE))]
    db = sqlite3.connect(state_path)
    with db:
        for mac, (value, _) in zip(macs, HOSTILE):
            db.execute("INSERT INTO hosts (mac, " + ", ".join(TEXT_FIELDS) + ", seen) VALUES (?"
                       + ", ?" * len(TEXT_FIELDS) + ", 1700000000)", (mac, *[value] * len(TEXT_FIELDS)))
    db.close()
    return macs
