"""`export --tftp DIR`: the menus as static files, for loaders that cannot
ask the app (Secure Boot's shim -> signed GRUB reads its config over TFTP
only: `insmod http` is refused there).

Written for every machine a rule names by MAC, UUID (PXELINUX only: GRUB
asks for no UUID name) or an IPv4 network whose prefix is a whole number of
hex digits (/32, /28, ... /4: the shortened hex names both loaders try),
plus the default menus:

    pxelinux.cfg/01-<mac>, pxelinux.cfg/<uuid>, pxelinux.cfg/<HEX>, pxelinux.cfg/default
    grub/grub.cfg-01-<mac>, grub/grub.cfg-<HEX>, grub/grub.cfg

Debian's signed grubnetx64.efi (prefix /grub) reads only grub/grub.cfg, so
that file begins with a dispatcher that turns `$net_default_mac` into the
`grub.cfg-01-<mac>` name and loads that file when it exists; grub-mknetdir's
core.efi finds the per-machine names itself. Static files know no marks and
record no inventory: marks and `hosts` need the HTTP path.

Atomic: everything is written into a temporary directory inside DIR, every
target directory is made, and only then is each file renamed into place, so
an export that fails leaves DIR as it was (and says why in one line).
"""

from __future__ import annotations

import os
import shutil

from . import grub, identity, menu, pxelinux

__all__ = ["GRUB_DISPATCH", "ExportError", "export", "files"]

GRUB_DISPATCH = (
    "# scgi-bootmenu export: this machine's own file first; when there is none,\n"
    "# configfile says \"file not found\" and this default menu follows.\n"
    "# (GRUB's `test -f` cannot see TFTP files: TFTP lists no directories.)\n"
    "if regexp --set=1:m1 --set=2:m2 --set=3:m3 --set=4:m4 --set=5:m5 --set=6:m6"
    " '^(..):(..):(..):(..):(..):(..)$' \"$net_default_mac\"; then\n"
    "  configfile \"$prefix/grub.cfg-01-$m1-$m2-$m3-$m4-$m5-$m6\"\n"
    "fi\n"
)


class ExportError(Exception):
    """The export could not be written; DIR is unchanged.

    No RequestError: `scgi-bootmenu CONFIG export` is a command, not a
    request; it ends with exit status 1 and the message on stderr.
    """


def _machines(config: dict) -> list[tuple[identity.Identity, list[str], list[str]]]:
    """(identity, PXELINUX names, GRUB names) for each machine or network a rule names."""
    out = []
    for rule in config["rules"]:
        match = rule["match"]
        for mac in match.get("mac", ()):
            name = "01-" + mac.replace(":", "-")
            out.append(({"mac": mac}, [name], ["grub.cfg-" + name]))
        for uuid in match.get("uuid", ()):
            out.append(({"uuid": uuid}, [identity.swap_uuid(uuid)], []))
        for network, length in match.get("ip", ()):
            if length % 4 == 0 and length:
                hexip = f"{network:08X}"[:length // 4]
                # A network's own address matches its rule (and those wider).
                out.append(({"ip": identity.format_ipv4(network)}, [hexip], ["grub.cfg-" + hexip]))
    return out


def files(config: dict) -> dict[str, str]:
    """Relative path -> text of every file the export writes."""
    out: dict[str, str] = {}
    efi = {"platform": "efi", "buildarch": "x86_64"}  # the GRUB these files serve: x86_64-efi
    for machine, pxe_names, grub_names in _machines(config):
        for name in pxe_names:
            out[f"pxelinux.cfg/{name}"] = pxelinux.render(menu.resolve(config, machine))
        for name in grub_names:
            out[f"grub/{name}"] = grub.render(menu.resolve(config, machine | efi))
    out["pxelinux.cfg/default"] = pxelinux.render(menu.resolve(config, {}))
    out["grub/grub.cfg"] = GRUB_DISPATCH + grub.render(menu.resolve(config, efi))
    return out


def export(config: dict, directory: str) -> int:
    """Write `files(config)` under `directory`, all or nothing; how many."""
    texts = files(config)
    try:
        scratch = os.path.join(directory, f".scgi-bootmenu-export.{os.getpid()}")
        os.mkdir(scratch, 0o755)
    except OSError as exc:
        raise ExportError(f"cannot write {directory}: {exc.strerror}") from None
    try:
        for path, text in texts.items():
            os.makedirs(os.path.join(scratch, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(scratch, path), "w", encoding="utf-8") as file:
                file.write(text)
        for path in texts:
            os.makedirs(os.path.join(directory, os.path.dirname(path)), exist_ok=True)
        for path in texts:
            os.replace(os.path.join(scratch, path), os.path.join(directory, path))
    except OSError as exc:
        raise ExportError(f"cannot write {exc.filename or directory}: {exc.strerror}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return len(texts)
