"""The shipped examples fit together: examples/bootmenu.toml served behind
examples/nginx.conf (the session stack) and inetd.conf.example's boot
socket, every URL its menus and files hand out fetched through nginx.

A mount point that differs between the examples (the installer's preseed or
`done` URL under one prefix, nginx's location under another) answers 404
here, and an `--until-done` mark that is never cleared makes the machine
reinstall on every boot: both fail this test.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, bootmenu, require_frontend, stack

SERVER = "http://192.168.1.2"  # examples/dhcp/'s boot server, as the example config names it
DB1 = "52:54:00:12:34:56"      # the example's host rule
URL = re.compile(re.escape(SERVER) + r"[^\s'\"]+")
APP = re.compile(r"^/netboot/(boot\.ipxe$|pxelinux\.cfg/|grub/|files/|done$)")  # examples/nginx.conf


@pytest.fixture
def example(web: Stack, tmp_path: Path):
    """The session stack serving examples/bootmenu.toml for one test."""
    require_frontend("scgi-bootmenu")
    config = web.path("/srv/scgi/bootmenu.toml")
    saved = config.read_text()
    config.write_text((stack.EXAMPLES / "bootmenu.toml").read_text()
                      .replace("/var/lib/scgi-bootmenu/state.sqlite", str(tmp_path / "state.sqlite")))
    bootmenu(config, "init")
    try:
        yield config
    finally:
        config.write_text(saved)


def logged(web: Stack) -> dict[str, str]:
    """The access-log line of the latest request (nginx writes it just after answering)."""
    deadline = time.monotonic() + 5
    while len(web.nginx.access()) <= web.last_request and time.monotonic() < deadline:
        time.sleep(0.02)
    return web.nginx.access()[web.last_request]


def fetch(web: Stack, url: str, **headers: str):
    answer = web.request(url[len(SERVER):], headers=headers)
    return answer, logged(web)


def test_every_url_the_example_hands_out_is_routed_and_answers(web: Stack, example: Path) -> None:
    netboot = web.path("/srv/netboot")
    bootmenu(example, "next", DB1, "ubuntu-install", "--until-done")
    hyphen = DB1.replace(":", "-")
    menus = {
        "ipxe": fetch(web, f"{SERVER}/netboot/boot.ipxe?mac={hyphen}&platform=efi")[0].text,
        "pxelinux": fetch(web, f"{SERVER}/netboot/pxelinux.cfg/01-{hyphen}")[0].text,
        "grub": fetch(web, f"{SERVER}/netboot/grub/grub.cfg-01-{hyphen}")[0].text,
        "default": fetch(web, f"{SERVER}/netboot/pxelinux.cfg/default")[0].text,
    }
    assert "goto ubuntu-install" in menus["ipxe"] and "rules: db1, uefi" in menus["ipxe"], menus["ipxe"]
    urls = sorted({url for text in menus.values() for url in URL.findall(text)})
    preseed = [url for url in urls if url.endswith(f"/files/preseed.cfg?mac={DB1}")]
    assert preseed, urls
    answer, _ = fetch(web, preseed[0])
    urls += URL.findall(answer.text)
    done = [url for url in urls if "/netboot/done?" in url]
    assert done and all(url.endswith(f"done?mac={DB1}") for url in done), urls
    static = [url for url in urls if not APP.match(url[len(SERVER):].partition("?")[0])]
    assert any(url.endswith("/linux") for url in static) and any("memtest" in url for url in static), urls
    for url in static:  # kernels, initrds: plain files under /srv/netboot, never the app
        path = netboot / url[len(SERVER + "/netboot/"):].partition("?")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("file\n")
    urls = [url for url in urls if not url.endswith("mac=")]  # the default menu knows no MAC
    done = [url for url in done if url in urls]
    for url in sorted(set(urls) - set(done)) + done[:1]:
        answer, logged = fetch(web, url)
        assert answer.status == 200, (url, answer.status, answer.text)
        to_app = logged["upstream"].endswith("/boot.sock")
        assert to_app == (url not in static), (url, logged)
    assert fetch(web, done[0])[0].text == f"no mark for {DB1}\n"  # the fetch above cleared it
    assert "goto ubuntu-install" not in fetch(web, f"{SERVER}/netboot/boot.ipxe?mac={hyphen}")[0].text


def test_head_and_uefi_http_boot_through_the_example_nginx(web: Stack, example: Path) -> None:
    """UEFI HTTP Boot HEADs then GETs the boot file and gets snponly.efi
    (nginx switches on its user agent); iPXE gets the script; HEAD is GET
    without a body on every endpoint, and consumes no mark."""
    snponly = Path("/usr/lib/ipxe/snponly.efi")
    if not snponly.exists():
        pytest.skip("snponly.efi missing: apt-get install --no-install-recommends ipxe")
    link = web.path("/srv/netboot") / "snponly.efi"
    if not link.exists():
        link.symlink_to(snponly)
    for method in ("HEAD", "GET"):
        answer = web.request("/netboot/boot.ipxe", method=method, headers={"User-Agent": "UefiHttpBoot/1.0"})
        assert answer.status == 200 and answer.headers["Content-Length"] == str(snponly.stat().st_size)
        assert answer.headers["Content-Type"] == "application/efi"  # else OVMF refuses a .ipxe URL
        assert answer.body == (snponly.read_bytes() if method == "GET" else b"")
    bootmenu(example, "next", DB1, "memtest")
    hyphen = DB1.replace(":", "-")
    for path in ("/netboot/boot.ipxe", f"/netboot/boot.ipxe?mac={hyphen}", f"/netboot/pxelinux.cfg/01-{hyphen}",
                 f"/netboot/grub/grub.cfg-01-{hyphen}", "/netboot/grub/grub.cfg", f"/netboot/files/preseed.cfg?mac={DB1}",
                 f"/netboot/done?mac={DB1}"):
        head = web.request(path, method="HEAD", headers={"User-Agent": "iPXE/1.0"})
        assert head.status == 200 and head.body == b"", path
        assert logged(web)["upstream"].endswith("/boot.sock"), path
    get = web.request(f"/netboot/boot.ipxe?mac={hyphen}")
    assert "goto memtest" in get.text  # HEAD left the one-shot mark alone
