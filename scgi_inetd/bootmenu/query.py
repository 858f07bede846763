"""Query strings and cookies, parsed by hand.

`urllib.parse` costs about 6 ms of import on every request; the app needs only
name=value pairs and percent-decoding. Parsing is tolerant on purpose: iPXE's
`:uristring` leaves '&' unescaped (a serial "A&B" arrives as `serial=A&B`),
so a part without '=' is dropped rather than refused, and every value is
validated later by `identity` anyway.
"""

from __future__ import annotations

__all__ = ["parse_cookies", "parse_pairs", "parse_query", "unquote"]

_HEX = b"0123456789abcdefABCDEF"


def unquote(text: str, *, plus: bool) -> str | None:
    """Percent-decode `text` (and '+' as space when `plus`); None if not UTF-8.

    A '%' not followed by two hex digits is kept literally, as browsers do.
    """
    if plus:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        pair = raw[i + 1:i + 3]
        if raw[i] == 0x25 and len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_pairs(text: str, separator: str, *, plus: bool) -> dict[str, str]:
    """Split `a=1<sep>b=2` into a dict; the first occurrence of a name wins.

    Names and values are percent-decoded; parts without '=' and parts that do
    not decode as UTF-8 are dropped.
    """
    pairs: dict[str, str] = {}
    for part in text.split(separator):
        name, eq, value = part.strip(" ").partition("=")
        if not eq:
            continue
        name_text = unquote(name, plus=plus)
        value_text = unquote(value, plus=plus)
        if name_text is None or value_text is None or name_text in pairs:
            continue
        pairs[name_text] = value_text
    return pairs


def parse_query(query_string: str) -> dict[str, str]:
    """The request's query parameters (form encoding: '+' is a space)."""
    return parse_pairs(query_string, "&", plus=True) if query_string else {}


def parse_cookies(header: str) -> dict[str, str]:
    """Cookies from a `Cookie:` header.

    lpxelinux.0 sends `_Syslinux_ip=10.0.2.15%3A...;_Syslinux_BOOTIF=01-...`
    with or without a space after ';' and leaves a literal '+' unescaped, so
    '+' is kept as is and only %XX is decoded. Two Cookie lines that a front
    end joined with ", " or "; " parse the same.
    """
    return parse_pairs(header.replace(", _", "; _"), ";", plus=False) if header else {}
