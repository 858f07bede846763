"""The environment a script sees: RFC 3875 variables, and nothing of the shim's own."""

from __future__ import annotations

import pytest

from scgi_inetd.cgi_env import DEFAULT_PATH, build_environ, exec_environ, operator_environ
from scgi_inetd.script_resolver import Script

from .cgi_support import DUMP, dumped, run, write_script


def test_golden_environment(tmp_path):
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    write_script(cgi / "env.py", DUMP)
    response = run(
        # --fix-status drains the body the script leaves unread (plain exec would reset).
        ["--fix-status", "--env", "TZ=UTC", "--pass-env", "LANG", "--pass-env", "ABSENT", f"{cgi}/"],
        "POST", "/cgi/env.py/extra/p?a=1&b=%20", body=b"1234567",
        headers=[("Proxy", "evil"), ("Cookie", "c=1"), ("Transfer-Encoding", "chunked")],
        params={"SCRIPT_FILENAME": f"{cgi}/env.py/extra/p", "DOCUMENT_ROOT": "/srv/www"},
        env={"LANG": "C.UTF-8", "SHIM_SECRET": "must-not-leak", "LD_PRELOAD": "/nope.so",
             "PYTHONPATH_EXTRA": "x"},
    )
    assert response.status == 200
    assert dumped(response.body) == {
        b"CONTENT_LENGTH": b"7",
        b"CONTENT_TYPE": b"",
        b"DOCUMENT_ROOT": b"/srv/www",
        b"DOCUMENT_URI": b"/cgi/env.py/extra/p",
        b"GATEWAY_INTERFACE": b"CGI/1.1",
        b"HTTP_CONTENT_LENGTH": b"7",
        b"HTTP_COOKIE": b"c=1",
        b"HTTP_HOST": b"localhost",
        b"LANG": b"C.UTF-8",
        b"PATH": DEFAULT_PATH.encode(),
        b"PATH_INFO": b"/extra/p",
        b"PATH_TRANSLATED": b"/srv/www/extra/p",
        b"QUERY_STRING": b"a=1&b=%20",
        b"REMOTE_ADDR": b"127.0.0.1",
        b"REMOTE_PORT": b"40000",
        b"REQUEST_METHOD": b"POST",
        b"REQUEST_SCHEME": b"http",
        b"REQUEST_URI": b"/cgi/env.py/extra/p?a=1&b=%20",
        b"SCRIPT_FILENAME": f"{cgi}/env.py".encode(),
        b"SCRIPT_NAME": b"/cgi/env.py",
        b"SERVER_NAME": b"localhost",
        b"SERVER_PORT": b"80",
        b"SERVER_PROTOCOL": b"HTTP/1.1",
        b"SERVER_SOFTWARE": b"scgi-inetd",
        b"TZ": b"UTC",
    }


def test_non_ascii_bytes_reach_the_script_unchanged(tmp_path):
    script = write_script(tmp_path / "env.py", DUMP)
    raw_uri = "/caf\u00e9".encode("utf-8").decode("latin-1")  # what the protocol layer hands us
    response = run([script], params={"DOCUMENT_URI": raw_uri, "HTTP_X_BIN": "\xff\x80"})
    env = dumped(response.body)
    assert env[b"DOCUMENT_URI"] == "/caf\u00e9".encode()
    assert env[b"HTTP_X_BIN"] == b"\xff\x80"


def test_single_script_mode_keeps_web_server_path_info(tmp_path):
    script = write_script(tmp_path / "env.py", DUMP)
    response = run([script], uri="/app/x/y", params={
        "SCRIPT_FILENAME": "/elsewhere/ignored", "PATH_INFO": "/x/y", "SCRIPT_NAME": "/app"})
    env = dumped(response.body)
    assert env[b"SCRIPT_FILENAME"] == str(script).encode()
    assert (env[b"SCRIPT_NAME"], env[b"PATH_INFO"]) == (b"/app", b"/x/y")
    assert env[b"PATH_TRANSLATED"] == b"/srv/www/x/y"


@pytest.mark.parametrize("request_vars, script, expected", [
    # nginx without split: DOCUMENT_URI carries the path info; it is cut off.
    ({"DOCUMENT_URI": "/c/a.sh/p"}, Script("/d/a.sh", "/p"),
     {"SCRIPT_NAME": "/c/a.sh", "PATH_INFO": "/p", "SCRIPT_FILENAME": "/d/a.sh"}),
    # SCRIPT_NAME $fastcgi_script_name (= the whole URI) is cut too.
    ({"SCRIPT_NAME": "/c/a.sh/p", "PATH_INFO": ""}, Script("/d/a.sh", "/p"),
     {"SCRIPT_NAME": "/c/a.sh", "PATH_INFO": "/p", "SCRIPT_FILENAME": "/d/a.sh"}),
    # fastcgi_split_path_info done by nginx: kept as sent.
    ({"SCRIPT_NAME": "/c/a.sh", "PATH_INFO": "/p", "DOCUMENT_ROOT": "/r/"}, Script("/d/a.sh"),
     {"SCRIPT_NAME": "/c/a.sh", "PATH_INFO": "/p", "SCRIPT_FILENAME": "/d/a.sh", "PATH_TRANSLATED": "/r/p"}),
    # Nothing at all: empty names, no PATH_TRANSLATED.
    ({}, Script("/d/a.sh"), {"SCRIPT_NAME": "", "PATH_INFO": "", "SCRIPT_FILENAME": "/d/a.sh"}),
])
def test_script_variables(request_vars, script, expected):
    environ = build_environ(request_vars, script, {})
    assert {k: environ[k] for k in environ if k in expected or k == "PATH_TRANSLATED"} == expected


def test_request_cannot_override_operator_or_computed_variables():
    request = {"PATH": "/evil", "GATEWAY_INTERFACE": "CGI/9", "SCRIPT_FILENAME": "/evil",
               "PATH_TRANSLATED": "/evil", "HTTP_PROXY": "evil", "SCGI": "1", "TZ": "evil", "A=B": "x"}
    environ = build_environ(request, Script("/d/a.sh"), operator_environ({"TZ": "UTC"}, (), {}))
    assert environ["PATH"] == DEFAULT_PATH and environ["TZ"] == "UTC"
    assert environ["GATEWAY_INTERFACE"] == "CGI/1.1" and environ["SCRIPT_FILENAME"] == "/d/a.sh"
    assert not {"HTTP_PROXY", "SCGI", "PATH_TRANSLATED", "A=B"} & environ.keys()
    assert exec_environ({"X": "\xff"}) == {b"X": b"\xff"}
