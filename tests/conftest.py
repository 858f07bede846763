"""With SCGI_INETD_TEST_INSTALLED=1 the suite tests the installed package (see tests/support.py)."""

from tests.support import INSTALLED, use_installed_package

if INSTALLED:
    use_installed_package()
