"""UEFI machines (OVMF on q35) and identity values through a real iPXE.

Each boot's default entry fetches a /marker/ URL naming what the app
decided; the assertions read nginx's access log (the serial log explains).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, require_frontend, unavailable
from tests.e2e.qemu import boot, explain, requested

pytestmark = pytest.mark.qemu

UUID = "32345678-1234-5678-9abc-def012345678"
SNPONLY = "/usr/lib/ipxe/snponly.efi"
# OVMF's own PXE boot options come before HTTP Boot and take 75-127 s to
# time out under TCG; these fw_cfg switches leave only HTTP (measured: 10 s).
NO_PXE = ["-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
          "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n"]


def test_ovmf_runs_the_nic_ipxe_rom_and_gets_the_efi_rule(web: Stack, tmp_path: Path) -> None:
    require_frontend("scgi-bootmenu")
    mac, hyphen = "52:54:00:12:35:01", "52-54-00-12-35-01"
    serial = tmp_path / "serial.log"
    entries = boot(web, serial, bootfile="/netboot/boot.ipxe", mac=mac, uuid=UUID, efi=True,
                   until=lambda seen: requested(seen, "/marker/"))
    why = explain(entries, serial)
    menus = [e for e in entries if e["uri"].startswith("/netboot/boot.ipxe?")]
    assert menus and menus[0]["status"] == "200" and menus[0]["user_agent"].startswith("iPXE/"), why
    assert "&buildarch=x86_64&platform=efi&" in menus[0]["uri"], why
    assert requested(entries, f"/marker/efi/{hyphen}/efi/x86_64"), why


def test_uefi_http_boot_gets_snponly_then_the_menu(web: Stack, tmp_path: Path) -> None:
    """No iPXE ROM: OVMF's HTTP Boot HEADs and GETs the DHCP boot file,
    nginx answers its user agent with snponly.efi, and that iPXE asks the
    same URL for the script."""
    require_frontend("scgi-bootmenu")
    if not os.path.exists(SNPONLY):
        unavailable(f"{SNPONLY} missing: apt-get install --no-install-recommends ipxe")
    mac, hyphen = "52:54:00:12:35:02", "52-54-00-12-35-02"
    serial = tmp_path / "serial.log"
    entries = boot(web, serial, bootfile="/netboot/boot.ipxe", mac=mac, uuid=UUID, efi=True,
                   nic="virtio-net-pci,romfile=", extra=NO_PXE,
                   until=lambda seen: requested(seen, "/marker/"))
    why = explain(entries, serial)
    firmware = [(e["method"], e["uri"], e["status"], e["bytes"]) for e in entries
                if e["user_agent"].startswith("UefiHttpBoot/")]
    size = str(os.path.getsize(SNPONLY))
    assert ("GET", "/netboot/boot.ipxe", "200", size) in firmware, why
    ipxe = [e for e in entries if e["user_agent"].startswith("iPXE/")]
    assert ipxe and ipxe[0]["uri"] == "/netboot/boot.ipxe", why
    assert requested(ipxe, f"/marker/efi/{hyphen}/efi/x86_64"), why


# (QEMU -smbios type=1 value: ',' doubled), the rule it must match
SMBIOS = [("serial=SN 1+2,product=Standard PC (Q35 + ICH9,, 2009)", "1"),
          ("serial=A&B=C,product=50% #1", "2"),
          ("serial=#x%41 y,product=a=b&c+d", "3")]


@pytest.mark.parametrize("smbios, tag", SMBIOS, ids=["space-plus-comma", "amp-equals-percent-hash", "hash-percent"])
def test_serial_and_product_survive_a_real_ipxe(web: Stack, tmp_path: Path, smbios: str, tag: str) -> None:
    require_frontend("scgi-bootmenu")
    mac, hyphen = f"52:54:00:12:36:0{tag}", f"52-54-00-12-36-0{tag}"
    serial = tmp_path / "serial.log"
    entries = boot(web, serial, bootfile="/netboot/boot.ipxe", mac=mac, uuid=UUID,
                   extra=["-smbios", f"type=1,{smbios}"], until=lambda seen: requested(seen, "/marker/"))
    why = explain(entries, serial)
    assert requested(entries, f"/marker/serial/{tag}/{hyphen}"), why
