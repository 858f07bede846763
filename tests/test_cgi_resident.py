"""Resident scgi-run in exec mode (cgi_resident): headers read in the loop, scripts spawned.

Real processes and sockets: the server is bin/scgi-run --listen on a unix
socket, requests come from scgi_inetd.client or a raw socket.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scgi_inetd.client import connect, exchange
from scgi_inetd.protocol import parse_response

from .cgi_support import ATTACKS, DUMP, HANG, dumped, log_lines, request, run_raw, write_script
from .malformed import MALFORMED
from .support import EXAMPLES, alive, cpu_seconds, read_all, wait_for

CGI_BIN = EXAMPLES / "cgi-bin"

SUM_SH = ("#!/bin/sh\nprintf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n'\n"
          "head -c \"$CONTENT_LENGTH\" | sha256sum | cut -d' ' -f1\n")
MARK_SH = "#!/bin/sh\ntouch \"$0.ran\"\nprintf 'Status: 200 OK\\r\\n\\r\\nran\\n'\n"
SIGNALS_SH = "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\n'; grep -E '^Sig(Ign|Blk)' /proc/self/status\n"


def test_50_concurrent_posts_reach_their_scripts_intact(tmp_path, server):
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    write_script(cgi / "sum.sh", SUM_SH)
    running = server("--max-children", "8", f"{cgi}/")
    bodies = [os.urandom(size) for size in [0, 1, 27, 28, 29, 65536, 1 << 20] * 7 + [3] * 1]

    def one(body: bytes):
        return running.call("POST", "/cgi/sum.sh", body=body, params={"SCRIPT_FILENAME": f"{cgi}/sum.sh"},
                            timeout=60)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(one, bodies))
    assert [(r.status, r.body.strip()) for r in responses] == [
        (200, hashlib.sha256(body).hexdigest().encode()) for body in bodies]
    assert running.stop() == 0
    assert log_lines(running.log) == []


def test_header_in_pieces_and_body_in_the_same_write(tmp_path, server):
    """The loop reads a header that trickles in, and leaves the body bytes sent with it."""
    write_script(tmp_path / "sum.sh", SUM_SH)
    running = server(tmp_path / "sum.sh")
    body = b"x" * 100
    data = request("POST", "/", body=body)
    with connect(running.address, 20) as sock:
        for index in range(0, 42, 7):
            sock.sendall(data[index:index + 7])
            time.sleep(0.05)
        raw = exchange(sock, data[42:])
    assert parse_response(raw).body.strip() == hashlib.sha256(body).hexdigest().encode()


def test_a_silent_client_blocks_nobody_and_gets_408(tmp_path, server):
    running = server("--header-timeout", "1.5", CGI_BIN / "hello.sh")
    with connect(running.address, 20) as silent, connect(running.address, 20) as partial:
        partial.sendall(b"70:CONTENT_LENGTH\x00")
        started = time.monotonic()
        for _ in range(3):
            assert running.call().status == 200
        assert time.monotonic() - started < 1.0, "a silent client held the others up"
        assert read_all(silent).startswith(b"Status: 408 ")
        assert read_all(partial).startswith(b"Status: 408 ")
    assert time.monotonic() - started < 5
    assert [line.split(": ", 1)[1] for line in log_lines(running.log)] == [
        "408 Request Timeout: request header not complete in time"] * 2


def test_every_malformed_header_is_refused_and_no_script_runs(tmp_path, server):
    """The parser's whole table through the loop, plus a header cut short; the loop carries on."""
    script = write_script(tmp_path / "mark.sh", MARK_SH)
    running = server(script)
    rows = [*MALFORMED, (b"30:CONTENT_LENGTH\x000\x00SCGI\x001\x00", 400, "closed inside the request header")]
    for data, status, fragment in rows:
        with connect(running.address, 20) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            raw = read_all(sock)
        assert (parse_response(raw).status, data) == (status, data)
        assert fragment in log_lines(running.log)[-1]
    assert not (tmp_path / "mark.sh.ran").exists()
    assert len(log_lines(running.log)) == len(rows)
    assert running.call().body == b"ran\n"


def test_confinement_attacks_are_refused(tree, server):
    running = server(f"{tree}/cgi/")
    for name, status in ATTACKS:
        if "\x00" in name:
            continue  # the protocol cannot carry it; the one-shot table covers the raw case
        filename = name if name.startswith("/") or not name else str(tree / name)
        response = running.call(params={"SCRIPT_FILENAME": filename})
        assert (name, response.status) == (name, status), response.body
    assert not list(tree.rglob("*.ran")), "a script outside DIR ran"
    allowed = running.call(params={"SCRIPT_FILENAME": f"{tree}/cgi/sub/deep.sh/more"})
    assert allowed.body == f"ran {tree}/cgi/sub/deep.sh\n".encode()


def test_refusal_drains_the_body_and_exec_failure_is_500(tmp_path, server):
    write_script(tmp_path / "bad-interpreter", "#!/nonexistent/interpreter\n")
    running = server(f"{tmp_path}/")
    missing = running.call("POST", body=b"x" * 3_000_000, params={"SCRIPT_FILENAME": f"{tmp_path}/missing"})
    assert missing.status == 404
    failed = running.call("POST", body=b"y" * 100_000,
                          params={"SCRIPT_FILENAME": f"{tmp_path}/bad-interpreter"})
    assert failed.status == 500 and b"nonexistent" not in failed.body
    assert len(log_lines(running.log)) == 2


def test_environment_is_the_one_shot_environment(tmp_path, server):
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    write_script(cgi / "env.py", DUMP)
    args = ["--env", "TZ=UTC", "--pass-env", "LANG", f"{cgi}/"]
    env = {"LANG": "C.UTF-8", "SHIM_SECRET": "must-not-leak"}
    params = {"SCRIPT_FILENAME": f"{cgi}/env.py/extra/p", "DOCUMENT_ROOT": "/srv/www"}
    data = request("GET", "/cgi/env.py/extra/p?a=1", params=params, headers=[("Proxy", "evil")])
    one_shot = dumped(parse_response(run_raw(args, data, env=env)).body)
    resident = dumped(parse_response(server(*args, env=env).raw(data)).body)
    assert resident == one_shot
    assert resident[b"SCRIPT_FILENAME"] == f"{cgi}/env.py".encode() and b"SHIM_SECRET" not in resident


def test_script_cwd_and_arguments(tmp_path, server):
    script = write_script(tmp_path / "args.sh",
                          "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\n'; printf '%s|' \"$@\"; pwd; ls /proc/self/fd\n")
    body = server(script, "one", "two words").call().body.decode().splitlines()
    assert body[0] == f"one|two words|{tmp_path}"
    assert sorted(body[1:]) == ["0", "1", "2", "3"], "descriptors other than 0-2 (and ls's own) leaked"


def test_signals_are_default_in_the_script(tmp_path, server):
    """Even those the server's launcher left ignored (nohup, a shell's trap)."""
    script = write_script(tmp_path / "sig.sh", SIGNALS_SH)
    running = server(script, launcher=("sh", "-c", 'trap "" HUP USR1 QUIT; exec "$@"', "sh"))
    fields = dict(line.split(":\t") for line in running.call().body.decode().splitlines())
    assert int(fields["SigIgn"], 16) & 0x7FFFFFFF == 0, fields
    assert int(fields["SigBlk"], 16) == 0, fields


def test_timeout_ends_the_whole_process_group(tmp_path, server):
    script = write_script(tmp_path / "hang.sh", HANG.format(before=""))
    running = server("--timeout", "0.5", script)
    started = time.monotonic()
    assert running.raw(request()) == b""
    assert time.monotonic() - started < 5, "the client waited past the timeout"
    sleeper = int((tmp_path / "hang.sh.pid").read_text())
    _wait_until_gone(sleeper)
    [line] = log_lines(running.log)
    assert "after 0.5s" in line
    assert running.stop() == 0


def test_timeout_ends_children_that_outlive_the_script(tmp_path, server):
    """The script exits, its background child keeps the connection: --timeout still ends it."""
    script = write_script(tmp_path / "leave.sh",
                          "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\nbye\\n'\nsleep 300 &\necho $! > \"$0.pid\"\n")
    running = server("--timeout", "0.5", script)
    started = time.monotonic()
    assert running.raw(request()).endswith(b"bye\n")
    assert time.monotonic() - started < 5
    _wait_until_gone(int((tmp_path / "leave.sh.pid").read_text()))


def test_max_children_bounds_running_scripts(tmp_path, server):
    (tmp_path / "running").mkdir()
    script = write_script(tmp_path / "count.sh",
                          "#!/bin/sh\ntouch running/$$; sleep 0.3; ls running | wc -l >> counts; rm running/$$\n"
                          "printf 'Status: 200 OK\\r\\n\\r\\nok\\n'\n")
    running = server("--max-children", "2", script)
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: running.call(timeout=30).status, range(6)))
    assert statuses == [200] * 6
    counts = [int(line) for line in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 6 and max(counts) <= 2


def test_sigterm_lets_a_request_in_flight_finish(tmp_path, server):
    script = write_script(tmp_path / "slow.sh",
                          "#!/bin/sh\necho $$ > \"$0.pid\"\nsleep 1\nprintf 'Status: 200 OK\\r\\n\\r\\ndone\\n'\n")
    running = server(script)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(running.call, timeout=20)
        _wait_for(tmp_path / "slow.sh.pid")
        running.process.send_signal(signal.SIGTERM)
        assert pending.result().body == b"done\n"
    assert running.process.wait(10) == 0
    assert not running.path.exists() or not running.accepts()


def test_sigterm_grace_ends_a_script_that_runs_on(tmp_path, server):
    script = write_script(tmp_path / "hang.sh", HANG.format(before=""))
    running = server("--grace", "0.5", script)
    with connect(running.address, 20) as sock:
        sock.sendall(request())
        _wait_for(tmp_path / "hang.sh.pid")
        started = time.monotonic()
        assert running.stop() == 0
        assert time.monotonic() - started < 5
        assert read_all(sock) == b""
    _wait_until_gone(int((tmp_path / "hang.sh.pid").read_text()))
    assert "still running after 0.5s" in log_lines(running.log)[0]


def test_idle_timeout_exits(tmp_path, server):
    running = server("--idle-timeout", "0.5", CGI_BIN / "hello.sh")
    assert running.call().status == 200
    assert running.process.wait(10) == 0
    assert "idle" in log_lines(running.log)[-1]


def test_fix_status_keeps_the_forking_loop(tmp_path, server):
    running = server("--fix-status", CGI_BIN / "no-status.sh")
    response = running.call()
    assert response.status == 200
    assert running.stop() == 0


def _wait_for(path: Path, timeout: float = 10) -> None:
    wait_for(lambda: path.exists() and path.read_text().strip(), timeout, what=f"{path} to appear")


def _wait_until_gone(pid: int, timeout: float = 5) -> None:
    wait_for(lambda: not alive(pid), timeout, what=f"process {pid} to end")


def test_symlink_changing_under_traffic_never_stops_the_server(tmp_path, server):
    """A deploy flips DIR/current (gone, link, file, link) while 2,000 requests name it.

    realpath's lstat-then-readlink races the flips (ENOENT when a link goes,
    EINVAL when it becomes a file): each such request gets a 404 or 500 and
    one log line, the rest run a script (or get 403 for the plain file), and
    the one resident process is still serving at the end. The file is not
    executable, so no script is ever exec'd by the flipping name itself (that
    check-then-exec window is another matter).
    """
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    write_script(cgi / "a.sh", "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\na'\n")
    write_script(cgi / "b.sh", "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\nb'\n")
    write_script(cgi / "plain", "not a script\n", mode=0o644)
    current, temporary = cgi / "current", cgi / "next"
    running = server("--max-children", "8", f"{cgi}/")
    stop = False

    def flip() -> None:
        while not stop:
            os.symlink("a.sh", current)
            os.link(cgi / "plain", temporary)
            os.replace(temporary, current)       # a link becomes a file: readlink gets EINVAL
            os.symlink("b.sh", temporary)
            os.replace(temporary, current)
            os.unlink(current)                   # a link goes: readlink gets ENOENT

    def one(_) -> int:
        return running.call(params={"SCRIPT_FILENAME": f"{cgi}/current"}, timeout=30).status

    with ThreadPoolExecutor(1) as flipper:
        flipping = flipper.submit(flip)
        try:
            with ThreadPoolExecutor(4) as pool:
                statuses = list(pool.map(one, range(2000)))
        finally:
            stop = True
        flipping.result()
    assert running.process.poll() is None, "the server died"
    assert len(statuses) == 2000 and set(statuses) <= {200, 403, 404, 500}, set(statuses)
    assert len(log_lines(running.log)) == len(statuses) - statuses.count(200)
    assert running.call(params={"SCRIPT_FILENAME": f"{cgi}/a.sh"}).body == b"a"
    assert running.stop() == 0


def test_out_of_descriptors_the_loop_waits_instead_of_spinning(tmp_path, server):
    """accept() failing with EMFILE leaves the listener readable: the loop must pause, not spin."""
    script = write_script(tmp_path / "mark.sh", MARK_SH)
    running = server(script, launcher=("prlimit", "--nofile=16", "--"))
    silent = []
    try:
        for _ in range(12):  # more than the descriptors left: the last ones wait in the backlog
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(running.path))
            silent.append(sock)
        time.sleep(0.5)
        before = cpu_seconds(running.process.pid)
        time.sleep(1.0)
        assert cpu_seconds(running.process.pid) - before < 0.3, "the loop spins on a failing accept()"
        assert sum("cannot accept" in line for line in log_lines(running.log)) == 1
    finally:
        for sock in silent:
            sock.close()
    assert running.call().body == b"ran\n"  # descriptors back: it serves again
