"""What a booting machine says about itself, validated and normalised.

Every value arrives from the network (a query string, a PXELINUX file name, a
cookie), so each one is checked with plain `str` methods (no `re`: import
cost) and either normalised or dropped. A dropped value is simply unknown: it
matches no rule and is never written into a script, so a newline in a query
value can never become an iPXE or PXELINUX command.

Free-form strings (serial, manufacturer, product, host name) come as
`KEY_hex=41-42-2b-31` (iPXE's `${serial:hexhyp}`): iPXE's `:uristring` leaves
'+', '&' and '#' unescaped, so `serial=AB+12` would read as "AB 12" and
`A&B` as "A"; hex bytes read back exactly, and hyphens (unlike `:hex`'s
colons) keep a relative URL from looking like it has a scheme. The plain
`KEY=` form is still read when no `KEY_hex` is sent.

UUIDs are kept in RFC 4122 byte order, as iPXE's `${uuid}` prints them.
PXELINUX prints the same machine's UUID with its first three fields
byte-swapped (SMBIOS little-endian, measured), so values taken from PXELINUX
are swapped back: one machine matches the same rules, and shows once in the
inventory, whichever loader asks.
"""

from __future__ import annotations

__all__ = ["BUILDARCHES", "HEX_KEYS", "KEYS", "MAX_TEXT", "PLATFORMS", "QUERY_NAMES", "decode_hex",
           "encode_hex", "format_ipv4", "from_grub_name", "from_pxelinux_cookies", "from_pxelinux_name",
           "from_query", "grub_names", "parse_choice", "parse_cidr", "parse_hostname", "parse_ip",
           "parse_ipv4", "parse_mac", "parse_text", "parse_uuid", "pxelinux_names", "swap_uuid", "to_query"]

_HEXDIGITS = frozenset("0123456789abcdef")

BUILDARCHES = frozenset({"i386", "x86_64", "arm32", "arm64", "riscv32", "riscv64", "loong64"})
"""iPXE's `${buildarch}` values (the loader's build, not the CPU)."""

PLATFORMS = frozenset({"pcbios", "efi", "sbi"})
"""iPXE's `${platform}` values."""

MAX_TEXT = 128
"""Longest serial, manufacturer or product kept; SMBIOS strings are short."""

Identity = dict[str, str]
"""Validated facts about one machine: mac, uuid, ip, hostname, serial,
buildarch, platform, manufacturer, product (each present only when valid)."""


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in _HEXDIGITS for c in text)


def parse_mac(text: str) -> str | None:
    """`aa:bb:cc:dd:ee:ff` from colon, dash or bare-hex forms, any case."""
    text = text.strip().lower()
    if len(text) == 17 and text[2::3] in (":::::", "-----"):
        text = "".join(text[i:i + 2] for i in range(0, 17, 3))
    if len(text) != 12 or not _is_hex(text):
        return None
    return ":".join(text[i:i + 2] for i in range(0, 12, 2))


def parse_uuid(text: str) -> str | None:
    """`12345678-1234-5678-9abc-def012345678` (lower case) or None.

    The all-zero UUID is what a machine without one reports (iPXE prints it,
    PXELINUX skips it): it identifies nothing, so it is dropped.
    """
    text = text.strip().lower()
    if len(text) == 36 and text[8] + text[13] + text[18] + text[23] == "----":
        text = text.replace("-", "")
    if len(text) != 32 or not _is_hex(text) or text == "0" * 32:
        return None
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def swap_uuid(uuid: str) -> str:
    """Swap the byte order of the first three fields (PXELINUX <-> RFC 4122).

    The operation is its own inverse. `uuid` must already be normalised.
    """
    a, b, c, rest = uuid[:8], uuid[9:13], uuid[14:18], uuid[18:]
    return (a[6:8] + a[4:6] + a[2:4] + a[0:2] + "-" + b[2:4] + b[0:2] + "-"
            + c[2:4] + c[0:2] + rest)


def parse_hostname(text: str) -> str | None:
    """A host name per RFC 1123 (letters, digits, '-', dots), lower-cased."""
    text = text.strip().lower().removesuffix(".")
    if not text or len(text) > 253 or not text.isascii():
        return None
    for label in text.split("."):
        if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return None
        if not label.replace("-", "").isalnum():
            return None
    return text


def parse_ipv4(text: str) -> int | None:
    """A dotted-quad IPv4 address as an integer, or None."""
    parts = text.strip().split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (part.isdigit() and part.isascii()) or len(part) > 3 or (len(part) > 1 and part[0] == "0"):
            return None
        number = int(part)
        if number > 255:
            return None
        value = value << 8 | number
    return value


def format_ipv4(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def parse_ip(text: str) -> str | None:
    """A dotted-quad IPv4 address in canonical form, or None."""
    value = parse_ipv4(text)
    return None if value is None else format_ipv4(value)


def parse_cidr(text: str) -> tuple[int, int] | None:
    """`10.0.0.0/8` or a bare address (a /32) as (network, prefix length)."""
    address, slash, length = text.strip().partition("/")
    value = parse_ipv4(address)
    if value is None:
        return None
    if not slash:
        return value, 32
    if not (length.isdigit() and length.isascii()) or int(length) > 32 or len(length) > 2:
        return None
    prefix = int(length)
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    if value & ~mask & 0xFFFFFFFF:
        return None  # host bits set: almost always a typo
    return value, prefix


def parse_text(text: str) -> str | None:
    """A serial, manufacturer or product string: printable ASCII, trimmed of ASCII blanks.

    Only ASCII whitespace is trimmed, as the hex form (bytes) is read: a
    non-ASCII blank such as U+00A0 makes the value invalid on both paths.
    """
    text = text.strip(" \t\n\r\v\f")
    if not text or len(text) > MAX_TEXT or not text.isascii() or not text.isprintable():
        return None
    return text


def decode_hex(text: str) -> str | None:
    """`41-42-2b-31` (or `41:42:..`, or bare `41422b31`) as a string, or None
    when it is not whole hex bytes of ASCII text."""
    text = text.strip().lower().replace("-", "").replace(":", "")
    if len(text) % 2 or not _is_hex(text):
        return None
    raw = bytes.fromhex(text)
    return raw.decode("ascii") if raw.isascii() else None


def encode_hex(text: str) -> str:
    """The `${KEY:hexhyp}` form of `text` (UTF-8 bytes), as iPXE sends it."""
    return text.encode("utf-8").hex("-")


def parse_choice(choices: frozenset[str]):
    def parse(text: str) -> str | None:
        text = text.strip().lower()
        return text if text in choices else None
    return parse


_PARSERS = {
    "mac": parse_mac,
    "uuid": parse_uuid,
    "ip": parse_ip,
    "hostname": parse_hostname,
    "serial": parse_text,
    "buildarch": parse_choice(BUILDARCHES),
    "platform": parse_choice(PLATFORMS),
    "manufacturer": parse_text,
    "product": parse_text,
}

KEYS = tuple(_PARSERS)
"""The identity keys a query string may carry."""

HEX_KEYS = ("hostname", "serial", "manufacturer", "product")
"""Keys also read as `KEY_hex` (hex bytes): free-form strings."""

QUERY_NAMES = KEYS + tuple(f"{key}_hex" for key in HEX_KEYS)
"""Every query parameter that says something about the machine."""


def from_query(params: dict[str, str], remote_addr: str = "") -> Identity:
    """The valid identity values among query parameters; others are dropped.

    The address is the `ip` parameter when valid, else the peer address.
    """
    identity: Identity = {}
    for key, parse in _PARSERS.items():
        value = params.get(key)
        if key in HEX_KEYS and f"{key}_hex" in params:
            value = decode_hex(params[f"{key}_hex"])
        if value is not None:
            valid = parse(value)
            if valid is not None:
                identity[key] = valid
    if "ip" not in identity and remote_addr:
        ip = parse_ip(remote_addr)
        if ip is not None:
            identity["ip"] = ip
    return identity


def to_query(values: dict[str, str]) -> str:
    """The query string the chain-back would send for `values` (free-form
    strings hex-encoded, the rest percent-encoded), so that `render` reads
    its options through the same parser as a live request."""
    parts = []
    for key, value in values.items():
        if key in HEX_KEYS:
            parts.append(f"{key}_hex={encode_hex(value)}")
        else:
            parts.append(f"{key}=" + "".join(chr(b) if chr(b).isalnum() or b in b"-.:_" else f"%{b:02X}"
                                             for b in value.encode("utf-8")))
    return "&".join(parts)


def from_pxelinux_name(name: str) -> Identity | None:
    """What a `pxelinux.cfg/NAME` says: {} for `default` and shorter IP
    prefixes, the uuid, mac or ip for names that identify a machine, None for
    a name PXELINUX never asks for."""
    if name == "default":
        return {}
    if len(name) == 36:
        uuid = parse_uuid(name)
        return None if uuid is None else {"uuid": swap_uuid(uuid)}
    if name.startswith("01-") and len(name) == 20:
        mac = parse_mac(name[3:])
        return None if mac is None else {"mac": mac}
    if 0 < len(name) <= 8 and _is_hex(name.lower()):
        return {"ip": format_ipv4(int(name, 16))} if len(name) == 8 else {}
    return None


def from_grub_name(name: str) -> Identity | None:
    """What a GRUB config name says (`grub.cfg-01-<mac>`, `grub.cfg-<hex IP
    prefix>`, `grub.cfg`), as for PXELINUX's names; GRUB asks for no UUID name."""
    if name == "grub.cfg":
        return {}
    if not name.startswith("grub.cfg-") or len(name) == len("grub.cfg-") + 36:
        return None
    found = from_pxelinux_name(name[len("grub.cfg-"):])
    return None if found is None or name == "grub.cfg-default" else found


def grub_names(identity: Identity) -> list[str]:
    """The names GRUB's net config search tries, in its order (measured)."""
    return ["grub.cfg-" + name for name in pxelinux_names(identity) if len(name) != 36 and name != "default"] + ["grub.cfg"]


def from_pxelinux_cookies(cookies: dict[str, str]) -> Identity:
    """The identity in lpxelinux.0's cookies (sent with every request).

    `_Syslinux_BOOTIF=01-<mac with dashes>`, `_Syslinux_SYSUUID` in PXELINUX's
    byte order, `_Syslinux_ip=<client>:<server>:<gateway>:<netmask>`.
    """
    identity: Identity = {}
    bootif = cookies.get("_Syslinux_BOOTIF", "")
    mac = parse_mac(bootif[3:]) if bootif.startswith("01-") else None
    if mac:
        identity["mac"] = mac
    uuid = parse_uuid(cookies.get("_Syslinux_SYSUUID", ""))
    if uuid:
        identity["uuid"] = swap_uuid(uuid)
    ip = parse_ip(cookies.get("_Syslinux_ip", "").partition(":")[0])
    if ip:
        identity["ip"] = ip
    return identity


def pxelinux_names(identity: Identity) -> list[str]:
    """The names PXELINUX tries, in its order, for this identity."""
    names = []
    if "uuid" in identity:
        names.append(swap_uuid(identity["uuid"]))
    if "mac" in identity:
        names.append("01-" + identity["mac"].replace(":", "-"))
    if "ip" in identity:
        hexip = f"{parse_ipv4(identity['ip']):08X}"
        names.extend(hexip[:n] for n in range(8, 0, -1))
    names.append("default")
    return names
