"""Load and validate the boot-menu TOML file into plain, ready-to-use data.

Validation collects every error with its key path (`entries[2].kernel: ...`)
instead of stopping at the first, so `check` can list them all. The result is
made of dicts, lists, tuples, str, int and float only, so that `loader` can
cache it with `marshal`. This module is imported only when the cache is stale
and by the command line: requests normally never load it, nor `tomllib`.

See docs/bootmenu.md for the format.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Any, Container

from . import identity, template
from .errors import ConfigError
from .rules import MACHINE_KEYS

__all__ = ["BUILTIN_VARIABLES", "KINDS", "MATCH_KEYS", "MAX_NAME", "MAX_TIMEOUT", "SETTABLE_BUILTINS",
           "is_entry_name", "is_file_name", "parse", "validate"]

BUILTIN_VARIABLES = ("mac", "mac_hyphen", "uuid", "ip", "hostname", "buildarch", "platform")
"""Variables filled from the request; all but `hostname` are reserved.

Only strictly validated values (hex, digits, fixed words, RFC 1123 names) are
exposed: serial, manufacturer and product can hold spaces and punctuation
that would split or change an iPXE command line, so they are used for
matching only."""

SETTABLE_BUILTINS = ("hostname",)

KINDS = {
    "linux": ({"kernel"}, {"initrd", "args"}),
    "memtest": ({"kernel"}, {"args"}),
    "chain": ({"url"}, set()),
    "sanboot": ({"url"}, set()),
    "local": (set(), set()),
    "exit": (set(), set()),
    "shell": (set(), set()),
    "script": ({"lines"}, set()),
}
"""Entry kind -> (required fields, optional fields), besides name, label, kind."""

MATCH_KEYS = ("mac", "uuid", "serial", "hostname", "ip", "buildarch", "platform", "manufacturer", "product")

MAX_TIMEOUT = 3600
MAX_NAME = 32


def is_entry_name(text: str) -> bool:
    """Entry and rule names: also iPXE labels and PXELINUX LABELs."""
    return (0 < len(text) <= MAX_NAME and text.isascii() and text[0].isalnum()
            and text == text.lower() and text.replace("-", "a").replace("_", "a").isalnum())


def is_file_name(text: str) -> bool:
    return (0 < len(text) <= 64 and text.isascii() and text[0] != "."
            and text.replace("-", "a").replace("_", "a").replace(".", "a").isalnum())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Checker:
    """Collects errors while turning the parsed TOML into validated data."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.variables: dict[str, str] = {}  # [variables], once validated
        self.entries: dict[str, dict] = {}  # [[entries]] by name, once validated

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def table(self, value: Any, path: str, required: set[str], optional: set[str]) -> dict | None:
        if not isinstance(value, dict):
            self.error(path, f"must be a table, not {type(value).__name__}")
            return None
        for key in value:
            if key not in required and key not in optional:
                self.error(f"{path}.{key}" if path else key, "unknown key")
        for key in sorted(required - value.keys()):
            self.error(f"{path}.{key}" if path else key, "missing")
        return value

    def string(self, value: Any, path: str, *, empty: bool = False) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"must be a string, not {type(value).__name__}")
            return None
        if not empty and not value.strip():
            self.error(path, "must not be empty")
            return None
        return value

    def name(self, table: dict, path: str, taken: "Container[str]", what: str) -> str | None:
        """The table's `name`: a valid name (is_entry_name), not one of `taken`."""
        name = self.string(table.get("name", ""), f"{path}.name") if "name" in table else None
        if name is not None:
            if not is_entry_name(name):
                self.error(f"{path}.name", f"{name!r}: lower-case letters, digits, '-' and '_', at most {MAX_NAME}")
            elif name in taken:
                self.error(f"{path}.name", f"duplicate {what} name {name!r}")
        return name

    def strings(self, value: Any, path: str, *, single: bool = True) -> list[str] | None:
        """A string or a non-empty list of strings, as a list."""
        if single and isinstance(value, str):
            value = [value]
            paths = [path]
        elif isinstance(value, list) and value:
            paths = [f"{path}[{i}]" for i in range(len(value))]
        else:
            self.error(path, "must be a string or a non-empty list of strings" if single
                       else "must be a non-empty list of strings")
            return None
        out = [self.string(item, item_path) for item, item_path in zip(value, paths)]
        return None if None in out else out  # type: ignore[return-value]

    def number(self, value: Any, path: str, maximum: float) -> float | int | None:
        if not _is_number(value) or not 0 <= value <= maximum:
            self.error(path, f"must be a number from 0 to {maximum}")
            return None
        return value

    def templated(self, text: str | None, path: str, *, command: bool = True) -> None:
        """Refuse unknown {{variables}} in `text`, and on an iPXE command line an option or a second command."""
        if text is None:
            return
        for name in template.names(text):
            if name not in self.variables and name not in BUILTIN_VARIABLES:
                self.error(path, f"unknown variable {{{{{name}}}}}")
        if command:
            # Values that land on an iPXE command line must not read as an
            # option (leading '-') or chain another command ('||', '&&').
            words = text.split()
            if text.lstrip().startswith("-") and not path.endswith(".args"):
                self.error(path, f"must not start with '-' (iPXE would read an option): {text!r}")
            if "||" in words or "&&" in words:
                self.error(path, f"'||' or '&&' would start another iPXE command: {text!r}")

    def entry_list(self, value: Any, path: str) -> list[str] | None:
        """A list of entry names, each declared and listed once."""
        names = self.strings(value, path, single=False)
        if names is None:
            return None
        for j, name in enumerate(names):
            if name not in self.entries:
                self.error(f"{path}[{j}]", f"no entry named {name!r}")
            elif names.index(name) != j:
                self.error(f"{path}[{j}]", f"{name!r} listed twice")
        return names

    def entry_name(self, value: Any, path: str) -> str | None:
        """The name of a declared entry (a default)."""
        name = self.string(value, path)
        if name is not None and name not in self.entries:
            self.error(path, f"dangling default: no entry named {name!r}")
            return None
        return name

    def control_characters(self, value: Any, path: str) -> None:
        """Refuse a newline or other control character anywhere but in file
        texts (which may hold newlines and tabs): a config value ends up on
        one line of an iPXE or PXELINUX script."""
        if isinstance(value, dict):
            for key, item in value.items():
                key_path = f"{path}.{key}" if path else key
                if not key.isprintable():
                    self.error(f"{path}.{key!r}" if path else repr(key), "control character in a key")
                if key_path != "files":
                    self.control_characters(item, key_path)
                elif isinstance(item, dict):
                    for name, text in item.items():
                        if isinstance(text, str) and not text.replace("\n", "").replace("\t", "").isprintable():
                            self.error(f"files.{name}", "control character other than newline or tab")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.control_characters(item, f"{path}[{i}]")
        elif isinstance(value, str) and not value.isprintable():
            self.error(path, f"newline or other control character in {value!r}")


def validate(document: dict) -> dict:
    """Validate a parsed TOML document; return the ready-to-use config.

    Raises ConfigError listing every problem found. Each section has its
    validator; they share one _Checker, which collects the errors and knows
    the variables and entries declared so far (later sections name them).
    """
    check = _Checker()
    check.control_characters(document, "")
    top = check.table(document, "", {"server", "menu", "entries"}, {"variables", "rules", "files"}) or {}
    config: dict[str, Any] = _server(check, top.get("server", {}))
    config["variables"] = _variables(check, top.get("variables", {}))
    config["entries"] = _entries(check, top)
    config["menu"] = _menu(check, top.get("menu", {}))
    config["rules"] = _rules(check, top.get("rules", []))
    config["files"] = _files(check, top.get("files", {}))
    if check.errors:
        raise ConfigError(check.errors)
    config["index"], config["scan"] = _index(config["rules"])
    return config


def _server(check: _Checker, raw: Any) -> dict[str, Any]:
    """[server]: the state database, its lock timeout, the PXELINUX UI and the EFI local loader."""
    server = check.table(raw, "server", {"state"}, {"state_timeout", "pxelinux_ui", "efi_local"}) or {}
    config: dict[str, Any] = {}
    config["state"] = check.string(server.get("state", ""), "server.state") if "state" in server else ""
    if config["state"] and not config["state"].startswith("/"):
        # A super-server starts the app in / (or anywhere): a relative path
        # would name a different file for the app than for the command line.
        check.error("server.state", f"must be an absolute path, not {config['state']!r}")
    config["state_timeout"] = check.number(server.get("state_timeout", 5.0), "server.state_timeout", 60)
    config["pxelinux_ui"] = check.string(server.get("pxelinux_ui", "menu.c32"), "server.pxelinux_ui", empty=True)
    # The EFI loader iPXE chains for `local` (docs/bootmenu.md, "Local boot on UEFI").
    config["efi_local"] = check.string(server.get("efi_local", ""), "server.efi_local", empty=True)
    if config["efi_local"] and (config["efi_local"].lstrip().startswith("-") or len(config["efi_local"].split()) != 1):
        check.error("server.efi_local", f"must be one URL: {config['efi_local']!r}")
    return config


def _variables(check: _Checker, raw: Any) -> dict[str, str]:
    """[variables]: the operator's template variables and their defaults."""
    variables: dict[str, str] = {}
    if check.table(raw, "variables", set(), set(raw) if isinstance(raw, dict) else set()):
        for name, value in raw.items():
            path = f"variables.{name}"
            if not template.is_name(name):
                check.error(path, "a variable name is letters, digits and '_'")
            elif name in BUILTIN_VARIABLES and name not in SETTABLE_BUILTINS:
                check.error(path, "reserved: filled from the request")
            value = check.string(value, path, empty=True)
            if value is not None:
                variables[name] = value
    check.variables = variables
    return variables


def _entries(check: _Checker, top: dict) -> dict[str, dict]:
    """[[entries]]: the bootable entries by name, each checked against its kind."""
    entries: dict[str, dict] = {}
    check.entries = entries
    raw_entries = top.get("entries", [])
    if not isinstance(raw_entries, list) or not raw_entries:
        if "entries" in top:
            check.error("entries", "must be a non-empty array of tables ([[entries]])")
        raw_entries = []
    for i, raw in enumerate(raw_entries):
        path = f"entries[{i}]"
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind is not None and kind not in KINDS:
            check.error(f"{path}.kind", f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
            kind = None
        required, optional = KINDS.get(kind, (set(), set())) if kind else (set(), set(raw) if isinstance(raw, dict) else set())
        entry = check.table(raw, path, {"name", "kind"} | required, {"label"} | optional)
        if entry is None:
            continue
        name = check.name(entry, path, entries, "entry")
        if kind is None or name is None:
            continue
        out: dict[str, Any] = {"name": name, "kind": kind}
        out["label"] = check.string(entry.get("label", name), f"{path}.label")
        check.templated(out["label"], f"{path}.label")
        for field in ("kernel", "url", "args"):
            if field in entry:
                out[field] = check.string(entry[field], f"{path}.{field}", empty=field == "args")
                check.templated(out[field], f"{path}.{field}")
        for field in ("initrd", "lines"):
            if field in entry:
                out[field] = check.strings(entry[field], f"{path}.{field}", single=field == "initrd")
                for j, text in enumerate(out[field] or ()):
                    check.templated(text, f"{path}.{field}[{j}]", command=field != "lines")
        entries[name] = out
    return entries


def _menu(check: _Checker, raw: Any) -> dict[str, Any]:
    """[menu]: the catch-all menu's title, timeout, entries and default."""
    menu = check.table(raw, "menu", {"default"}, {"title", "timeout", "entries"}) or {}
    config_menu: dict[str, Any] = {
        "title": check.string(menu.get("title", "Boot menu"), "menu.title"),
        "timeout": check.number(menu.get("timeout", 10), "menu.timeout", MAX_TIMEOUT),
        "entries": check.entry_list(menu["entries"], "menu.entries") if "entries" in menu else list(check.entries),
        "default": check.entry_name(menu["default"], "menu.default") if "default" in menu else None,
    }
    check.templated(config_menu["title"], "menu.title")
    if config_menu["default"] and config_menu["entries"] and config_menu["default"] not in config_menu["entries"]:
        check.error("menu.default", f"{config_menu['default']!r} is not in menu.entries")
    return config_menu


def _rules(check: _Checker, raw_rules: Any) -> list[dict]:
    """[[rules]]: host rules, each a match and what it changes of the menu."""
    rules: list[dict] = []
    if not isinstance(raw_rules, list):
        check.error("rules", "must be an array of tables ([[rules]])")
        raw_rules = []
    rule_names: set[str] = set()
    for i, raw in enumerate(raw_rules):
        path = f"rules[{i}]"
        rule = check.table(raw, path, {"name", "match"}, {"default", "timeout", "entries", "variables"})
        if rule is None:
            continue
        name = check.name(rule, path, rule_names, "rule")
        if name is not None:
            rule_names.add(name)
        out: dict[str, Any] = {"name": name,
                               "match": _match(check, rule.get("match"), f"{path}.match") if "match" in rule else {}}
        if "default" in rule:
            out["default"] = check.entry_name(rule["default"], f"{path}.default")
        if "timeout" in rule:
            out["timeout"] = check.number(rule["timeout"], f"{path}.timeout", MAX_TIMEOUT)
        if "entries" in rule:
            out["entries"] = check.entry_list(rule["entries"], f"{path}.entries")
            if out.get("default") and out["entries"] and out["default"] not in out["entries"]:
                check.error(f"{path}.default", f"{out['default']!r} is not in {path}.entries")
        out["variables"] = _rule_variables(check, rule.get("variables", {}), f"{path}.variables")
        rules.append(out)
    return rules


def _rule_variables(check: _Checker, raw: Any, path: str) -> dict[str, str]:
    """A rule's variables: only those [variables] declares, or the settable built-ins."""
    rule_variables: dict[str, str] = {}
    if check.table(raw, path, set(), set(raw) if isinstance(raw, dict) else set()):
        for var, value in raw.items():
            var_path = f"{path}.{var}"
            if var not in check.variables and var not in SETTABLE_BUILTINS:
                check.error(var_path, "not declared in [variables] (declare it there with a default)")
            value = check.string(value, var_path, empty=True)
            if value is not None:
                rule_variables[var] = value
    return rule_variables


def _files(check: _Checker, raw: Any) -> dict[str, str]:
    """[files]: file templates served under /files/NAME."""
    files: dict[str, str] = {}
    if check.table(raw, "files", set(), set(raw) if isinstance(raw, dict) else set()):
        for name, text in raw.items():
            if not is_file_name(name):
                check.error(f"files.{name}", "a file name is letters, digits, '.', '-' and '_'")
            text = check.string(text, f"files.{name}", empty=True)
            check.templated(text, f"files.{name}", command=False)
            if text is not None:
                files[name] = text
    return files


def _match(check: _Checker, raw: Any, path: str) -> dict:
    """A rule's `match` table, each key a list of normalised values."""
    match = check.table(raw, path, set(), set(MATCH_KEYS))
    if match is None:
        return {}
    if not match:
        check.error(path, f"needs at least one of {', '.join(MATCH_KEYS)} (the [menu] is the catch-all)")
    out: dict[str, list] = {}
    for key, value in match.items():
        if key not in MATCH_KEYS:
            continue
        values = check.strings(value, f"{path}.{key}")
        if values is None:
            continue
        parse = {
            "mac": identity.parse_mac, "uuid": identity.parse_uuid, "serial": identity.parse_text,
            "hostname": identity.parse_hostname, "ip": identity.parse_cidr,
            "buildarch": identity.parse_choice(identity.BUILDARCHES),
            "platform": identity.parse_choice(identity.PLATFORMS),
            "manufacturer": identity.parse_text, "product": identity.parse_text,
        }[key]
        normalised = []
        for j, text in enumerate(values):
            valid = parse(text)
            if valid is None:
                where = f"{path}.{key}" if isinstance(value, str) else f"{path}.{key}[{j}]"
                check.error(where, _BAD[key].format(text))
            else:
                normalised.append(valid)
        out[key] = normalised
    return out


_BAD = {
    "mac": "bad MAC address {!r} (aa:bb:cc:dd:ee:ff, aa-bb-.. or 12 hex digits)",
    "uuid": "bad UUID {!r} (as iPXE's ${{uuid}} prints it)",
    "serial": "bad serial {!r} (printable ASCII, at most 128)",
    "manufacturer": "bad manufacturer {!r} (printable ASCII, at most 128)",
    "product": "bad product {!r} (printable ASCII, at most 128)",
    "hostname": "bad host name {!r} (RFC 1123)",
    "ip": "bad IPv4 address or CIDR {!r} (10.0.0.0/8; no host bits set)",
    "buildarch": "bad buildarch {!r} (one of " + ", ".join(sorted(identity.BUILDARCHES)) + ")",
    "platform": "bad platform {!r} (one of " + ", ".join(sorted(identity.PLATFORMS)) + ")",
}


def _index(rules: list[dict]) -> tuple[dict, list[int]]:
    """Index rules by their first machine key, so a match looks up a few
    candidates instead of scanning every rule; the rest are scanned."""
    index: dict[str, dict[str, list[int]]] = {key: {} for key in MACHINE_KEYS}
    scan: list[int] = []
    for i, rule in enumerate(rules):
        for key in MACHINE_KEYS:
            if key in rule["match"]:
                for value in rule["match"][key]:
                    index[key].setdefault(value, []).append(i)
                break
        else:
            scan.append(i)
    return index, scan


def parse(raw: bytes) -> dict:
    """Parse and validate the bytes of a config file."""
    import tomllib

    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"TOML: {exc}"]) from None
    return validate(document)
