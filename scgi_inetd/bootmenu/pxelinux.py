"""Render a resolved menu as a PXELINUX configuration file.

menu.c32 (or the configured UI) shows MENU TITLE and one LABEL per entry;
TIMEOUT is in tenths of a second (0 waits for a choice). A one-shot mark
drops the UI line and sets PROMPT 0, so PXELINUX boots DEFAULT at once.
Kinds PXELINUX cannot boot (sanboot, shell, script: iPXE only) are left out.
memtest86+ images are booted with LINUX: with KERNEL, PXELINUX takes a `.bin`
file for a boot sector. Linux kernels use LINUX too, for the same reason.
"""

from __future__ import annotations

from .menu import Menu, bootable, comment

__all__ = ["SUPPORTED", "render"]

SUPPORTED = ("linux", "memtest", "chain", "local", "exit")


def _label(entry: dict) -> list[str]:
    kind = entry["kind"]
    lines = [f"LABEL {entry['name']}", f"  MENU LABEL {entry['label']}"]
    if kind in ("linux", "memtest"):
        lines.append(f"  LINUX {entry['kernel']}")
        if entry.get("initrd"):
            lines.append(f"  INITRD {','.join(entry['initrd'])}")
        if entry.get("args"):
            lines.append(f"  APPEND {entry['args']}")
    elif kind == "chain":
        lines.append(f"  KERNEL {entry['url']}")
    elif kind == "local":
        lines.append("  LOCALBOOT 0")
    elif kind == "exit":
        lines.append("  LOCALBOOT -1")  # boot fails here: the BIOS tries its next device
    return lines


def render(menu: Menu) -> str:
    """The PXELINUX configuration for `menu` (see menu.resolve)."""
    entries, forced, default = bootable(menu, SUPPORTED)
    lines = [comment(menu)]
    if forced:
        lines += [f"DEFAULT {forced}", "PROMPT 0", "TIMEOUT 0"]
    else:
        if menu["pxelinux_ui"]:
            lines.append(f"UI {menu['pxelinux_ui']}")
        lines.append(f"MENU TITLE {menu['title']}")
        if default:
            lines.append(f"DEFAULT {default}")
        timeout = menu["timeout"]
        lines.append(f"TIMEOUT {max(1, round(timeout * 10)) if timeout else 0}")
    for entry in entries:
        lines.append("")
        lines.extend(_label(entry))
    return "\n".join(lines) + "\n"
