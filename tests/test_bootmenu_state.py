"""One-shot and until-done marks under parallel booting machines (real
processes, one shared SQLite database), and the CLI around the state."""

from __future__ import annotations

import io
import subprocess
import sys

from scgi_inetd.bootmenu.cli import main
from scgi_inetd.bootmenu.state import State
from tests.bootmenu_helpers import MAC, write_config
from tests.support import REPO, child_env

MACHINES = [f"52:54:00:00:01:{i:02x}" for i in range(12)]

# A booting machine: fetch each menu several times through the WSGI app, in
# the order the seed asks; print one line per menu that applied a mark.
BOOTER = r"""
import random, sys, io
from scgi_inetd.bootmenu.app import make_app
app = make_app(sys.argv[1], "")
macs = sys.argv[3:]
random.Random(int(sys.argv[2])).shuffle(macs)
for mac in macs * 2:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/boot.ipxe", "QUERY_STRING": "mac=" + mac,
               "wsgi.errors": sys.stderr}
    status = []
    response = app(environ, lambda s, h: status.append(s))
    body = b"".join(response)
    response.close()
    assert status == ["200 OK"], (status, body)
    lines = body.decode().splitlines()
    if lines[2].startswith("goto "):
        print(mac, lines[2][5:], flush=True)
"""


def test_parallel_machines_neither_lose_nor_double_apply_marks(tmp_path):
    path = write_config(tmp_path, timeout=20)
    state = State(str(tmp_path / "state.sqlite"))
    for i, mac in enumerate(MACHINES):
        state.set_mark(mac, ("install", "memtest")[i % 2], until_done=False)
    children = [subprocess.Popen([sys.executable, "-c", BOOTER, str(path), str(seed), *MACHINES],
                                 stdout=subprocess.PIPE, text=True, env=child_env(), cwd=REPO)
                for seed in range(6)]
    applied = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        applied += [tuple(line.split()) for line in out.splitlines()]
    assert sorted(applied) == sorted((mac, ("install", "memtest")[i % 2]) for i, mac in enumerate(MACHINES))
    hosts = state.hosts()
    assert sorted(host["mac"] for host in hosts) == MACHINES
    assert all(host["mark"] is None for host in hosts)


def test_parallel_until_done_applies_every_time(tmp_path):
    path = write_config(tmp_path, timeout=20)
    state = State(str(tmp_path / "state.sqlite"))
    state.set_mark(MAC, "install", until_done=True)
    children = [subprocess.Popen([sys.executable, "-c", BOOTER, str(path), str(seed), MAC],
                                 stdout=subprocess.PIPE, text=True, env=child_env(), cwd=REPO)
                for seed in range(4)]
    outputs = [child.communicate(timeout=60)[0] for child in children]
    assert sum(len(out.splitlines()) for out in outputs) == 8
    assert state.peek(MAC) == ("install", True)


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    return main([str(arg) for arg in argv], stdout=out, stderr=err), out.getvalue(), err.getvalue()


def test_cli_next_render_hosts_done(tmp_path):
    path = write_config(tmp_path, init=False)
    assert run(path, "init")[0] == 0
    status, out, _ = run(path, "next", "52-54-00-12-34-56", "install", "--until-done")
    assert status == 0 and "until GET /done" in out
    status, out, _ = run(path, "render", "--mac", MAC)
    assert status == 0 and out.split("\n")[2] == "goto install"
    status, out, _ = run(path, "render", "--mac", MAC, "--format", "pxelinux")
    assert "DEFAULT install\nPROMPT 0" in out
    assert State(str(tmp_path / "state.sqlite")).peek(MAC) == ("install", True)  # render never consumes
    status, out, _ = run(path, "hosts")
    assert status == 0 and "install (until done)" in out
    assert run(path, "done", MAC)[1] == f"{MAC}: cleared mark install\n"
    status, out, _ = run(path, "render", "--mac", MAC, "--uuid", "12345678-1234-5678-9abc-def012345678")
    assert "goto install" not in out and out.startswith("#!ipxe\n")
    assert run(path, "render", "--mac", MAC, "--format", "json")[0] == 2
    assert run(path, "render", "--mac", MAC, "--hostname", "-bad")[0] == 2


def test_render_reads_free_form_values_as_a_live_request_does(tmp_path):
    """`render --serial 'AB+12'` matched where the live path did not: both
    now read the value from the chain-back's hex form."""
    path = write_config(tmp_path, '''
[[rules]]
name = "plus"
match = { serial = "AB+12", product = "Standard PC (Q35 + ICH9, 2009)" }
default = "install"
''')
    status, out, _ = run(path, "render", "--mac", MAC, "--serial", "AB+12", "--product", "Standard PC (Q35 + ICH9, 2009)")
    assert status == 0 and "rules: plus" in out
    status, out, _ = run(path, "render", "--mac", MAC, "--serial", "AB 12", "--product", "Standard PC (Q35 + ICH9, 2009)")
    assert status == 0 and "rules: none" in out
    assert run(path, "render", "--mac", MAC, "--serial", "caf\u00e9")[0] == 2


def test_cli_hosts_lists_machines_seen(tmp_path):
    path = write_config(tmp_path)
    State(str(tmp_path / "state.sqlite")).record(
        {"mac": MAC, "uuid": "12345678-1234-5678-9abc-def012345678", "ip": "10.0.2.15"}, "local", "ipxe")
    status, out, _ = run(path, "hosts")
    header, row = out.splitlines()
    assert header.split() == ["mac", "uuid", "ip", "hostname", "serial", "buildarch", "platform", "manufacturer",
                              "product", "entry", "seen", "via", "mark"]
    assert row.split()[:10] == [MAC, "12345678-1234-5678-9abc-def012345678", "10.0.2.15"] + ["-"] * 6 + ["local"]


def test_cli_hosts_shows_every_identity_field_and_json(tmp_path):
    import json

    path = write_config(tmp_path)
    machine = {"mac": MAC, "uuid": "12345678-1234-5678-9abc-def012345678", "ip": "10.0.2.15", "hostname": "db1",
               "serial": "AB+12 &x", "buildarch": "x86_64", "platform": "efi", "manufacturer": "QEMU",
               "product": "Standard PC (Q35 + ICH9, 2009)"}
    State(str(tmp_path / "state.sqlite")).record(machine, "local", "grub")
    status, out, _ = run(path, "hosts")
    assert status == 0 and all(value in out for value in machine.values()) and " grub " in out
    status, out, _ = run(path, "hosts", "--json")
    (host,) = json.loads(out)["hosts"]
    assert status == 0 and {key: host[key] for key in machine} == machine
    assert host["via"] == "grub" and host["entry"] == "local" and host["next"] is None
    assert run(path, "hosts", "--csv")[0] == 2
