"""`local` on UEFI: iPXE chains local.efi (examples/efi-local.cfg built
with grub-mkimage), which boots the disk's EFI system partition at once.

The disk is a directory QEMU presents as a FAT disk (vvfat) holding
\\EFI\\BOOT\\BOOTX64.EFI: a GRUB image that fetches a marker URL, so reaching
the disk shows in nginx's access log. Without a disk, local.efi says so
and iPXE's menu comes back (local.efi fetched again), and the firmware's
own network boot (UEFI HTTP Boot's requests) never starts.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, require_frontend, stack, unavailable
from tests.e2e.qemu import boot, explain, requested

pytestmark = pytest.mark.qemu

UUID = "62345678-1234-5678-9abc-def012345678"
LOCAL_MODULES = ["part_gpt", "part_msdos", "fat", "search", "search_fs_file", "chain", "echo", "sleep", "minicmd"]
LOCAL_BOOT_BUDGET = 15.0  # seconds from the menu's local.efi request to the disk's first request


def mkimage(config: Path, output: Path, modules: list[str]) -> None:
    program = shutil.which("grub-mkimage")
    if program is None or not Path("/usr/lib/grub/x86_64-efi/chain.mod").exists():
        unavailable("grub-mkimage or GRUB's EFI modules missing: "
                    "apt-get install --no-install-recommends grub-common grub-efi-amd64-bin")
    subprocess.run([program, "-O", "x86_64-efi", "-p", "/EFI/BOOT", "-c", str(config), "-o", str(output), *modules],
                   check=True, capture_output=True, timeout=60)


@pytest.fixture
def local_efi(web: Stack) -> None:
    """local.efi built from the shipped examples/efi-local.cfg, served from /srv/netboot."""
    target = web.path("/srv/netboot") / "local.efi"
    if not target.exists():
        mkimage(stack.EXAMPLES / "efi-local.cfg", target, LOCAL_MODULES)


def disk(tmp_path: Path, port: int, hyphen: str) -> list[str]:
    """QEMU arguments for a FAT disk whose BOOTX64.EFI fetches /marker/disk/<mac>."""
    root = tmp_path / "disk"
    (root / "EFI/BOOT").mkdir(parents=True)
    config = tmp_path / "disk.cfg"
    config.write_text(f"net_bootp\nlinux (http,10.0.2.2:{port})/marker/disk/{hyphen}\nsleep 5\n")
    mkimage(config, root / "EFI/BOOT/BOOTX64.EFI", ["net", "efinet", "http", "linux", "echo", "sleep"])
    # bootindex: OVMF connects only the devices its boot order names.
    return ["-drive", f"file=fat:{root},format=raw,if=none,id=disk0,readonly=on",
            "-device", "virtio-blk-pci,drive=disk0,bootindex=2"]


class Clock:
    """When each marker first showed in the access log (polled every 0.1 s)."""

    def __init__(self, *fragments: str) -> None:
        self.seen: dict[str, float] = {}
        self.fragments = fragments

    def __call__(self, entries, done: str) -> bool:
        for fragment in self.fragments:
            if fragment not in self.seen and requested(entries, fragment):
                self.seen[fragment] = time.monotonic()
        return done in self.seen


def test_efi_local_boot_reaches_the_disk_without_network_fallthrough(web: Stack, tmp_path: Path, local_efi) -> None:
    require_frontend("scgi-bootmenu")
    mac, hyphen = "52:54:00:12:39:01", "52-54-00-12-39-01"
    serial = tmp_path / "serial.log"
    clock = Clock("/netboot/local.efi", f"/marker/disk/{hyphen}")
    entries = boot(web, serial, bootfile="/netboot/boot.ipxe", mac=mac, uuid=UUID, efi=True,
                   extra=disk(tmp_path, web.nginx.port, hyphen),
                   until=lambda seen: clock(seen, f"/marker/disk/{hyphen}"))
    why = explain(entries, serial)
    assert requested(entries, f"/marker/disk/{hyphen}"), why
    assert not [e for e in entries if e["user_agent"].startswith("UefiHttpBoot")], why
    elapsed = clock.seen[f"/marker/disk/{hyphen}"] - clock.seen["/netboot/local.efi"]
    print(f"local.efi to the disk: {elapsed:.1f} s")
    assert elapsed <= LOCAL_BOOT_BUDGET, f"{elapsed:.1f} s from local.efi to the disk\n{why}"


def test_efi_local_boot_without_a_disk_says_so_and_returns_to_the_menu(web: Stack, tmp_path: Path,
                                                                       local_efi) -> None:
    require_frontend("scgi-bootmenu")
    mac = "52:54:00:12:39:02"
    serial = tmp_path / "serial.log"
    entries = boot(web, serial, bootfile="/netboot/boot.ipxe", mac=mac, uuid=UUID, efi=True,
                   until=lambda seen: sum(e["uri"] == "/netboot/local.efi" for e in seen) >= 2)
    why = explain(entries, serial)
    assert sum(e["uri"] == "/netboot/local.efi" for e in entries) >= 2, why  # the menu came back
    assert not [e for e in entries if e["user_agent"].startswith("UefiHttpBoot")], why
    assert b"no local disk to boot" in serial.read_bytes(), why
