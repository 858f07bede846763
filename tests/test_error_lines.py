"""One error shape: a bad request gets the same answer and the same log line from every program.

The line is `program[pid]: NNN Reason: message`, the body `NNN Reason: message`
(answer.error_line, answer.error_response), whichever front-end refused it.
"""

from __future__ import annotations

import re

import pytest

from scgi_inetd.answer import error_line, error_response
from scgi_inetd.bootmenu.admin import Refusal
from scgi_inetd.bootmenu.state import StateError
from scgi_inetd.client import exec_exchange
from scgi_inetd.protocol import REASONS, ProtocolError, RequestError, encode_request
from scgi_inetd.reader import BodyError
from scgi_inetd.script_resolver import ScriptError
from scgi_inetd.status_fixup import BadResponse, ScriptTimeout
from tests.bootmenu_helpers import write_config
from tests.support import EXAMPLES, child_env, python_cmd

# (request bytes, serving options, the message every program logs and answers with)
BAD_REQUESTS = [
    (b"01:x,", (), "400 Bad Request: leading zero in netstring length at byte 0"),
    (b"4:abcd,", (), "400 Bad Request: header block does not end with NUL at byte 5"),
    (encode_request({"REQUEST_METHOD": "POST"}, b"0123456789"), ("--max-body", "5"),
     "413 Content Too Large: request body of 10 bytes is over the limit of 5"),
]


def program_argv(program: str, tmp_path, options: tuple[str, ...]) -> list[str]:
    log = str(tmp_path / "log")
    if program == "scgi-run":
        script = tmp_path / "never.sh"
        script.write_text("#!/bin/sh\necho ran >&2\n")
        script.chmod(0o755)
        return python_cmd(program, "--stderr", log, *options, str(script))
    if program == "scgi-wsgi":
        return python_cmd(program, "--stderr", log, *options, str(EXAMPLES / "hello_wsgi.py"))
    return python_cmd(program, "--stderr", log, *options, str(write_config(tmp_path)))


@pytest.mark.parametrize("request_bytes, options, expected", BAD_REQUESTS)
@pytest.mark.parametrize("program", ["scgi-run", "scgi-wsgi", "scgi-bootmenu"])
def test_the_same_bad_request_logs_the_same_line(tmp_path, program, request_bytes, options, expected):
    response = exec_exchange(program_argv(program, tmp_path, options), request_bytes, env=child_env())
    assert response.startswith(f"Status: {expected.split(':')[0]}\r\n".encode()), response
    assert response.endswith(f"\r\n\r\n{expected}\n".encode()), response
    lines = (tmp_path / "log").read_text().splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(rf"{program}\[\d+\]: {re.escape(expected)}", lines[0]), lines[0]


def test_error_line_and_response_say_the_same():
    assert error_line(404, "no such script", "'/srv/x'") == "404 Not Found: no such script ('/srv/x')"
    assert error_response(404, "no such script").endswith(b"\r\n\r\n404 Not Found: no such script\n")
    assert error_line(599, "odd") == "599 Error: odd"


@pytest.mark.parametrize("error, status", [
    (ProtocolError(400, "bad"), 400),
    (ScriptError(403, "outside", "'/etc/passwd'"), 403),
    (BodyError(408, "stalled", left=3), 408),
    (BadResponse("script printed nothing", "'/x'"), 502),
    (ScriptTimeout(), 504),
    (StateError("/var/lib/state.sqlite: locked"), 503),
    (Refusal(405, "PUT not allowed here", allow="GET"), 405),
])
def test_every_error_with_a_status_is_a_request_error(error, status):
    """One base: a caller catches RequestError and has status, message and detail."""
    assert isinstance(error, RequestError) and error.status == status and error.status in REASONS
    assert str(error) == error.message and isinstance(error.detail, str)


def test_the_detail_stays_out_of_the_answer():
    error = StateError("/var/lib/state.sqlite: database is locked")
    assert b"locked" not in error_response(error.status, error.message)
    assert "locked" in error_line(error.status, error.message, error.detail)
