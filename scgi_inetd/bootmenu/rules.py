"""Host rules: which rules match a machine, and what they decide together.

Precedence (docs/bootmenu.md): every matching rule applies, setting by
setting; for each setting (default, timeout, entries, each variable) the most
specific matching rule that sets it wins, and between equally specific rules
the one earlier in the file wins. Specificity compares, in order:
1. how many machine keys the rule matches on (mac, uuid, serial, hostname);
2. the prefix length of the matched `ip` network (a rule without `ip` counts
   as less specific than any with it);
3. how many of buildarch, platform, manufacturer and product it matches on
   (they name a kind of machine, not one).

Rules with a machine key are indexed by value (config._index), so matching
one request against 1,000 such rules costs a few dictionary look-ups.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Any

from .identity import Identity, parse_ipv4

__all__ = ["KIND_KEYS", "MACHINE_KEYS", "matching", "settings"]

MACHINE_KEYS = ("mac", "uuid", "serial", "hostname")
"""Keys that name one machine; rules using them are indexed by value."""

KIND_KEYS = ("buildarch", "platform", "manufacturer", "product")
"""Keys that name a kind of machine: the least specific."""


def _matches(rule: dict, identity: Identity, address: int | None) -> tuple[int, int, int] | None:
    """The rule's specificity for this machine, or None when it does not match."""
    match = rule["match"]
    machine = _keys_matched(match, identity, MACHINE_KEYS)
    if machine is None:
        return None
    prefix = 0
    if "ip" in match:
        if address is None:
            return None
        best = -1
        for network, length in match["ip"]:
            if length > best and (address ^ network) >> (32 - length) == 0:
                best = length
        if best < 0:
            return None
        prefix = best + 1
    kinds = _keys_matched(match, identity, KIND_KEYS)
    if kinds is None:
        return None
    return machine, prefix, kinds


def _keys_matched(match: dict, identity: dict, keys: "tuple[str, ...]") -> "int | None":
    """How many of `keys` the rule names, all matching this machine; None when one does not."""
    count = 0
    for key in keys:
        if key in match:
            if identity.get(key) not in match[key]:
                return None
            count += 1
    return count


def matching(config: dict, identity: Identity) -> list[int]:
    """Indices of the rules matching `identity`, most important first."""
    index = config["index"]
    candidates = set(config["scan"])
    for key in MACHINE_KEYS:
        value = identity.get(key)
        if value is not None:
            candidates.update(index[key].get(value, ()))
    if not candidates:
        return []
    address = parse_ipv4(identity["ip"]) if "ip" in identity else None
    rules = config["rules"]
    found = []
    for i in candidates:
        specificity = _matches(rules[i], identity, address)
        if specificity is not None:
            found.append((specificity, -i))
    found.sort(reverse=True)
    return [-negative for _, negative in found]


def settings(config: dict, matched: list[int]) -> dict[str, Any]:
    """The menu settings for a machine: [menu] overridden by its rules.

    `matched` is most important first, so the first rule that sets a
    setting decides it.
    """
    menu = config["menu"]
    result: dict[str, Any] = {"default": None, "timeout": None, "entries": None}
    variables: dict[str, str] = {}
    for i in matched:
        rule = config["rules"][i]
        for key in ("default", "timeout", "entries"):
            if result[key] is None and key in rule:
                result[key] = rule[key]
        for name, value in rule["variables"].items():
            variables.setdefault(name, value)
    for key in ("default", "timeout", "entries"):
        if result[key] is None:
            result[key] = menu[key]
    result["variables"] = variables
    result["rules"] = [config["rules"][i]["name"] for i in matched]
    return result
