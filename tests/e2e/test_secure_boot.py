"""Secure Boot's TFTP-only path in QEMU: OVMF with Secure Boot enforced
(Debian's `.secboot` firmware, Microsoft's keys enrolled by the `.ms`
variables) loads Debian's signed shim, which loads Debian's signed
grubnetx64.efi, which reads `scgi-bootmenu CONFIG export --tftp DIR`'s
grub/grub.cfg over slirp's TFTP and dispatches to the machine's own file.

That GRUB cannot use HTTP (`insmod http` is refused under Secure Boot), so
there is no access log to read: the proof is the serial console's
"Booting SB-MARKER <mac>", a line only the machine's exported menu prints
when its default entry runs. The control is on the HTTP side: the same
firmware refuses the unsigned core.efi of test_grub.py, which would
otherwise fetch its menu from nginx.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, bootmenu, require_frontend, unavailable
from tests.e2e.qemu import boot, grub_netdir, serial_tail

pytestmark = pytest.mark.qemu

# Installed packages, or the files .ci/run unpacks from them.
SIGNED = {
    "shimx64.efi": ("/usr/lib/shim/shimx64.efi.signed",
                    "/usr/local/share/signed-efi/usr/lib/shim/shimx64.efi.signed"),
    "grubx64.efi": ("/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
                    "/usr/local/share/signed-efi/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"),
}
MAC, HYPHEN = "52:54:00:12:38:01", "52-54-00-12-38-01"
UUID = "52345678-1234-5678-9abc-def012345678"
REFUSED = b"Access Denied"


def signed_files(tftp: Path) -> None:
    """shim and the GRUB it loads (shim looks for grubx64.efi beside itself)."""
    for name, candidates in SIGNED.items():
        found = [path for path in candidates if Path(path).exists()]
        if not found:
            unavailable(f"{candidates[0]} missing: .ci/run unpacks shim-signed and grub-efi-amd64-signed")
        shutil.copyfile(found[0], tftp / name)


def test_signed_shim_and_grub_read_the_exported_menu_over_tftp(web: Stack, tmp_path: Path) -> None:
    require_frontend("scgi-bootmenu")
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    signed_files(tftp)
    bootmenu(web.path("/srv/scgi/bootmenu.toml"), "export", "--tftp", str(tftp))
    assert (tftp / f"grub/grub.cfg-01-{HYPHEN}").exists()
    serial = tmp_path / "serial.log"
    marker = f"Booting SB-MARKER {HYPHEN}".encode()
    entries = boot(web, serial, bootfile="shimx64.efi", netdev=f",tftp={tftp}", mac=MAC, uuid=UUID, efi=True,
                   secure_boot=True, nic="virtio-net-pci,romfile=", stop_on=[marker, REFUSED],
                   until=lambda seen: False)
    text = serial.read_bytes()
    assert marker in text and REFUSED not in text, serial_tail(serial)
    assert not entries, entries  # no HTTP under Secure Boot: everything came over TFTP


def test_secure_boot_refuses_an_unsigned_grub(web: Stack, tmp_path: Path) -> None:
    require_frontend("scgi-bootmenu")
    tftp = tmp_path / "tftp"
    core = grub_netdir(tftp)
    bootstrap = web.request("/netboot/grub/grub.cfg", headers={"Host": "10.0.2.2"})
    (tftp / "boot/grub/grub.cfg").write_bytes(bootstrap.body)
    serial = tmp_path / "serial.log"
    # Only GRUB's own requests end the boot early: nginx may log the bootstrap
    # request above after boot() has counted the access log, and that line
    # must not count as this boot's.
    entries = boot(web, serial, bootfile=core, netdev=f",tftp={tftp}", mac=MAC, uuid=UUID, efi=True,
                   secure_boot=True, nic="virtio-net-pci,romfile=", stop_on=[REFUSED],
                   until=lambda seen: any(e["user_agent"].startswith("GRUB") for e in seen))
    assert REFUSED in serial.read_bytes(), serial_tail(serial)
    assert not [e for e in entries if e["user_agent"].startswith("GRUB")], entries
