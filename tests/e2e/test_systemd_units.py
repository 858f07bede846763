"""examples/systemd/ as written, run by systemd-socket-activate behind the same nginx.

systemd-socket-activate needs no systemd as PID 1: `--accept --inetd` is the
Accept=yes unit (one process per connection, on fds 0 and 1), and without
them the Accept=no unit (the listening socket on fd 3, LISTEN_FDS=1).
"""

from __future__ import annotations

import sys

import pytest

from tests.e2e.conftest import Stack, require_frontend, require_programs, stack, wait_no_children
from tests.support import child_env

UNITS = stack.EXAMPLES / "systemd"


@pytest.fixture
def activated(web: Stack, request: pytest.FixtureRequest):
    """Start the unit pair named by the test's parameter under systemd-socket-activate."""
    require_programs("systemd-socket-activate")
    name, accept = request.param
    paths = dict(web.paths, **{"/run/scgi/": web.paths["/run/scgi-activate/"]})
    service = stack.systemd_unit_service(UNITS, name, paths, sys.executable)
    assert service.wait is not accept
    activator = stack.SocketActivate(web.root, service, accept=accept, env=child_env())
    activator.start()
    yield activator
    activator.stop()


@pytest.mark.parametrize("activated", [("scgi-hello", True)], indirect=True)
def test_accept_yes_unit_runs_one_process_per_request(web: Stack, activated) -> None:
    require_frontend("scgi-wsgi")
    for _ in range(3):
        answer = web.request("/activated")
        assert answer.status == 200, answer.text
        assert "hello" in answer.text.lower()
    assert wait_no_children(activated) == []


@pytest.mark.parametrize("activated", [("scgi-resident", False)], indirect=True)
def test_accept_no_unit_serves_resident(web: Stack, activated) -> None:
    require_frontend("scgi-wsgi")
    for _ in range(3):
        answer = web.request("/activated-resident")
        assert answer.status == 200, answer.text
        assert "hello" in answer.text.lower()
    # systemd-socket-activate execs the program itself: the resident server
    # is the activator's own pid, still up after serving.
    assert activated.running()
