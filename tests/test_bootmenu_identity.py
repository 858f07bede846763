"""Validation of what booting machines send: tables of good and hostile values."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from scgi_inetd.bootmenu import identity
from scgi_inetd.bootmenu.query import parse_cookies, parse_query


@pytest.mark.parametrize("text, expected", [
    ("52:54:00:12:34:56", "52:54:00:12:34:56"),
    ("52-54-00-12-34-56", "52:54:00:12:34:56"),
    ("525400123456", "52:54:00:12:34:56"),
    ("52:54:00:AB:CD:EF", "52:54:00:ab:cd:ef"),
    (" 52:54:00:12:34:56 ", "52:54:00:12:34:56"),
    ("52:54:00:12:34", None),
    ("52:54:00:12:34:5g", None),
    ("52:54-00:12:34:56", None),
    ("52:54:00:12:34:56\n#!ipxe", None),
    ("5254001234567", None),
    ("", None),
    ("５２:54:00:12:34:56", None),
])
def test_mac(text, expected):
    assert identity.parse_mac(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("12345678-1234-5678-9ABC-def012345678", "12345678-1234-5678-9abc-def012345678"),
    ("12345678123456789abcdef012345678", "12345678-1234-5678-9abc-def012345678"),
    ("00000000-0000-0000-0000-000000000000", None),
    ("12345678-1234-5678-9abc-def01234567", None),
    ("12345678_1234_5678_9abc_def012345678", None),
    ("12345678-1234-5678-9abc-def01234567\n", None),
])
def test_uuid(text, expected):
    assert identity.parse_uuid(text) == expected


@given(st.uuids())
def test_uuid_swap_is_an_involution_and_matches_pxelinux(value):
    text = str(value)
    swapped = identity.swap_uuid(text)
    assert identity.swap_uuid(swapped) == text
    assert swapped == str(__import__("uuid").UUID(bytes_le=value.bytes))


def test_measured_pxelinux_uuid():
    assert identity.swap_uuid("12345678-1234-5678-9abc-def012345678") == "78563412-3412-7856-9abc-def012345678"


@pytest.mark.parametrize("text, expected", [
    ("db1", "db1"), ("DB1.Example.com.", "db1.example.com"), ("a-b", "a-b"),
    ("-ab", None), ("ab-", None), ("a_b", None), ("a b", None), ("a..b", None),
    ("a" * 64, None), ("x\nshell", None), ("ü", None), ("", None),
])
def test_hostname(text, expected):
    assert identity.parse_hostname(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("10.0.2.15", "10.0.2.15"), ("255.255.255.255", "255.255.255.255"),
    ("10.0.2", None), ("10.0.2.256", None), ("010.0.2.1", None), ("1e1.0.0.1", None),
    ("١٠.0.0.1", None), ("10.0.2.15\n", "10.0.2.15"), ("10.0.2.15\nshell", None),
])
def test_ip(text, expected):
    assert identity.parse_ip(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("10.0.0.0/8", (0x0A000000, 8)), ("10.0.2.15", (0x0A00020F, 32)), ("0.0.0.0/0", (0, 0)),
    ("10.0.0.1/8", None), ("10.0.0.0/33", None), ("10.0.0.0/", None), ("10.0.0.0/-1", None),
])
def test_cidr(text, expected):
    assert identity.parse_cidr(text) == expected


def test_fixed_sets():
    parse = identity.from_query
    assert parse({"buildarch": "x86_64", "platform": "efi"}) == {"buildarch": "x86_64", "platform": "efi"}
    assert parse({"buildarch": "x86_64\nshell", "platform": "bios"}) == {}


def test_pxelinux_names_in_measured_order():
    machine = {"uuid": "12345678-1234-5678-9abc-def012345678", "mac": "52:54:00:12:34:57", "ip": "10.0.2.15"}
    assert identity.pxelinux_names(machine) == [
        "78563412-3412-7856-9abc-def012345678", "01-52-54-00-12-34-57",
        "0A00020F", "0A00020", "0A0002", "0A000", "0A00", "0A0", "0A", "0", "default"]


@pytest.mark.parametrize("name, expected", [
    ("default", {}),
    ("78563412-3412-7856-9abc-def012345678", {"uuid": "12345678-1234-5678-9abc-def012345678"}),
    ("01-52-54-00-12-34-57", {"mac": "52:54:00:12:34:57"}),
    ("0A00020F", {"ip": "10.0.2.15"}),
    ("0A0002", {}),
    ("02-52-54-00-12-34-57", None),
    ("0A00020F0", None),
    ("../default", None),
    ("menu.c32", None),
])
def test_pxelinux_name(name, expected):
    assert identity.from_pxelinux_name(name) == expected


def test_pxelinux_cookies_as_measured():
    header = ("_Syslinux_ip=10.0.2.15%3A10.0.2.2%3A10.0.2.2%3A255.255.255.0;"
              "_Syslinux_BOOTIF=01-52-54-00-12-34-57;_Syslinux_SYSUUID=78563412-3412-7856-9abc-def012345678;"
              "_Syslinux_CPU=6PVXL;_Syslinux_SYSVENDOR=QEMU;_Syslinux_SYSPRODUCT=Standard+PC+(i440FX+%2B+PIIX%2C+1996)")
    cookies = parse_cookies(header)
    assert cookies["_Syslinux_SYSPRODUCT"] == "Standard+PC+(i440FX+++PIIX,+1996)"
    assert identity.from_pxelinux_cookies(cookies) == {
        "mac": "52:54:00:12:34:57", "uuid": "12345678-1234-5678-9abc-def012345678", "ip": "10.0.2.15"}
    spaced = parse_cookies(header.replace(";", "; "))
    assert identity.from_pxelinux_cookies(spaced) == identity.from_pxelinux_cookies(cookies)


@pytest.mark.parametrize("query, expected", [
    ("mac=52%3A54%3A00%3A12%3A34%3A56", {"mac": "52:54:00:12:34:56"}),
    ("serial=A+B&serial=C", {"serial": "A B"}),
    ("serial=A&B&mac=x", {"serial": "A", "mac": "x"}),   # iPXE's :uristring leaves '&' alone
    ("a=%zz%4", {"a": "%zz%4"}),
    ("a=%FF", {}),
    ("=&&=x&b", {"": ""}),
    ("", {}),
])
def test_query(query, expected):
    assert parse_query(query) == expected


@given(st.text())
def test_query_never_raises(text):
    for name, value in parse_query(text).items():
        assert isinstance(name, str) and isinstance(value, str)
    parse_cookies(text)


@given(st.text(max_size=40))
def test_hex_form_round_trips_printable_ascii(text):
    query = parse_query(identity.to_query({"serial": text, "product": text}))
    machine = identity.from_query(query)
    expected = identity.parse_text(text)
    assert machine.get("serial") == expected and machine.get("product") == expected


@pytest.mark.parametrize("text, expected", [
    ("41-42-2b-31", "AB+1"), ("41:42", "AB"), ("4142", "AB"), ("41-4", None), ("zz", None),
    ("c3-a9", None), ("", None),
])
def test_decode_hex(text, expected):
    assert identity.decode_hex(text) == expected


def test_a_non_ascii_blank_makes_a_value_invalid_in_both_forms():
    """Found by the round trip above: the plain form once trimmed U+00A0 and kept '0'."""
    assert identity.parse_text("0\xa0") is None
    machine = identity.from_query(parse_query(identity.to_query({"serial": "0\xa0"})))
    assert "serial" not in machine
