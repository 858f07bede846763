"""scgi-call: the request it sends, how it prints, and its exit status."""

from __future__ import annotations

import os
import shlex
import socket
import threading

import pytest

from scgi_inetd.call_cli import main
from scgi_inetd.client import build_params
from scgi_inetd.protocol import encode_request, parse_request
from tests.support import EXAMPLES, python_cmd

# A tiny SCGI program that answers with what it received: the status comes
# from the X-Want-Status request header.
ECHO_ENVIRON = r'''
import os, sys
sys.path.insert(0, {repo!r})
from scgi_inetd.reader import read_request
env = read_request(0)
body = os.read(0, int(env["CONTENT_LENGTH"])) if env["CONTENT_LENGTH"] != "0" else b""
status = env.get("HTTP_X_WANT_STATUS", "200 OK")
lines = "".join(f"{k}={v}\n" for k, v in env.items()).encode("latin-1")
os.write(1, b"Status: " + status.encode() + b"\r\nContent-Type: text/plain\r\n\r\n" + lines + b"BODY=" + body)
'''


@pytest.fixture
def echo_command(tmp_path):
    from tests.support import REPO, PYTHON
    script = tmp_path / "echo_environ.py"
    script.write_text(ECHO_ENVIRON.replace("{repo!r}", repr(str(REPO))))
    return f"{shlex.quote(PYTHON)} {shlex.quote(str(script))}"


def test_hello_example_through_exec_prints_like_curl(capsysbinary):
    command = shlex.join(python_cmd("scgi-wsgi", str(EXAMPLES / "hello_wsgi.py")))
    assert main(["--exec", command, "/hello"]) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert out.endswith(b"\r\n\r\nHello, world!\n")


def test_request_carries_method_headers_body_and_params(echo_command, tmp_path, capsysbinary):
    data = tmp_path / "form.txt"
    data.write_bytes(b"a=1&b=2")
    status = main(["--exec", echo_command, "-X", "PUT", "-H", "Cookie: c=1", "-H", "Cookie: d=2",
                   "--data", f"@{data}", "--param", "SCRIPT_FILENAME=/srv/x.cgi", "--param", "DOCUMENT_ROOT=",
                   "--body-only", "/p/a%20b?q=%20"])
    out = capsysbinary.readouterr().out.decode("latin-1")
    assert status == 0
    assert not out.startswith("HTTP/")
    assert "REQUEST_METHOD=PUT\n" in out
    assert "REQUEST_URI=/p/a%20b?q=%20\n" in out
    assert "QUERY_STRING=q=%20\n" in out
    assert "DOCUMENT_URI=/p/a b\n" in out
    assert "HTTP_COOKIE=c=1; d=2\n" in out
    assert "SCRIPT_FILENAME=/srv/x.cgi\n" in out
    assert "DOCUMENT_ROOT=" not in out
    assert out.endswith("BODY=a=1&b=2")


@pytest.mark.parametrize("want, code", [("200 OK", 0), ("302 Found", 0), ("404 Not Found", 0),
                                        ("500 Internal Server Error", 1), ("503 Busy", 1)])
def test_exit_status_follows_the_answer(echo_command, want, code, capsysbinary):
    assert main(["--exec", echo_command, "-H", f"X-Want-Status: {want}", "/"]) == code
    assert capsysbinary.readouterr().out.startswith(f"HTTP/1.1 {want}".encode())


def test_connection_error_is_exit_2_with_one_line(tmp_path, capsys):
    assert main([f"unix:{tmp_path}/nothing.sock", "/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scgi-call: ") and err.count("\n") == 1


def test_protocol_error_in_the_answer_is_exit_2(echo_command, capsys):
    assert main(["--exec", echo_command, "-H", "X-Want-Status: abc", "/"]) == 2
    assert "malformed status 'abc'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["-H", "no colon", "--exec", "true"], ["--param", "NOEQUALS", "--exec", "true"]])
def test_bad_options_are_exit_2(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("scgi-call: ")


def test_unix_socket_address(tmp_path, capsysbinary):
    path = str(tmp_path / "s.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    received = {}

    def serve():
        connection, _ = listener.accept()
        with connection:
            data = b""
            while True:
                data += connection.recv(65536)
                try:
                    received["environ"], offset = parse_request(data)
                    break
                except Exception:
                    continue
            connection.sendall(b"Status: 201 Created\r\n\r\nmade")

    thread = threading.Thread(target=serve)
    thread.start()
    assert main([f"unix:{path}", "/new"]) == 0
    thread.join()
    listener.close()
    assert capsysbinary.readouterr().out == b"HTTP/1.1 201 Created\r\n\r\nmade"
    assert received["environ"]["REQUEST_URI"] == "/new"


def test_params_follow_nginx_scgi_params_order():
    names = [name for name, _ in build_params("POST", "/x?y", [("User-Agent", "t")], b"12")]
    assert names[:4] == ["REQUEST_METHOD", "REQUEST_URI", "QUERY_STRING", "CONTENT_TYPE"]
    assert names.index("SERVER_NAME") < names.index("HTTP_HOST") < names.index("HTTP_USER_AGENT")
    environ, _ = parse_request(encode_request(build_params("POST", "/x?y", [], b"12"), b"12"))
    assert list(environ)[:2] == ["CONTENT_LENGTH", "SCGI"]
    assert environ["HTTP_CONTENT_LENGTH"] == "2"
    assert os.environ.get("SCGI") is None
