"""`scgi-bootmenu CONFIG export --tftp DIR`: the names each loader asks for,
the same menus the app serves, all or nothing."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest

from scgi_inetd.bootmenu.cli import main
from tests.bootmenu_helpers import MAC, PXE_UUID, UUID, make_testapp, write_config

RULES = """
[[rules]]
name = "by-mac"
match = { mac = "52-54-00-12-34-56" }
default = "install"

[[rules]]
name = "by-uuid"
match = { uuid = "12345678-1234-5678-9abc-def012345678" }
default = "memtest"

[[rules]]
name = "by-net"
match = { ip = ["10.0.2.0/24", "10.0.3.7", "10.0.4.0/23"] }
default = "memtest"
"""


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    return main([str(arg) for arg in argv], stdout=out, stderr=err), out.getvalue(), err.getvalue()


def listing(directory):
    return sorted(os.path.relpath(os.path.join(top, name), directory)
                  for top, _, names in os.walk(directory) for name in names)


def test_export_writes_each_loaders_names_with_the_apps_menus(tmp_path):
    config = write_config(tmp_path, RULES)
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    status, out, err = run(config, "export", "--tftp", tftp)
    assert (status, err) == (0, "") and out == f"{tftp}: 9 files\n"
    assert listing(tftp) == sorted([
        "grub/grub.cfg", "grub/grub.cfg-01-52-54-00-12-34-56", "grub/grub.cfg-0A0002", "grub/grub.cfg-0A000307",
        "pxelinux.cfg/01-52-54-00-12-34-56", f"pxelinux.cfg/{PXE_UUID}", "pxelinux.cfg/0A0002", "pxelinux.cfg/0A000307",
        "pxelinux.cfg/default"])  # 10.0.4.0/23 is no whole hex digit: no name
    app = make_testapp(config)
    hyphen = MAC.replace(":", "-")
    served = app.get(f"/pxelinux.cfg/01-{hyphen}").text
    assert (tftp / f"pxelinux.cfg/01-{hyphen}").read_text() == served  # no inventory cookie: same identity
    assert "DEFAULT memtest" in (tftp / f"pxelinux.cfg/{PXE_UUID}").read_text()
    grub_menu = (tftp / f"grub/grub.cfg-01-{hyphen}").read_text()
    assert grub_menu == app.get(f"/grub/grub.cfg?mac={MAC}&platform=efi&buildarch=x86_64").text
    default = (tftp / "grub/grub.cfg").read_text()
    assert 'configfile "$prefix/grub.cfg-01-$m1-$m2-$m3-$m4-$m5-$m6"' in default and "set default='local'" in default
    check = shutil.which("grub-script-check")
    if check:
        for name in listing(tftp):
            if name.startswith("grub/"):
                assert subprocess.run([check, str(tftp / name)], capture_output=True).returncode == 0, name
    assert run(config, "export", "--tftp", tftp)[0] == 0  # again: replaced in place
    assert not [name for name in os.listdir(tftp) if name.startswith(".")]


@pytest.mark.parametrize("make", ["file", "grub-is-a-file", "missing"])
def test_export_into_a_directory_it_cannot_write_changes_nothing(tmp_path, make):
    config = write_config(tmp_path, RULES)
    tftp = tmp_path / "tftp"
    if make == "file":
        tftp.write_text("x")
    elif make == "grub-is-a-file":
        tftp.mkdir()
        (tftp / "grub").write_text("not a directory")
    before = listing(tftp) if tftp.is_dir() else None
    status, out, err = run(config, "export", "--tftp", tftp)
    assert status == 1 and out == "" and err.count("\n") == 1 and err.startswith("scgi-bootmenu: cannot write ")
    assert (listing(tftp) if tftp.is_dir() else None) == before
    assert (tftp / "grub").read_text() == "not a directory" if make == "grub-is-a-file" else True


def test_export_usage(tmp_path):
    config = write_config(tmp_path, RULES)
    assert run(config, "export")[0] == 2
    assert run(config, "export", "--tftp")[0] == 2
