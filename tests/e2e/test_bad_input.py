"""Hostile requests through the real nginx: each gets its status, and nginx
logs no upstream error (the `web` fixture checks the log after each test)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack, require_frontend

MAC = "52:54:00:12:34:56"  # has a rule in bootmenu-test.toml
UUID = "12345678-1234-5678-9abc-def012345678"


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_header_too_large_for_nginx(web: Stack) -> None:
    """Beyond large_client_header_buffers nginx answers itself; nothing reaches inetd."""
    require_frontend("scgi-wsgi")
    answer = web.raw(b"GET /hello?too-big-for-nginx HTTP/1.0\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert status_of(answer) in (400, 431), answer[:200]


def test_header_too_large_for_the_front_end(web: Stack) -> None:
    """Under /big, nginx lets 300 KiB of headers through; the front-end refuses them.

    The front-end must answer 413 and exit cleanly, the rest of the oversized
    header unread behind it, without nginx seeing a reset.
    """
    require_frontend("scgi-wsgi")
    headers = b"".join(b"X-Big-%d: %s\r\n" % (n, b"b" * 30_000) for n in range(10))
    answer = web.raw(b"GET /big/hello HTTP/1.0\r\nHost: localhost\r\n" + headers + b"\r\n")
    assert status_of(answer) == 413, answer[:300]
    assert b"Traceback" not in answer


# (query, whether the MAC value itself is damaged)
CRLF_QUERIES = [
    (f"mac={MAC}%0d%0aX-Evil:%201&uuid={UUID}", True),
    (f"mac={MAC}&uuid={UUID}%0aX-Evil:%201", False),
    (f"mac={MAC}%0d%0a%0d%0a%23!ipxe%0ashell&uuid={UUID}", True),
]


@pytest.mark.parametrize("query, damaged_mac", CRLF_QUERIES, ids=[q for q, _ in CRLF_QUERIES])
def test_crlf_in_a_boot_menu_query_value(web: Stack, query: str, damaged_mac: bool) -> None:
    """The app drops an invalid value (iPXE's :uristring is sloppy, so the
    query is parsed tolerantly) or refuses the request; either way nothing of
    it reaches the response and the machine is not taken for the MAC."""
    require_frontend("scgi-bootmenu")
    answer = web.request(f"/netboot/boot.ipxe?{query}")
    assert answer.status in (200, 400), answer.text
    assert "X-Evil" not in answer.headers
    lines = answer.text.splitlines()
    assert not any(line.startswith("X-Evil") or line == "shell" for line in lines), answer.text
    assert "Traceback" not in answer.text
    if answer.status == 200 and damaged_mac:
        assert "--default ipxe-marker" not in answer.text, "a damaged MAC matched the rule"


def test_traversal_in_a_pxelinux_config_name(web: Stack) -> None:
    require_frontend("scgi-bootmenu")
    answer = web.raw(b"GET /netboot/pxelinux.cfg/..%2f..%2fbootmenu.toml HTTP/1.0\r\nHost: x\r\n\r\n")
    assert status_of(answer) in (400, 403, 404), answer[:300]
