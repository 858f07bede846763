"""What a one-shot request imports: the per-request path stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scgi_inetd.bootmenu.cli import main
from tests.bootmenu_helpers import MAC, write_config
from tests.support import child_env

REQUEST = r"""
import sys
before = set(sys.modules)
from scgi_inetd.bootmenu.app import make_app
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": sys.argv[2], "QUERY_STRING": sys.argv[3],
           "HTTP_COOKIE": sys.argv[4], "wsgi.errors": sys.stderr}
status = []
response = make_app(sys.argv[1])(environ, lambda s, h: status.append(s))
b"".join(response)
getattr(response, "close", lambda: None)()
assert status == ["200 OK"], status
print(" ".join(sorted(set(sys.modules) - before)))
"""

NEVER = {"tomllib", "sqlite3", "re", "json", "logging", "urllib.parse", "argparse", "subprocess", "socket",
         "email", "tempfile", "typing", "datetime", "scgi_inetd.bootmenu.config", "scgi_inetd.bootmenu.cli"}


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
