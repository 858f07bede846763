"""The stack itself, proved with a trivial responder (no front-end involved)."""

from __future__ import annotations

import socket
import sys

from tests.e2e.conftest import Stack, require_programs, stack, wait_no_children
from scgi_inetd.client import call
from tests.support import child_env


def test_inetd_starts_one_handler_per_request(web: Stack) -> None:
    resident = set(web.inetd.children())  # an inetd `wait` server may be up
    pids = set()
    for _ in range(3):
        answer = web.request("/trivial?x=1")
        assert answer.status == 200, answer.text
        assert answer.text.startswith("method=GET uri=/trivial?x=1 ")
        pids.add(answer.text.split("pid=")[1])
    assert len(pids) == 3
    assert wait_no_children(web.inetd, exclude=resident) == []


def test_post_body_reaches_the_handler_through_nginx(web: Stack) -> None:
    answer = web.request("/trivial", method="POST", body=b"x" * 100_000)
    assert answer.status == 200
    assert answer.text.startswith("method=POST ")


def test_access_log_records_each_request(web: Stack) -> None:
    web.request("/trivial?logged=yes", headers={"User-Agent": "e2e-probe/1"})
    entries = web.nginx.wait_access(lambda e: e["uri"] == "/trivial?logged=yes")
    assert entries and entries[-1]["status"] == "200"
    assert entries[-1]["user_agent"] == "e2e-probe/1"


def test_static_files_are_served_by_nginx(web: Stack) -> None:
    answer = web.request("/index.txt")
    assert (answer.status, answer.body) == (200, b"netboot files\n")


def test_stop_leaves_no_process_behind(tmp_path) -> None:
    """inetd setsid's its handlers: stop() must reach them by pid."""
    require_programs("inetd")
    sock = str(tmp_path / "slow.sock")
    slow = stack.Service(sock, ["/bin/sleep", "sleep", "60"])
    inetd = stack.Inetd(tmp_path, [slow], env=child_env())
    inetd.start()
    client = socket.socket(socket.AF_UNIX)
    client.connect(sock)
    stack.wait_until(lambda: inetd.children() != [], timeout=5, what="handler")
    handlers = inetd.children()
    inetd.stop()
    client.close()
    assert stack.wait_gone(handlers, 2) == []


def test_socket_activate_runs_a_handler_per_connection(tmp_path) -> None:
    """The second super-server, as the examples/systemd Accept=yes unit would run it."""
    require_programs("systemd-socket-activate", "nginx")
    service = stack.Service(str(tmp_path / "t.sock"),
                            [sys.executable, "trivial", str(stack.REPO / "tests/e2e/trivial_handler.py")])
    activator = stack.SocketActivate(tmp_path, service, accept=True, env=child_env())
    activator.start()
    try:
        answer = call(f"unix:{service.socket}", uri="/x")
        assert answer.status == 200
        assert answer.body.startswith(b"method=GET")
    finally:
        activator.stop()
