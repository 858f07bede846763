"""The man pages: each renders without a groff warning and names every option its program accepts.

The options come from the table in scgi_inetd.options (a boot-menu
subcommand's options belong to the scgi-bootmenu page), so an option added
there without a line in the page fails here. With SCGI_INETD_TEST_INSTALLED=1
the pages checked are the ones pip installed under share/man/man1.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from scgi_inetd.options import OPTIONS
from tests.support import MAN

PAGES = ("scgi-run", "scgi-wsgi", "scgi-bootmenu", "scgi-call")


def render(page: str) -> str:
    """The page as `man` shows it, bold and underline (overstrikes) removed; fails on any groff warning."""
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (Debian package groff-base)")
    done = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(MAN / f"{page}.1")],
                          capture_output=True, timeout=30)
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    return re.sub(r".\x08", "", done.stdout.decode())


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_and_names_every_option(page):
    text = render(page)
    names = {"-h", "--help", "--version"}
    names.update(name for names_, programs, *_ in OPTIONS if any(program.split()[0] == page for program in programs)
                 for name in names_.split())
    missing = [name for name in sorted(names) if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)]
    assert not missing, f"{page}(1) does not name {missing}"
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "SEE ALSO"):
        assert f"\n{section}\n" in text, section
