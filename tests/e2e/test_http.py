"""The three front-ends behind a real nginx and a real inetd, proved through HTTP.

Every request goes browser -> nginx -> unix socket -> inetd -> a fresh
interpreter running the checkout's bin/ script, exactly as
inetd.conf.example and examples/nginx.conf describe. The `web` fixture
fails any test after which nginx logged an upstream error.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.e2e.conftest import Stack, require_frontend


def upstream_of(web: Stack, uri: str) -> str:
    """Which socket nginx passed the latest request for `uri` to ('-' for none)."""
    entries = web.nginx.wait_access(lambda entry: entry["uri"] == uri, since=web.last_request)
    assert entries, f"{uri} not in the access log"
    return entries[-1]["upstream"]


def assert_upstream(web: Stack, uri: str, socket_name: str) -> None:
    upstream = upstream_of(web, uri)
    assert upstream.endswith(f"/run/{socket_name}"), f"{uri} went to {upstream!r}"


def test_wsgi_hello(web: Stack) -> None:
    require_frontend("scgi-wsgi")
    answer = web.request("/hello")
    assert answer.status == 200, answer.text
    assert "hello" in answer.text.lower()
    assert_upstream(web, "/hello", "hello.sock")


def test_cgi_directory_mode_with_query_string(web: Stack) -> None:
    """examples/cgi-bin/hello.pl decodes the query string itself."""
    require_frontend("scgi-run")
    uri = "/cgi-bin/hello.pl?name=caf%C3%A9&sum=1+2&empty="
    answer = web.request(uri)
    assert answer.status == 200, answer.text
    lines = answer.text.splitlines()
    assert lines[0] == "Hello from Perl"
    assert "REQUEST_METHOD=GET" in lines
    assert "name: café" in lines
    assert "sum: 1 2" in lines
    assert "empty: " in lines
    assert_upstream(web, uri, "cgi.sock")


def test_shell_cgi_script_with_path_info(web: Stack) -> None:
    require_frontend("scgi-run")
    answer = web.request("/cgi-bin/hello.sh/extra/path?a=%20b")
    assert answer.status == 200, answer.text
    assert answer.text.splitlines() == ["Hello from sh", "QUERY_STRING=a=%20b",
                                        "PATH_INFO=/extra/path"]


def test_single_script_mode(web: Stack) -> None:
    require_frontend("scgi-run")
    answer = web.request("/hi?x=1")
    assert answer.status == 200, answer.text
    assert answer.text.splitlines()[:2] == ["Hello from sh", "QUERY_STRING=x=1"]
    assert_upstream(web, "/hi?x=1", "hi.sock")


def test_ten_mebibyte_post_is_echoed_intact(web: Stack) -> None:
    require_frontend("scgi-run")
    body = os.urandom(10 * 1024 * 1024)
    answer = web.request("/cgi-bin/echo-all.sh", method="POST", body=body,
                         headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert answer.status == 200, answer.body[:200]
    assert len(answer.body) == len(body)
    assert hashlib.sha256(answer.body).hexdigest() == hashlib.sha256(body).hexdigest()


# (raw request target, statuses allowed, must reach scgi-run)
TRAVERSAL = [
    ("/cgi-bin/../../../etc/passwd", {400, 403, 404}, False),      # nginx normalises
    ("/cgi-bin/%2e%2e/%2e%2e/%2e%2e/etc/passwd", {400, 403, 404}, False),
    ("/cgi-bin/..%2f..%2f..%2fetc%2fpasswd", {400, 403, 404}, False),
    ("/cgi-bin/escape.sh", {403, 404}, True),          # symlink to a script outside
    ("/cgi-bin/subdir", {403, 404}, True),             # a directory, not a script
    ("/cgi-bin/missing.sh", {404}, True),
    ("/cgi-bin/%2e%2e", {400, 403, 404}, False),
    ("/fixed/escape.sh", {403, 404}, True),
]


@pytest.mark.parametrize("target, statuses, upstream", TRAVERSAL,
                         ids=[case[0] for case in TRAVERSAL])
def test_traversal_is_refused(web: Stack, target: str, statuses: set[int], upstream: bool) -> None:
    require_frontend("scgi-run")
    answer = web.raw(f"GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
    status = int(answer.split(b" ", 2)[1])
    assert status in statuses, answer[:300]
    assert b"OUTSIDE-THE-CGI-DIRECTORY" not in answer
    assert b"root:" not in answer
    if upstream:
        assert upstream_of(web, target) != "-", "nginx answered itself"


def test_fix_status_adds_the_status_line(web: Stack) -> None:
    require_frontend("scgi-run")
    offset = web.nginx.error_offset()
    answer = web.request("/fixed/nostatus.sh")
    assert answer.status == 200, answer.text
    assert answer.text == "no status line\n"
    assert answer.headers["X-Script"] == "nostatus"
    assert_upstream(web, "/fixed/nostatus.sh", "fixed.sock")
    warnings = [line for line in web.nginx.log_lines(offset) if "upstream" in line]
    assert warnings == []


def test_resident_mode_behind_the_same_nginx(web: Stack) -> None:
    """inetd `wait`: one scgi-wsgi holds the listening socket and forks per connection."""
    require_frontend("scgi-wsgi")
    for _ in range(5):
        answer = web.request("/resident")
        assert answer.status == 200, answer.text
        assert "hello" in answer.text.lower()
    assert_upstream(web, "/resident", "resident.sock")
    residents = [pid for pid in web.inetd.children() if "resident" in cmdline(pid)]
    assert len(residents) == 1, "inetd wait: one resident process serves every request"


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_boot_menu_for_two_different_macs(web: Stack) -> None:
    """A MAC with a rule gets its default entry; another MAC gets the catch-all menu."""
    require_frontend("scgi-bootmenu")
    uuid = "12345678-1234-5678-9abc-def012345678"
    chain = web.request("/netboot/boot.ipxe")
    assert chain.status == 200, chain.text
    assert chain.text.startswith("#!ipxe") and "chain boot.ipxe?" in chain.text
    ruled = web.request(f"/netboot/boot.ipxe?mac=52:54:00:12:34:56&uuid={uuid}")
    other = web.request(f"/netboot/boot.ipxe?mac=52:54:00:00:00:99&uuid={uuid}")
    assert ruled.status == other.status == 200, (ruled.text, other.text)
    assert "--default ipxe-marker" in ruled.text, ruled.text
    assert "--default local" in other.text, other.text
    pxelinux = web.request("/netboot/pxelinux.cfg/01-52-54-00-12-34-57")
    assert pxelinux.status == 200, pxelinux.text
    assert "DEFAULT pxe-mac" in pxelinux.text
