"""GRUB menus in QEMU + OVMF: grub-mknetdir's core.efi over slirp's TFTP.

The TFTP directory holds what grub-mknetdir builds (core.efi and the
modules, http.mod among them) and, as its grub.cfg, the bootstrap the app
serves at /netboot/grub/grub.cfg. GRUB tries its per-machine names over
TFTP (absent), reads the bootstrap, and fetches the machine's own menu from
the app over HTTP; the MAC rule's entry fetches a marker URL. Assertions
are on nginx's access log and the inventory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scgi_inetd.bootmenu.state import State
from tests.e2e.conftest import Stack, require_frontend
from tests.e2e.qemu import boot, explain, grub_netdir, requested

pytestmark = pytest.mark.qemu

MAC, HYPHEN = "52:54:00:12:37:01", "52-54-00-12-37-01"
UUID = "42345678-1234-5678-9abc-def012345678"


def test_grub_fetches_the_menu_of_its_mac_over_http(web: Stack, tmp_path: Path) -> None:
    require_frontend("scgi-bootmenu")
    tftp = tmp_path / "tftp"
    core = grub_netdir(tftp)
    bootstrap = web.request("/netboot/grub/grub.cfg", headers={"Host": "10.0.2.2"})
    assert bootstrap.status == 200, bootstrap.text
    (tftp / "boot/grub/grub.cfg").write_bytes(bootstrap.body)
    serial = tmp_path / "serial.log"
    entries = boot(web, serial, bootfile=core, netdev=f",tftp={tftp}", mac=MAC, uuid=UUID, efi=True,
                   nic="virtio-net-pci,romfile=", until=lambda seen: requested(seen, "/marker/"))
    why = explain(entries, serial)
    grub = [e for e in entries if e["user_agent"].startswith("GRUB")]
    assert grub and grub[0]["uri"].startswith(f"/netboot/grub/grub.cfg?mac={MAC}&uuid={UUID}&ip=10.0.2.15"
                                              "&buildarch=x86_64&platform=efi"), why
    assert grub[0]["status"] == "200" and grub[0]["upstream"].endswith("/boot.sock"), why
    assert requested(grub, f"/marker/grub/{HYPHEN}/efi"), why
    host = State(str(web.root / "bootstate.sqlite")).host(MAC)
    assert host and host["via"] == "grub" and host["uuid"] == UUID and host["entry"] == "grub-marker", host
