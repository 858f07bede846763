"""The suite tests what it says it tests: the checkout, or with SCGI_INETD_TEST_INSTALLED=1 the installed package."""

from __future__ import annotations

import subprocess
from pathlib import Path

import scgi_inetd
from tests.support import BIN, INSTALLED, MAN, PYTHON, REPO, child_env


def test_this_process_imports_the_package_under_test():
    assert (Path(scgi_inetd.__file__).resolve().parent == REPO / "scgi_inetd") != INSTALLED


def test_children_import_the_package_under_test():
    where = subprocess.run([PYTHON, "-c", "import scgi_inetd; print(scgi_inetd.__file__)"], cwd="/",
                           env=child_env(), capture_output=True, text=True, timeout=30, check=True).stdout
    assert (Path(where.strip()).resolve().parent == REPO / "scgi_inetd") != INSTALLED, where


def test_programs_and_man_pages_are_where_the_tests_look():
    for name in ("scgi-run", "scgi-wsgi", "scgi-bootmenu", "scgi-call"):
        assert (BIN / name).is_file(), BIN / name
        assert (MAN / f"{name}.1").is_file(), MAN / f"{name}.1"
