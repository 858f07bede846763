"""Render a resolved menu as an iPXE script.

Structure: `#!ipxe`; when a one-shot mark forces an entry, `goto` it at once;
then `:_menu` with `menu`, one `item` per entry and `choose`, then one
labelled section per entry that boots it and, on failure, goes to `:_failed`,
which returns to the menu. Internal labels start with '_', which entry names
cannot, so they never collide. Every value written here was validated (config
values have no control characters; request values are hex, digits, fixed
words or RFC 1123 names), so no line can be split into two commands.
"""

from __future__ import annotations

from .menu import Menu, comment

__all__ = ["FAILED", "MENU", "chain_back", "render"]

FAILED = "_failed"
MENU = "_menu"


def _section(entry: dict, efi_local: str) -> list[str]:
    kind = entry["kind"]
    lines = [f":{entry['name']}"]
    if kind in ("linux", "memtest"):
        args = entry.get("args", "")
        lines.append(f"echo Booting {entry['label']}")
        lines.append(f"kernel {entry['kernel']}{' ' + args if args else ''} || goto {FAILED}")
        for initrd in entry.get("initrd", ()):
            lines.append(f"initrd {initrd} || goto {FAILED}")
        lines.append(f"boot || goto {FAILED}")
    elif kind == "chain":
        lines.append(f"chain {entry['url']} || goto {FAILED}")
    elif kind == "sanboot":
        lines.append(f"sanboot {entry['url']} || goto {FAILED}")
    elif kind == "local":
        # EFI: the loader that finds the disk's EFI system partition, when
        # configured (it shows its own message when there is none, then the
        # menu comes back); else `exit`, after which the firmware tries its
        # other network boot options before the disk (slow). BIOS: the disk.
        if efi_local:
            lines.append(f"iseq ${{platform}} efi && chain {efi_local} && goto {FAILED} ||")
        lines.append("iseq ${platform} efi && exit ||")
        lines.append(f"sanboot --no-describe --drive 0x80 || goto {FAILED}")
    elif kind == "exit":
        lines.append("exit")
    elif kind == "shell":
        lines.append("echo Type exit to return to the menu")
        lines.append("shell")
        lines.append(f"goto {MENU}")
    elif kind == "script":
        lines.extend(entry["lines"])
        lines.append(f"goto {MENU}")
    return lines


def render(menu: Menu) -> str:
    """The iPXE script for `menu` (see menu.resolve)."""
    names = [entry["name"] for entry in menu["entries"]]
    lines = ["#!ipxe"]
    lines.append(comment(menu))
    if menu["forced"] in names:
        lines.append(f"goto {menu['forced']}")
    lines.append(f":{MENU}")
    lines.append(f"menu {menu['title']}")
    for entry in menu["entries"]:
        lines.append(f"item {entry['name']} {entry['label']}")
    choose = "choose"
    if menu["default"] in names:
        choose += f" --default {menu['default']}"
    if menu["timeout"]:
        choose += f" --timeout {int(menu['timeout'] * 1000)}"
    lines.append(f"{choose} selected || exit")
    lines.append("goto ${selected}")
    for entry in menu["entries"]:
        lines.extend(_section(entry, menu["efi_local"]))
    lines.append(f":{FAILED}")
    lines.append("prompt --timeout 5000 Boot failed, press a key or wait for the menu ||")
    lines.append(f"goto {MENU}")
    return "\n".join(lines) + "\n"


def chain_back() -> str:
    """The script `/boot.ipxe` answers when it does not know the machine yet.

    It fetches the same URL again (relative: nginx's `$host` drops the port,
    and iPXE resolves it against the script's own URL) with what iPXE knows
    about the machine. The MAC goes as `:hexhyp` (aa-bb-..): measured with
    the Debian iPXE ROM, a relative URL holding `${net0/mac}`'s colons is
    parsed as having a scheme ("boot.ipxe?mac=52:...") and the chain fails
    with "Operation not supported". Free-form strings go as `:hexhyp` bytes
    (`serial_hex=41-42`): `:uristring` leaves '+', '&' and '#' as they are,
    so `AB+12` would arrive as "AB 12" (identity.py); the app still
    validates every value.
    """
    return (
        "#!ipxe\n"
        "chain boot.ipxe?mac=${net0/mac:hexhyp}&uuid=${uuid}&ip=${net0/ip}"
        "&buildarch=${buildarch}&platform=${platform}&hostname_hex=${hostname:hexhyp}"
        "&serial_hex=${serial:hexhyp}&manufacturer_hex=${manufacturer:hexhyp}"
        "&product_hex=${product:hexhyp}\n"
    )
