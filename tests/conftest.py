"""With SCGI_INETD_TEST_INSTALLED=1 the suite tests the installed package (see tests/support.py)."""

from tests.support import INSTALLED, use_installed_package

if INSTALLED:
    use_installed_package()


import pytest  # noqa: E402

from tests.support import ResidentServer  # noqa: E402


@pytest.fixture
def serving(tmp_path):
    """Start resident servers (tests.support.ResidentServer; the log in tmp_path); all ended afterwards."""
    started: list[ResidentServer] = []

    def start(program: str, *args, listen: str | None = None, log: str = "server.log", **kwargs) -> ResidentServer:
        listen = listen or f"unix:{tmp_path / f'{program}-{len(started)}.sock'}"
        started.append(ResidentServer(program, *args, listen=listen, log=tmp_path / log, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()
