"""What a one-shot request imports: the per-request path stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scgi_inetd.bootmenu.cli import main
from tests.bootmenu_helpers import MAC, write_config
from tests.support import EXPENSIVE_MODULES, child_env, one_shot_imports, python_cmd

REQUEST = r"""
import sys
before = set(sys.modules)
from scgi_inetd.bootmenu.app import make_app
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": sys.argv[2], "QUERY_STRING": sys.argv[3],
           "HTTP_COOKIE": sys.argv[4], "HTTP_HOST": "boot.example", "SERVER_PORT": "80", "wsgi.errors": sys.stderr}
status = []
response = make_app(sys.argv[1])(environ, lambda s, h: status.append(s))
b"".join(response)
getattr(response, "close", lambda: None)()
assert status == ["200 OK"], status
print(" ".join(sorted(set(sys.modules) - before)))
"""

NEVER = {"tomllib", "sqlite3", "re", "json", "logging", "urllib.parse", "argparse", "subprocess", "socket",
         "email", "tempfile", "typing", "datetime", "scgi_inetd.bootmenu.config", "scgi_inetd.bootmenu.cli",
         "scgi_inetd.bootmenu.admin", "scgi_inetd.bootmenu.export"}


def imported(path, url_path, query="", cookie=""):
    preload = "import scgi_inetd;"  # the package's own imports are the front-end's business
    code = preload + REQUEST
    out = subprocess.run([sys.executable, "-c", code, str(path), url_path, query, cookie], env=child_env(),
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("url_path, query, cookie, marked, sqlite", [
    ("/boot.ipxe", "", "", False, False),
    ("/files/preseed", f"mac={MAC}", "", False, False),
    ("/boot.ipxe", f"mac={MAC}&uuid=12345678-1234-5678-9abc-def012345678", "", False, False),
    ("/pxelinux.cfg/default", "", "_Syslinux_BOOTIF=01-52-54-00-12-34-56", False, False),
    ("/boot.ipxe", f"mac={MAC}", "", True, True),
    ("/pxelinux.cfg/default", "", "_Syslinux_BOOTIF=01-52-54-00-12-34-56", True, True),
    ("/boot.ipxe", "mac=52:54:00:00:00:99", "", True, False),  # another machine's mark
    ("/grub/grub.cfg", f"mac={MAC}&uuid=12345678-1234-5678-9abc-def012345678&platform=efi", "", False, False),
    ("/grub/grub.cfg", "", "", False, False),  # the bootstrap
    ("/boot.ipxe", f"mac={MAC}&serial_hex=41-42-2b-31", "", False, False),
])
def test_request_imports(tmp_path, url_path, query, cookie, marked, sqlite):
    path = write_config(tmp_path)
    assert main([str(path), "check"]) == 0  # fresh cache: no TOML parsing
    if marked:
        assert main([str(path), "next", MAC, "install"]) == 0
    modules = imported(path, url_path, query, cookie)
    assert not modules & NEVER, modules & NEVER
    assert ("_sqlite3" in modules) == sqlite


def test_stale_cache_parses_toml(tmp_path):
    path = write_config(tmp_path)
    modules = imported(path, "/boot.ipxe")
    assert "tomllib" in modules and "scgi_inetd.bootmenu.config" in modules
    assert "tomllib" not in imported(path, "/boot.ipxe")  # the first request wrote the cache


# The admin app is one-shot under inetd too: its page costs SQLite (it lists
# the state; `_sqlite3` brings collections) but none of json, html,
# http.cookies, hmac or hashlib; the API adds json (which brings re and enum).
# `__future__` is every bootmenu module's, the menu's too.
ADMIN_NEVER = EXPENSIVE_MODULES - {"collections", "__future__"} | {"html", "http.cookies", "hmac", "hashlib",
                                                                    "_hashlib", "secrets", "datetime"}
JSON_BRINGS = {"json", "re", "enum"}


@pytest.mark.parametrize("uri, api", [("/", False), ("/api/hosts", True)])
def test_admin_request_imports(tmp_path, uri, api):
    from scgi_inetd.client import build_params
    from scgi_inetd.protocol import encode_request

    path = write_config(tmp_path)
    assert main([str(path), "check"]) == 0
    (tmp_path / "secret").write_text("s")
    log = tmp_path / "log"
    argv = python_cmd("scgi-bootmenu", "--stderr", str(log), str(path), "admin", "--secret-file", str(tmp_path / "secret"))
    request = encode_request(build_params("GET", uri, params={"BOOTMENU_ADMIN_SECRET": "s"}))
    modules, response = one_shot_imports(argv, request, log)
    assert response.startswith(b"Status: 200 OK"), response
    assert "scgi_inetd.bootmenu.admin" in modules and "_sqlite3" in modules
    assert ("json" in modules) == api
    allowed = JSON_BRINGS if api else set()
    assert not modules & (ADMIN_NEVER - allowed), sorted(modules & ADMIN_NEVER)
