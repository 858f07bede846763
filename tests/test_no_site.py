"""The programs started with -I -S: no site module, the package found beside the script.

`site` is a large part of an interpreter's start (and every .pth file in
site-packages adds to it), which a one-shot request pays each time. Started
with -S, each bin/ script puts the directory its package was installed in on
sys.path itself: the checkout, a virtualenv, `pip install --user`, or
Debian's /usr/local (dist-packages). The script must be named by its real
path (PREFIX/bin/NAME), as inetd.conf names it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scgi_inetd
from scgi_inetd.client import build_params, call_exec
from scgi_inetd.protocol import encode_request
from tests.support import BIN, EXAMPLES, ONE_SHOT_MODULES, OS_MODULES, PYTHON, one_shot_imports
from tests.bootmenu_helpers import MAC, write_config

PACKAGE = Path(scgi_inetd.__file__).resolve().parent
VERSION = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def no_site(program: str, *args) -> list[str]:
    return [PYTHON, "-I", "-S", str(BIN / program), *map(str, args)]


def test_scgi_run_serves_without_site(tmp_path):
    modules, raw = one_shot_imports(no_site("scgi-run", "--stderr", tmp_path / "log",
                                            EXAMPLES / "cgi-bin" / "hello.sh"),
                                    encode_request(build_params()), tmp_path / "log")
    assert raw.startswith(b"Status: 200 OK") and b"Hello" in raw
    assert "site" not in modules
    assert sum(name.startswith("scgi_inetd") for name in modules) == ONE_SHOT_MODULES  # as with site
    assert not modules & OS_MODULES, sorted(modules & OS_MODULES)  # 5 M instructions, a fifth of the request


def test_scgi_wsgi_serves_without_site(tmp_path):
    modules, raw = one_shot_imports(no_site("scgi-wsgi", "--stderr", tmp_path / "log", EXAMPLES / "hello_wsgi.py"),
                                    encode_request(build_params()), tmp_path / "log")
    assert raw.startswith(b"Status: 200 OK") and raw.endswith(b"Hello, world!\n")
    assert "site" not in modules and "hello_wsgi" in modules
    assert sum(name.startswith("scgi_inetd") for name in modules) == ONE_SHOT_MODULES
    assert not modules & OS_MODULES, sorted(modules & OS_MODULES)


def test_scgi_bootmenu_serves_without_site(tmp_path):
    response = call_exec(no_site("scgi-bootmenu", write_config(tmp_path)), uri=f"/boot.ipxe?mac={MAC}")
    assert response.status == 200 and response.body.startswith(b"#!ipxe")


@pytest.mark.parametrize("site_dir", ["site-packages", "dist-packages"])
def test_the_script_finds_its_package_under_an_install_prefix(tmp_path, site_dir):
    """The layouts pip installs to: PREFIX/bin beside PREFIX/lib/pythonX.Y/site-packages (a virtualenv,
    --user), or dist-packages (Debian's /usr/local)."""
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy(BIN / "scgi-run", prefix / "bin" / "scgi-run")
    shutil.copytree(PACKAGE, prefix / "lib" / VERSION / site_dir / "scgi_inetd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run([PYTHON, "-I", "-S", str(prefix / "bin" / "scgi-run"), "--version"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=20)
    assert run.returncode == 0 and run.stdout.startswith("scgi-run "), run


def test_without_its_package_beside_it_the_script_does_not_start(tmp_path):
    """The finder adds nothing it did not find: the import error is Python's own, not a wrong package."""
    (tmp_path / "bin").mkdir()
    shutil.copy(BIN / "scgi-run", tmp_path / "bin" / "scgi-run")
    run = subprocess.run([PYTHON, "-I", "-S", str(tmp_path / "bin" / "scgi-run"), "--version"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=20)
    assert run.returncode != 0 and "No module named 'scgi_inetd'" in run.stderr
