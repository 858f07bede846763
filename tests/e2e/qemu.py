"""Boot a real iPXE client in QEMU against the e2e stack's nginx.

Software emulation only (`-accel tcg`: KVM crashes this BIOS here); UEFI
machines run OVMF on q35. slirp's
DHCP hands out the boot file URL and maps 10.0.2.2 to the host's loopback,
where nginx listens. QEMU's exit status proves nothing, and the serial
console loses its last lines: every assertion is made on nginx's access
log, the serial log only explains a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

from tests.e2e.conftest import Stack, require_programs, unavailable

ROM = "/usr/lib/ipxe/qemu/pxe-e1000.rom"
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
OVMF_CODE_SECURE = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
OVMF_VARS_MS = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
# One boot takes about 6 s here; several times that under load is still fine.
BOOT_TIMEOUT = 60.0
# Serial output meaning the boot is over without success (iPXE gave up, the
# BIOS found nothing else): stop at once instead of waiting for the timeout.
GAVE_UP = (b"No bootable device", b"No more network devices")

Entries = list[dict[str, str]]


def require_qemu() -> None:
    require_programs("qemu-system-x86_64")
    if not os.path.exists(ROM):
        unavailable(f"{ROM} missing: apt-get install --no-install-recommends ipxe-qemu")


def serial_tail(serial: Path, lines: int = 40) -> str:
    try:
        text = serial.read_bytes().decode("utf-8", "replace").replace("\r", "")
    except OSError:
        return "(no serial log)"
    return "serial log, last lines:\n" + "\n".join(text.splitlines()[-lines:])


def gave_up(serial: Path, also: Sequence[bytes] = ()) -> bool:
    try:
        text = serial.read_bytes()
    except OSError:
        return False
    return any(marker in text for marker in (*GAVE_UP, *also))


def efi_firmware(tmp: Path, secure_boot: bool = False) -> list[str]:
    """QEMU arguments for OVMF on q35: the code read-only, a private copy of
    the variable store (the firmware writes boot options there).

    Secure Boot: Debian's `.secboot` build (it needs SMM and a secure flash)
    with the `.ms` variables, which enroll Microsoft's keys (shim is signed
    by Microsoft's UEFI CA) and turn enforcement on.
    """
    code, store = (OVMF_CODE_SECURE, OVMF_VARS_MS) if secure_boot else (OVMF_CODE, OVMF_VARS)
    for path in (code, store):
        if not os.path.exists(path):
            unavailable(f"{path} missing: apt-get install --no-install-recommends ovmf")
    variables = tmp / "OVMF_VARS.fd"
    shutil.copyfile(store, variables)
    machine = ["-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,value=on"] \
        if secure_boot else ["-machine", "q35"]
    return [*machine, "-drive", f"if=pflash,format=raw,readonly=on,file={code}",
            "-drive", f"if=pflash,format=raw,file={variables}"]


def boot(web: Stack, serial: Path, *, bootfile: str, mac: str, uuid: str,
         until: Callable[[Entries], bool], timeout: float = BOOT_TIMEOUT,
         efi: bool = False, nic: str = "e1000", extra: Sequence[str] = (),
         netdev: str = "", secure_boot: bool = False, stop_on: Sequence[bytes] = ()) -> Entries:
    """Boot until `until(requests of this boot)` holds, QEMU exits, or `timeout`.

    BIOS (SeaBIOS on `pc`) by default; `efi` boots OVMF on q35 (the NIC's
    ROM, efi-e1000.rom, holds iPXE for both). `extra` adds QEMU arguments
    (-smbios, drives, -fw_cfg), `netdev` slirp options (tftp=...),
    `secure_boot` runs OVMF with Secure Boot enforced; serial output holding any of `stop_on` ends the boot.
    Returns this boot's access-log entries; QEMU is killed (by pid) if still up.
    """
    require_qemu()
    start = len(web.nginx.access())
    machine = efi_firmware(serial.parent, secure_boot) if efi else ["-machine", "pc", "-boot", "n"]
    # A path is a URL on nginx; anything else a file on slirp's TFTP server.
    url = f"http://10.0.2.2:{web.nginx.port}{bootfile}" if bootfile.startswith("/") else bootfile
    argv = ["qemu-system-x86_64", *machine, "-accel", "tcg", "-m", "256",
            "-nographic", "-no-reboot", "-uuid", uuid,
            "-netdev", f"user,id=n0,bootfile={url}{netdev}",
            "-device", f"{nic},netdev=n0,mac={mac}" + (",bootindex=1" if efi else ""),
            *extra, "-serial", f"file:{serial}", "-monitor", "none", "-display", "none"]
    with open(serial.with_suffix(".qemu.log"), "wb") as log:
        qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + timeout
    try:
        while True:
            entries = web.nginx.access()[start:]
            if until(entries) or time.monotonic() > deadline or gave_up(serial, stop_on):
                return entries
            if qemu.poll() is not None:
                time.sleep(0.3)  # nginx logs a request after answering it
                return web.nginx.access()[start:]
            time.sleep(0.1)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()


# Reading a boot's requests (nginx's access log entries).

def uris(entries: list[dict[str, str]]) -> list[str]:
    return [entry["uri"] for entry in entries]


def requested(entries: list[dict[str, str]], fragment: str) -> bool:
    return any(fragment in entry["uri"] for entry in entries)


def explain(entries: list[dict[str, str]], serial: Path) -> str:
    log = "\n".join(f"{e['status']} {e['uri']} [{e['user_agent']}]" for e in entries)
    return f"requests of this boot:\n{log}\n{serial_tail(serial)}"


#: Where grub-efi-amd64-bin puts GRUB's EFI modules.
GRUB_MODULES = "/usr/lib/grub/x86_64-efi"


def grub_netdir(tftp: Path) -> str:
    """Build GRUB's network boot directory in `tftp`; the boot file's TFTP name."""
    program = shutil.which("grub-mknetdir")
    if program is None or not Path(GRUB_MODULES, "http.mod").exists():
        unavailable("grub-mknetdir or GRUB's EFI modules missing: "
                    "apt-get install --no-install-recommends grub-common grub-efi-amd64-bin")
    subprocess.run([program, f"--net-directory={tftp}", "--subdir=boot/grub", "-d", GRUB_MODULES],
                   check=True, capture_output=True, timeout=60)
    return "boot/grub/x86_64-efi/core.efi"
