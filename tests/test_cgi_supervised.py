"""--fix-status, --timeout and resident mode of scgi-run, with real scripts and processes."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from scgi_inetd.client import call
from scgi_inetd.status_fixup import BadResponse, fix_header_block

from .cgi_support import HANG, log_lines, request, run, run_raw, write_script
from .support import EXAMPLES, alive

CGI_BIN = EXAMPLES / "cgi-bin"


@pytest.mark.parametrize("head, fixed", [
    (b"Content-Type: text/plain\r\n\r\n", b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n"),
    (b"Content-Type: text/plain\n\n", b"Status: 200 OK\nContent-Type: text/plain\n\n"),
    (b"Location: https://example.org/\n\n", b"Status: 302 Found\nLocation: https://example.org/\n\n"),
    (b"Location: /local\r\n\r\n", b"Status: 302 Found\r\nLocation: /local\r\n\r\n"),
    (b"Status: 404 Not Found\r\nLocation: /x\r\n\r\n", b"Status: 404 Not Found\r\nLocation: /x\r\n\r\n"),
    (b"status:201\n\n", b"status:201\n\n"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n"),
])
def test_fix_header_block(head, fixed):
    assert fix_header_block(head) == fixed


@pytest.mark.parametrize("head", [b"Status: abc\n\n", b"Status:\n\n", b"Status: 20\n\n"])
def test_invalid_status_is_bad_response(head):
    with pytest.raises(BadResponse):
        fix_header_block(head)


def test_no_status_line_without_and_with_fix_status():
    raw = run_raw([CGI_BIN / "no-status.sh"], request())
    assert raw == b"Content-Type: text/plain\n\nno Status line here\n"
    response = run(["--fix-status", CGI_BIN / "no-status.sh"])
    assert (response.status, response.body) == (200, b"no Status line here\n")


def test_redirect_only_script():
    raw = run_raw([CGI_BIN / "redirect.sh"], request())
    assert raw == b"Location: https://example.org/\n\n"
    response = run(["--fix-status", CGI_BIN / "redirect.sh"])
    assert response.status == 302
    assert ("Location", "https://example.org/") in response.headers


@pytest.mark.parametrize("output, status", [
    ("", 502),                                     # nothing at all
    ("printf 'Content-Type: text/plain\\n'", 502),  # no blank line
    ("printf 'just a body, no header'", 502),
    ("printf 'Status: abc\\n\\n'", 502),
    ("head -c 70000 /dev/zero | tr '\\\\0' x", 502),  # header block too big
    ("printf 'Status: 201 Created\\n\\nmade\\n'", 201),
])
def test_fix_status_bad_output(tmp_path, output, status):
    log = tmp_path / "log"
    script = write_script(tmp_path / "s.sh", f"#!/bin/sh\n{output}\n")
    response = run(["--fix-status", "--stderr", log, script])
    assert response.status == status
    assert len(log_lines(log)) == (1 if status >= 500 else 0)


def test_fix_status_passes_a_large_response_through(tmp_path):
    script = write_script(tmp_path / "big.sh", "#!/bin/sh\nprintf 'Content-Type: x\\n\\n'\n"
                          "head -c 20000000 /dev/zero | tr '\\0' y\n")
    response = run(["--fix-status", script])
    assert response.status == 200 and response.body == b"y" * 20_000_000


def test_fix_status_drains_the_unread_body(tmp_path):
    """The script reads nothing of a 4 MiB body left on the socket (--stream-body): plain exec
    resets the connection, --fix-status drains the body and does not."""
    body = b"z" * (4 << 20)
    with pytest.raises(ConnectionError):  # reset, or a broken pipe while still sending
        run(["--stream-body", CGI_BIN / "no-status.sh"], "POST", body=body)
    response = run(["--stream-body", "--fix-status", CGI_BIN / "no-status.sh"], "POST", body=body)
    assert response.status == 200 and response.body == b"no Status line here\n"


@pytest.mark.parametrize("args", [[], ["--fix-status"]])
def test_a_spooled_body_the_script_ignores_resets_nothing(args):
    """By default the body is spooled before the script runs: nothing is left on the socket."""
    response = run([*args, CGI_BIN / "no-status.sh"], "POST", body=b"z" * (4 << 20))
    assert response.body == b"no Status line here\n"


def test_fix_status_body_still_reaches_script():
    body = os.urandom(60000)  # the test client sends all before reading: keep within socket buffers
    response = run(["--fix-status", CGI_BIN / "echo.py"], "POST", body=body)
    assert response.status == 200 and response.body == body


@pytest.mark.parametrize("mode", ["exec", "fix-status"])
def test_timeout_ends_the_script_and_its_children(tmp_path, mode):
    script = write_script(tmp_path / "hang.sh", HANG.format(before=""))
    args = ["--timeout", "0.5", script] if mode == "exec" else ["--fix-status", "--timeout", "0.5", script]
    started = time.monotonic()
    raw = run_raw(args, request(), timeout=20)
    elapsed = time.monotonic() - started
    assert elapsed < 5, "the client waited past the timeout"
    if mode == "fix-status":
        assert raw.startswith(b"Status: 504 ")
    else:
        assert raw == b""  # nginx answers 502 "upstream prematurely closed"
    sleeper = int((tmp_path / "hang.sh.pid").read_text())
    deadline = time.monotonic() + 5
    while alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(sleeper), "the script's sleep child survived the timeout"


def test_timeout_after_headers_cuts_the_response(tmp_path):
    script = write_script(tmp_path / "hang.sh", HANG.format(before="printf 'Content-Type: x\\n\\npartial'"))
    log = tmp_path / "log"
    raw = run_raw(["--fix-status", "--stderr", log, "--timeout", "0.5", script], request(), timeout=20)
    assert raw == b"Status: 200 OK\nContent-Type: x\n\npartial"
    assert "504" in log_lines(log)[0]


def test_timeout_does_not_touch_a_quick_script(tmp_path):
    response = run(["--timeout", "5", CGI_BIN / "hello.sh"])
    assert response.status == 200


@pytest.fixture
def resident(serving):
    running = serving("scgi-run", "--max-children", "8", f"{CGI_BIN}/", log="log")
    return running.address, running.process


def test_resident_mode_50_concurrent_connections(resident):
    address, process = resident

    def one(number: int):
        return call(address, "POST", f"/cgi-bin/echo.py?n={number}", body=b"body %d" % number,
                    params={"SCRIPT_FILENAME": f"{CGI_BIN}/echo.py"}, timeout=60)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(one, range(50)))
    assert [(r.status, r.body) for r in responses] == [(200, b"body %d" % n) for n in range(50)]
    missing = call(address, params={"SCRIPT_FILENAME": f"{CGI_BIN}/missing"})
    assert missing.status == 404
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
