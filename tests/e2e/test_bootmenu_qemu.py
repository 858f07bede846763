"""The boot menu on the real stack: QEMU's iPXE ROM -> nginx -> openbsd-inetd
-> bin/scgi-bootmenu, with lpxelinux.0 chained from iPXE.

One boot: the machine has a one-shot mark for the `pxelinux` entry, so the
first menu chains lpxelinux.0; PXELINUX asks for its byte-swapped UUID name,
which a rule written with iPXE's UUID form matches at once; its menu boots
the local disk (none), which returns to iPXE; iPXE's menu then times out
into `report`, which calls /done and reboots (QEMU exits). Assertions are on
nginx's access log and the state database; the serial log only explains.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from scgi_inetd.bootmenu.state import State
from tests.support import child_env, python_cmd, wait_for

MAC = "52:54:00:12:34:56"
UUID = "12345678-1234-5678-9abc-def012345678"
PXELINUX_FILES = {"lpxelinux.0": "/usr/lib/PXELINUX/lpxelinux.0"}
PXELINUX_FILES.update({name: f"/usr/lib/syslinux/modules/bios/{name}"
                       for name in ("ldlinux.c32", "menu.c32", "libutil.c32", "libcom32.c32")})

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("nginx", "inetd", "qemu-system-x86_64"))
    or not all(os.path.exists(path) for path in PXELINUX_FILES.values()),
    reason="needs nginx, openbsd-inetd, qemu-system-x86 with ipxe-qemu, pxelinux and syslinux-common")

CONFIG = """
[server]
state = "{state}"

[menu]
title = "e2e {{{{mac}}}}"
default = "report"
timeout = 1
entries = ["local", "report", "pxelinux"]

[[entries]]
name = "local"
kind = "local"

[[entries]]
name = "report"
kind = "script"
lines = ["imgfetch done?mac={{{{mac_hyphen}}}} ||", "echo E2E-REPORTED", "sleep 1", "reboot"]

[[entries]]
name = "pxelinux"
kind = "chain"
url = "lpxelinux.0"

[[rules]]
name = "by-uuid"
match = {{ uuid = "{uuid}" }}
timeout = 1
"""

NGINX = """
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        location ~ ^/(boot\\.ipxe|pxelinux\\.cfg/|files/|done) {{
            include /etc/nginx/scgi_params;
            scgi_pass unix:{d}/bootmenu.sock;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unix_listening(path: Path) -> bool:
    # Probing by connecting would spawn a handler: read /proc/net/unix instead.
    return any(line.endswith(" " + str(path)) for line in Path("/proc/net/unix").read_text().splitlines())


def test_ipxe_and_pxelinux_boot_through_nginx_and_inetd(tmp_path):
    d = tmp_path
    (d / "tmp").mkdir()
    www = d / "www"
    www.mkdir()
    for name, source in PXELINUX_FILES.items():
        os.symlink(source, www / name)
    config = d / "bootmenu.toml"
    config.write_text(CONFIG.format(state=d / "state.sqlite", uuid=UUID))
    bootmenu = python_cmd("scgi-bootmenu")
    env = child_env()
    for command in (["check"], ["init"], ["next", MAC, "pxelinux"]):
        subprocess.run([*bootmenu, str(config), *command], check=True, env=env, capture_output=True)
    os.chmod(d, 0o755)

    sock = d / "bootmenu.sock"
    (d / "inetd.conf").write_text(
        f"{sock} stream unix nowait.1000 root {bootmenu[0]} python3 {bootmenu[1]} "
        f"--stderr {d}/app.log {config}\n")
    port = free_port()
    (d / "nginx.conf").write_text(NGINX.format(d=d, port=port))
    inetd = subprocess.Popen(["inetd", "-i", "-E", str(d / "inetd.conf")], env=env)
    nginx = subprocess.Popen(["nginx", "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off;"])
    try:
        wait_for(lambda: unix_listening(sock), 10, "inetd's socket")
        os.chmod(sock, 0o666)
        wait_for(lambda: (d / "nginx.pid").exists(), 10, "nginx")
        try:
            qemu_status = subprocess.run(
                ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot",
                 "-boot", "n", "-uuid", UUID, "-netdev", f"user,id=n0,bootfile=http://10.0.2.2:{port}/boot.ipxe",
                 "-device", f"e1000,netdev=n0,mac={MAC}", "-serial", f"file:{d}/serial.log",
                 "-monitor", "none", "-display", "none"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=120).returncode
        except subprocess.TimeoutExpired:
            qemu_status = None  # explained by the assertions below
    finally:
        for process in (nginx, inetd):
            process.terminate()
            process.wait(timeout=10)
    serial = (d / "serial.log").read_bytes().decode("latin-1")[-3000:] if (d / "serial.log").exists() else ""
    requests = [line.split('"')[1] for line in (d / "access.log").read_text().splitlines()]
    app_log = (d / "app.log").read_text() if (d / "app.log").exists() else ""
    explain = f"requests: {requests}\nserial: {serial}\napp log: {app_log}"
    paths = [request.split()[1] for request in requests]
    assert paths[0] == "/boot.ipxe", explain
    assert paths[1].startswith(f"/boot.ipxe?mac=52-54-00-12-34-56&uuid={UUID}&ip=10.0.2.15&buildarch="), explain
    assert paths[2] == "/lpxelinux.0", explain
    # PXELINUX's first name is the byte-swapped UUID; the iPXE-form rule matches it.
    assert paths[4] == "/pxelinux.cfg/78563412-3412-7856-9abc-def012345678", explain
    assert not any(path.startswith("/pxelinux.cfg/01-") for path in paths), explain
    assert paths[-1] == "/done?mac=52-54-00-12-34-56", explain
    assert qemu_status == 0, explain
    state = State(str(d / "state.sqlite"))
    hosts = state.hosts()
    assert [(host["mac"], host["uuid"], host["ip"]) for host in hosts] == [(MAC, UUID, "10.0.2.15")], hosts
    assert hosts[0]["buildarch"] == "i386" and hosts[0]["platform"] == "pcbios"
    assert state.peek(MAC) is None
    assert app_log == ""
