"""Render a resolved menu as a GRUB configuration file, and GRUB's bootstrap.

GRUB's script language expands `$name` and `${name}` in words and inside
double quotes, and treats `;`, `&`, `|`, `{`, `}`, `#` and spaces as syntax;
inside single quotes every character is literal (there is no escape there,
so a `'` is written `'\\''`, as in sh). Every value this module writes is
single-quoted, so nothing a config or a machine supplies can expand a
variable or start a command; the only double-quoted word is the bootstrap's
URL, built from validated parts.

Kernel arguments are quoted word by word: GRUB joins a `linux` command's
words with spaces and wraps any word holding a space in double quotes on the
kernel command line, so one quoted `args` string would reach the kernel as a
single quoted argument.

Kinds GRUB cannot boot (sanboot, shell, script: iPXE only) are left out.
`local` chainloads the first EFI system partition's removable-media loader
(`\\EFI\\BOOT\\BOOTX64.EFI`, found with `search --file`), or the first disk's
boot sector on BIOS, and says so when there is neither.
"""

from __future__ import annotations

from .menu import Menu, bootable, comment

__all__ = ["EFI_LOADER", "SUPPORTED", "bootstrap", "grub_path", "quote", "render"]

SUPPORTED = ("linux", "memtest", "chain", "local", "exit")

EFI_LOADER = "/EFI/BOOT/BOOTX64.EFI"
"""The removable-media loader of an x86_64 EFI system partition (UEFI spec 3.5.1.1)."""


def quote(text: str) -> str:
    """`text` as one literal GRUB word."""
    return "'" + text.replace("'", "'\\''") + "'"


def grub_path(url: str) -> str:
    """`http://host[:port]/path` as GRUB's `(http,host:port)/path`; other
    values (paths on GRUB's own `$root`) unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "http":
        return url
    host, slash, path = rest.partition("/")
    return f"(http,{host})/{path}"


def _entry(entry: dict) -> list[str]:
    kind = entry["kind"]
    lines = [f"menuentry {quote(entry['label'])} --id {quote(entry['name'])} {{"]
    if kind in ("linux", "memtest"):
        words = [quote(grub_path(entry["kernel"]))] + [quote(word) for word in entry.get("args", "").split()]
        lines.append(f"  echo {quote('Booting ' + entry['label'])}")
        lines.append("  linux " + " ".join(words))
        if entry.get("initrd"):
            lines.append("  initrd " + " ".join(quote(grub_path(initrd)) for initrd in entry["initrd"]))
    elif kind == "chain":
        lines.append(f"  chainloader {quote(grub_path(entry['url']))}")
    elif kind == "local":
        lines += ["  if [ \"$grub_platform\" = efi ]; then",
                  "    insmod part_gpt", "    insmod fat", "    insmod chain",
                  f"    if search --no-floppy --file --set=root {EFI_LOADER}; then",
                  f"      chainloader {EFI_LOADER}", "      boot", "    fi",
                  "  else",
                  "    insmod part_msdos", "    set root=(hd0)", "    chainloader +1", "    boot",
                  "  fi",
                  "  echo 'No local disk to boot (no EFI system partition found)'", "  sleep 5"]
    elif kind == "exit":
        lines.append("  exit")
    lines.append("}")
    return lines


def render(menu: Menu) -> str:
    """The grub.cfg for `menu` (see menu.resolve)."""
    entries, forced, default = bootable(menu, SUPPORTED)
    lines = [comment(menu)]
    if forced:
        lines += [f"set default={quote(forced)}", "set timeout=0"]
    else:
        if default:
            lines.append(f"set default={quote(default)}")
        # iPXE's and PXELINUX's 0 waits for a choice; GRUB's 0 boots at once.
        timeout = menu["timeout"]
        lines.append(f"set timeout={max(1, round(timeout)) if timeout else -1}")
    for entry in entries:
        lines.extend(_entry(entry))
    return "\n".join(lines) + "\n"


def bootstrap(base: str) -> str:
    """The grub.cfg that fetches the machine's own menu from `base` over HTTP.

    `base` is `(http,host:port)/mount` (validated by the caller). GRUB knows
    the MAC and address once its network is up; `smbios` gives the UUID in
    iPXE's byte order (measured); GRUB's `pc` platform is iPXE's `pcbios`.
    The URL is double-quoted so the variables expand, and so that `&` is not
    GRUB syntax.
    """
    return (
        "# scgi-bootmenu: fetch this machine's menu over HTTP\n"
        "insmod http\n"
        "insmod smbios\n"
        "smbios --type 1 --get-uuid 8 --set bootmenu_uuid\n"
        "set bootmenu_platform=\"$grub_platform\"\n"
        "if [ \"$grub_platform\" = pc ]; then set bootmenu_platform=pcbios; fi\n"
        f"configfile \"{base}/grub/grub.cfg?mac=${{net_default_mac}}&uuid=${{bootmenu_uuid}}"
        "&ip=${net_default_ip}&buildarch=${grub_cpu}&platform=${bootmenu_platform}\"\n"
    )
