"""scgi-call: the request it sends, how it prints, and its exit status."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import threading
import time

import pytest

from scgi_inetd.call_cli import main
from scgi_inetd.client import build_params
from scgi_inetd.protocol import encode_request, parse_request
from tests.support import EXAMPLES, PYTHON, child_env, python_cmd

# A tiny SCGI program that answers with what it received: the status comes
# from the X-Want-Status request header.
ECHO_ENVIRON = r'''
import os
from scgi_inetd.reader import read_request
env = read_request(0)
body = os.read(0, int(env["CONTENT_LENGTH"])) if env["CONTENT_LENGTH"] != "0" else b""
status = env.get("HTTP_X_WANT_STATUS", "200 OK")
lines = "".join(f"{k}={v}\n" for k, v in env.items()).encode("latin-1")
os.write(1, b"Status: " + status.encode() + b"\r\nContent-Type: text/plain\r\n\r\n" + lines + b"BODY=" + body)
'''


@pytest.fixture
def children_import_the_package_under_test(monkeypatch):
    """main(["--exec", ...]) starts its command with this process's environment: give it child_env()'s PYTHONPATH."""
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])


@pytest.fixture
def echo_command(tmp_path, children_import_the_package_under_test):
    script = tmp_path / "echo_environ.py"
    script.write_text(ECHO_ENVIRON)
    return f"{shlex.quote(PYTHON)} {shlex.quote(str(script))}"


def test_hello_example_through_exec_prints_like_curl(children_import_the_package_under_test, capsysbinary):
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


class OneResponseServer:
    """A unix-socket SCGI server in a thread: reads one request, then runs `answer(connection)`."""

    def __init__(self, path: str, answer) -> None:
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        self.listener.listen(1)
        self.answer = answer
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        from scgi_inetd.protocol import netstring_extent

        connection, _ = self.listener.accept()
        with connection:
            data = b""
            while True:
                data += connection.recv(65536)
                try:
                    if len(data) >= netstring_extent(data):
                        break
                except Exception:
                    continue
            try:
                self.answer(connection)
            except OSError:
                pass  # the client gave up: what the timeout test wants

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


RESPONSE_MB = 200


def peak_rss_mb(pid: int, peak: list[float]) -> None:
    """Follow /proc/PID/status's VmHWM (the peak RSS of the program since its exec) until it exits.

    Not ru_maxrss: that keeps the high-water mark of the process before its
    exec too, which for a child of pytest is pytest's own size.
    """
    while True:
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status)
        except OSError:
            return
        if "VmHWM" not in fields:  # a zombie: the program has ended
            return
        peak[0] = max(peak[0], int(fields["VmHWM"].split()[0]) / 1024)
        time.sleep(0.01)


def test_a_200_mb_response_is_streamed_in_little_memory(tmp_path):
    """Measured: the peak RSS (VmHWM) of the scgi-call process while it prints 200 MB."""
    path = str(tmp_path / "s.sock")
    block = bytes(range(256)) * 4096  # 1 MiB

    def answer(connection):
        connection.sendall(b"Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
        for _ in range(RESPONSE_MB):
            connection.sendall(block)

    server = OneResponseServer(path, answer)
    process = subprocess.Popen(python_cmd("scgi-call", "--body-only", f"unix:{path}", "/big"),
                               stdout=subprocess.PIPE, env=child_env())
    peak = [0.0]
    watcher = threading.Thread(target=peak_rss_mb, args=(process.pid, peak))
    watcher.start()
    received = 0
    tail = b""
    while chunk := process.stdout.read(1 << 20):
        received += len(chunk)
        tail = (tail + chunk)[-16:]
    watcher.join(10)
    assert process.wait(10) == 0
    server.close()
    assert received == RESPONSE_MB << 20 and tail == block[-16:]
    print(f"scgi-call peak RSS for a {RESPONSE_MB} MB response: {peak[0]:.1f} MB")
    assert 0 < peak[0] < 48, f"{peak[0]:.0f} MB resident for a {RESPONSE_MB} MB response"


def test_timeout_is_a_deadline_for_a_trickling_server(tmp_path):
    """One byte every 0.2 s keeps every recv under --timeout; the whole exchange still ends at it."""
    path = str(tmp_path / "s.sock")

    def answer(connection):
        connection.sendall(b"Status: 200 OK\r\n\r\n")
        for _ in range(200):
            connection.sendall(b".")
            time.sleep(0.2)

    server = OneResponseServer(path, answer)
    started = time.monotonic()
    result = subprocess.run(python_cmd("scgi-call", "--timeout", "1", f"unix:{path}", "/slow"),
                            capture_output=True, env=child_env(), timeout=15)
    elapsed = time.monotonic() - started
    server.close()
    assert result.returncode == 3
    assert result.stderr.decode().splitlines() == ["scgi-call: no complete response within 1 s"]
    assert result.stdout.startswith(b"HTTP/1.1 200 OK\r\n\r\n.")  # what arrived was printed
    assert elapsed < 5


def test_timeout_is_a_deadline_with_exec_too(tmp_path):
    script = tmp_path / "trickle.py"
    script.write_text("import os, time\nos.write(1, b'Status: 200 OK\\r\\n\\r\\n')\n"
                      "for _ in range(200):\n    os.write(1, b'.'); time.sleep(0.2)\n")
    started = time.monotonic()
    result = subprocess.run(python_cmd("scgi-call", "--timeout", "1", "--exec",
                                       shlex.join([sys.executable, str(script)]), "/"),
                            capture_output=True, env=child_env(), timeout=15)
    assert result.returncode == 3 and time.monotonic() - started < 5
    assert b"no complete response within 1 s" in result.stderr
