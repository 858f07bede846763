"""One machine's menu: rules applied, variables expanded, ready to render.

Variables, lowest to highest: [variables], then the request's own values
(mac, mac_hyphen, uuid, ip, hostname, buildarch, platform; each only when
valid), then the variables of matching rules (most specific first wins).
So `hostname` in [variables] is the fallback for machines that send none.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Any

from . import rules, template
from .identity import Identity

__all__ = ["bootable", "comment", "has_rule", "render_file", "resolve", "variables_for"]

Menu = dict
"""A resolved menu: title, default, timeout, forced, entries, rules, mac, pxelinux_ui, efi_local."""


def variables_for(config: dict, identity: Identity, rule_variables: dict[str, str]) -> dict[str, str]:
    """The template variables for this machine."""
    variables = dict(config["variables"])
    for key in ("mac", "uuid", "ip", "hostname", "buildarch", "platform"):
        if key in identity:
            variables[key] = identity[key]
    if "mac" in identity:
        variables["mac_hyphen"] = identity["mac"].replace(":", "-")
    variables.update(rule_variables)
    return variables


def resolve(config: dict, identity: Identity, forced: str | None = None) -> Menu:
    """The menu `identity` gets; `forced` names an entry to boot at once
    (a one-shot mark), which is then shown even if its rules hide it."""
    decided = rules.settings(config, rules.matching(config, identity))
    variables = variables_for(config, identity, decided["variables"])
    names = list(decided["entries"])
    for extra in (decided["default"], forced):
        if extra is not None and extra not in names:
            names.append(extra)
    entries = []
    for name in names:
        entry = dict(config["entries"][name])
        for field in ("label", "kernel", "url", "args"):
            if field in entry:
                entry[field] = template.expand(entry[field], variables)
        for field in ("initrd", "lines"):
            if field in entry:
                entry[field] = [template.expand(text, variables) for text in entry[field]]
        entries.append(entry)
    return {
        "title": template.expand(config["menu"]["title"], variables),
        "default": decided["default"],
        "timeout": decided["timeout"],
        "forced": forced,
        "entries": entries,
        "rules": decided["rules"],
        "mac": identity.get("mac", ""),
        "pxelinux_ui": config["pxelinux_ui"],
        "efi_local": config.get("efi_local", ""),
    }


def comment(menu: Menu) -> str:
    """The first line of every rendered menu (after iPXE's `#!ipxe`): whom it
    is for and which rules applied, for people reading it."""
    return f"# scgi-bootmenu: {menu['mac'] or 'unknown machine'}; rules: {', '.join(menu['rules']) or 'none'}"


def bootable(menu: Menu, kinds: tuple[str, ...]) -> tuple[list[dict], str | None, str | None]:
    """The entries a loader can boot (of `kinds`), and the forced and the
    default entry's names when they are among them."""
    entries = [entry for entry in menu["entries"] if entry["kind"] in kinds]
    names = [entry["name"] for entry in entries]
    return (entries, menu["forced"] if menu["forced"] in names else None,
            menu["default"] if menu["default"] in names else None)


def has_rule(config: dict, identity: Identity) -> bool:
    """Whether any host rule matches `identity` (PXELINUX's per-machine names)."""
    return bool(rules.matching(config, identity))


def render_file(config: dict, name: str, identity: Identity) -> str:
    """File template `name` expanded with the machine's variables."""
    decided = rules.settings(config, rules.matching(config, identity))
    return template.expand(config["files"][name], variables_for(config, identity, decided["variables"]))
