"""bin/scgi-wsgi and run_app in real child processes: one-shot as inetd runs it, and resident mode."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from scgi_inetd.client import call, call_exec
from scgi_inetd.wsgi_cli import load_app, main, parse_args
from tests.support import (EXAMPLES, EXPENSIVE_MODULES, ONE_SHOT_MODULES, REPO, child_env, one_shot_imports,
                           python_cmd, read_all, wait_for)

APPS = str(REPO / "tests" / "wsgi_apps.py")


def one_shot(*args, **request):
    """Run scgi-wsgi as inetd does for one request; the response as the client sees it."""
    return call_exec(python_cmd("scgi-wsgi", *args), env=child_env(), timeout=20, **request)


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert "missing TARGET" in capsys.readouterr().err
    assert main(["app.py", "--bogus"]) == 2
    assert "--bogus" in capsys.readouterr().err
    assert main(["app.py", "other.py"]) == 2
    assert main(["--max-children", "zero", "app.py"]) == 2


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "TARGET" in capsys.readouterr().out
    assert main(["-h"]) == 0


@pytest.mark.parametrize("argv", [
    ["mod:app", "--script-name", "/x", "--stderr", "syslog", "--max-children", "3"],
    ["--script-name", "/x", "--stderr", "syslog", "--max-children", "3", "mod:app"],
    ["mod:app", "--script-name=/x", "--stderr=syslog", "--max-children=3"],
])
def test_options_before_or_after_target(argv):
    options, target = parse_args(argv)
    assert (target, options.script_name, options.stderr, options.max_children) == ("mod:app", "/x", "syslog", 3)


def test_load_app_targets(tmp_path):
    (tmp_path / "only_app.py").write_text("def app(e, s): pass\n")
    (tmp_path / "both.py").write_text("def application(e, s): pass\ndef app(e, s): pass\n"
                                      "class Holder:\n    def wsgi(self, e, s): pass\nholder = Holder()\n")
    (tmp_path / "neither.py").write_text("value = 1\n")
    assert load_app(f"{tmp_path}/only_app.py").__name__ == "app"
    assert load_app(f"{tmp_path}/both.py").__name__ == "application"
    assert load_app(f"{tmp_path}/both.py:app").__name__ == "app"
    assert load_app(f"{tmp_path}/both.py:holder.wsgi").__name__ == "wsgi"
    assert load_app("tests.wsgi_apps:application").__module__ == "tests.wsgi_apps"
    assert load_app("tests.wsgi_apps").__name__ == "application"
    with pytest.raises(AttributeError):
        load_app(f"{tmp_path}/neither.py")
    with pytest.raises(TypeError):
        load_app(f"{tmp_path}/neither.py:value")
    with pytest.raises(ImportError):
        load_app(f"{tmp_path}/missing.py")
    with pytest.raises(ImportError):
        load_app("no_such_module_here:app")


def test_one_shot_file_target(tmp_path):
    log = tmp_path / "log"
    response = one_shot(APPS, "--stderr", str(log), method="POST", uri="/a/b", body=b"payload")
    assert response.status == 200
    data = json.loads(response.body)
    assert data["run_once"] is True and data["path_info"] == "/a/b" and data["body"] == "payload"
    assert log.read_text() == ""


def test_one_shot_module_target_with_chdir_and_script_name(tmp_path):
    response = one_shot("wsgi_apps:application", "--chdir", str(REPO / "tests"), "--script-name", "/mount",
                        uri="/mount/x")
    data = json.loads(response.body)
    assert (data["script_name"], data["path_info"], data["cwd"]) == ("/mount", "/x", str(REPO / "tests"))


def test_stderr_goes_to_the_log_not_the_client(tmp_path):
    log = tmp_path / "log"
    response = one_shot(APPS, "--stderr", str(log), uri="/stderr")
    assert response.status == 200 and json.loads(response.body)["path_info"] == "/stderr"
    text = log.read_text()
    for line in ("printed to stderr", "written to wsgi.errors", "written to fd 2"):
        assert line in text
        assert line.encode() not in response.body


def test_stderr_defaults_to_dev_null():
    response = one_shot(APPS, uri="/stderr")
    assert response.status == 200 and b"stderr" not in response.body.replace(b'"/stderr"', b"")


def test_app_that_fails_to_import_gets_500_and_a_logged_traceback(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_anywhere\n")
    log = tmp_path / "log"
    response = one_shot(str(broken), "--stderr", str(log), method="POST", body=b"x" * 1000)
    assert response.status == 500
    assert b"Traceback" not in response.body
    assert "no_such_module_anywhere" in log.read_text()


def test_malformed_request_through_the_command(tmp_path):
    log = tmp_path / "log"
    response = call_exec(python_cmd("scgi-wsgi", APPS, "--stderr", str(log)), raw=b"8:not scgi,",
                         env=child_env(), timeout=20)
    assert response.status == 400
    assert len(log.read_text().splitlines()) == 1


def test_run_app_from_a_script():
    response = call_exec(python_cmd(str(EXAMPLES / "hello_wsgi.py")), env=child_env(), timeout=20)
    assert (response.status, response.body) == (200, b"Hello, world!\n")


def test_the_example_through_scgi_wsgi():
    response = one_shot(str(EXAMPLES / "hello_wsgi.py"))
    assert (response.status, response.body) == (200, b"Hello, world!\n")


@pytest.fixture
def resident(serving):
    """Start scgi-wsgi --listen on a unix socket; yields (address, process)."""
    def start(*args):
        server = serving("scgi-wsgi", *args, APPS, log="log")
        return server.address, server.process

    return start


def test_resident_serves_50_concurrent_connections(resident):
    address, process = resident("--max-children", "8")
    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(lambda n: call(address, "POST", f"/n/{n}", body=b"%d" % n, timeout=30),
                                  range(50)))
    assert [r.status for r in responses] == [200] * 50
    data = [json.loads(r.body) for r in responses]
    assert [d["body"] for d in data] == [str(n) for n in range(50)]
    assert all(d["run_once"] is False and d["pid"] != process.pid for d in data)
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_resident_exits_after_idle_timeout(resident):
    address, process = resident("--idle-timeout", "0.5")
    assert call(address, "GET", "/").status == 200
    assert process.wait(10) == 0


def test_sigterm_lets_a_request_in_flight_complete(resident, tmp_path):
    address, process = resident()
    started = tmp_path / "started"
    result = {}
    caller = threading.Thread(target=lambda: result.update(r=call(address, "GET", f"/slow?{started}", timeout=20)))
    caller.start()
    wait_for(started.exists, what="the request to start")
    process.send_signal(signal.SIGTERM)
    caller.join(20)
    assert result["r"].status == 200 and json.loads(result["r"].body)["path_info"] == "/slow"
    assert process.wait(10) == 0
    with pytest.raises(OSError):
        call(address, "GET", "/", timeout=2)


def test_listening_socket_on_fd_0_means_resident_mode(tmp_path):
    """inetd `wait`: the listening socket itself is fd 0, and the same command serves on."""
    path = str(tmp_path / "wait.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    with listener:
        process = subprocess.Popen(python_cmd("scgi-wsgi", APPS, "--idle-timeout", "5"), stdin=listener,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
    try:
        first = json.loads(call(f"unix:{path}", "GET", "/one", timeout=20).body)
        second = json.loads(call(f"unix:{path}", "GET", "/two", timeout=20).body)
        assert first["run_once"] is False and second["path_info"] == "/two"
        assert first["pid"] != second["pid"] != process.pid
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_one_shot_request_imports_nothing_expensive(tmp_path):
    """-X importtime lists every module imported, the log (fd 2 after open_log) included."""
    from scgi_inetd.client import build_params
    from scgi_inetd.protocol import encode_request

    log = tmp_path / "log"
    argv = python_cmd("scgi-wsgi", str(EXAMPLES / "hello_wsgi.py"), "--stderr", str(log))
    imported, response = one_shot_imports(argv, encode_request(build_params("GET", "/")), log)
    assert response.startswith(b"Status: 200 OK")
    assert "scgi_inetd.wsgi" in imported and "hello_wsgi" in imported  # the log's part was read
    assert not imported & EXPENSIVE_MODULES, sorted(imported & EXPENSIVE_MODULES)
    ours = sorted(name for name in imported if name.split(".")[0] == "scgi_inetd")
    assert len(ours) == ONE_SHOT_MODULES, ours


def test_refused_header_is_answered_without_a_connection_reset(tmp_path):
    """A 413 for a header over the limit, with 200 KiB more behind it still in flight:
    the gateway half-closes and reads until the client closes, so the client reads
    the whole answer and no reset (nginx's "readv() failed (104...)")."""
    import socket
    import subprocess

    from tests.support import EXAMPLES, child_env, python_cmd

    ours, theirs = socket.socketpair()
    process = subprocess.Popen(python_cmd("scgi-wsgi", "--stderr", str(tmp_path / "log"),
                                          str(EXAMPLES / "hello_wsgi.py")),
                               stdin=theirs, stdout=theirs, stderr=theirs, env=child_env())
    theirs.close()
    with ours:
        ours.settimeout(30)
        ours.sendall(b"300000:" + b"x" * 1000)
        answer = read_all(ours)
        ours.sendall(b"y" * 200_000)
    assert process.wait(30) == 0
    assert answer.startswith(b"Status: 413 ")
    assert (tmp_path / "log").read_text().count("\n") == 1
