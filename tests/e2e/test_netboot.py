"""Real netboot clients: iPXE and PXELINUX in QEMU, menus from scgi-bootmenu.

The menus come from tests/e2e/bootmenu-test.toml through nginx, inetd and
bin/scgi-bootmenu; each machine's rule makes its default entry fetch a
/marker/ URL, and the assertions read nginx's access log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, bootmenu, require_frontend
from tests.e2e.qemu import boot, explain, requested, uris

pytestmark = pytest.mark.qemu

UUID = "12345678-1234-5678-9abc-def012345678"
# PXELINUX asks for the UUID with its first three fields byte-swapped.
UUID_PXELINUX_OF = {
    "12345678-1234-5678-9abc-def012345678": "78563412-3412-7856-9abc-def012345678",
    "22345678-1234-5678-9abc-def012345678": "78563422-3412-7856-9abc-def012345678",
}


def test_ipxe_boots_the_menu_of_its_mac(web: Stack, tmp_path: Path) -> None:
    """Chain-back with the real MAC and UUID, then the rule's default entry runs."""
    require_frontend("scgi-bootmenu")
    mac, hyphen = "52:54:00:12:34:56", "52-54-00-12-34-56"
    serial = tmp_path / "serial.log"
    entries = boot(web, serial, bootfile="/netboot/boot.ipxe", mac=mac, uuid=UUID,
                   until=lambda seen: requested(seen, "/marker/"))
    why = explain(entries, serial)
    ipxe = [e for e in entries if e["user_agent"].startswith("iPXE/")]
    assert ipxe and ipxe[0]["uri"] == "/netboot/boot.ipxe", why
    menus = [e for e in ipxe if e["uri"].startswith("/netboot/boot.ipxe?")]
    assert menus and menus[0]["status"] == "200", why
    query = menus[0]["uri"].lower()
    assert f"mac={mac}" in query or f"mac={hyphen}" in query, why
    assert f"uuid={UUID}" in query, why
    assert requested(ipxe, f"/marker/ipxe/{hyphen}/{UUID}"), why
    assert not requested(ipxe, "/marker/once/"), why


def test_ipxe_one_shot_mark_is_used_once(web: Stack, tmp_path: Path) -> None:
    """`scgi-bootmenu CONFIG next MAC once`: the marked entry runs on the next
    menu only; it chains back to the menu, which is then the usual one."""
    require_frontend("scgi-bootmenu")
    mac, hyphen = "52:54:00:12:34:56", "52-54-00-12-34-56"
    bootmenu(web.path("/srv/scgi/bootmenu.toml"), "next", mac, "once")
    serial = tmp_path / "serial.log"
    entries = boot(web, serial, bootfile="/netboot/boot.ipxe", mac=mac, uuid=UUID,
                   until=lambda seen: requested(seen, "/marker/ipxe/"))
    why = explain(entries, serial)
    seen = uris(entries)
    once = [n for n, uri in enumerate(seen) if f"/marker/once/{hyphen}" in uri]
    default = [n for n, uri in enumerate(seen) if f"/marker/ipxe/{hyphen}" in uri]
    assert len(once) == 1, why
    assert default and default[0] > once[0], why
    menus = [n for n, uri in enumerate(seen) if uri.startswith("/netboot/boot.ipxe?")]
    assert len(menus) == 2 and menus[0] < once[0] < menus[1] < default[0], why


@pytest.mark.parametrize("mac, uuid, marker, by_uuid", [
    ("52:54:00:12:34:57", "12345678-1234-5678-9abc-def012345678", "/marker/pxelinux-mac/", False),
    ("52:54:00:12:34:58", "22345678-1234-5678-9abc-def012345678", "/marker/pxelinux-uuid/", True),
], ids=["mac-rule", "uuid-rule"])
def test_pxelinux_gets_the_config_of_its_machine(web: Stack, tmp_path: Path, mac: str,
                                                 uuid: str, marker: str, by_uuid: bool) -> None:
    """iPXE chains lpxelinux.0 from nginx; PXELINUX asks the boot menu for
    pxelinux.cfg/<UUID>, 01-<MAC>, ... and boots the DEFAULT it is given."""
    require_frontend("scgi-bootmenu")
    if not web.path("/srv/netboot/lpxelinux.0").exists():
        pytest.skip("lpxelinux.0 missing: apt-get install --no-install-recommends pxelinux syslinux-common")
    hyphen = mac.replace(":", "-")
    serial = tmp_path / "serial.log"
    entries = boot(web, serial, bootfile="/netboot/lpxelinux.0", mac=mac, uuid=uuid,
                   until=lambda seen: requested(seen, "/marker/"))
    why = explain(entries, serial)
    syslinux = [e for e in entries if e["user_agent"].startswith("Syslinux/")]
    configs = [e for e in syslinux if e["uri"].startswith("/netboot/pxelinux.cfg/")]
    assert configs, why
    assert configs[0]["uri"] == f"/netboot/pxelinux.cfg/{UUID_PXELINUX_OF[uuid]}", why
    served = [e for e in configs if e["status"] == "200"]
    assert served, why
    assert all(e["upstream"].endswith("/run/boot.sock") for e in configs), why
    if by_uuid:
        assert served[0]["uri"] == f"/netboot/pxelinux.cfg/{UUID_PXELINUX_OF[uuid]}", why
    assert requested(syslinux, f"{marker}{hyphen}"), why
    other = "/marker/pxelinux-mac/" if by_uuid else "/marker/pxelinux-uuid/"
    assert not requested(entries, other), why
