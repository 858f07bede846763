"""Every serving option in every front-end, from the table in scgi_inetd.options.

For each (front-end, option) the table pairs, a probe shows the option
changes what the real program does; for each option a front-end does not
take, the program refuses it (exit 2, one line) instead of ignoring it. The
cases are derived from the table: an option added without a probe fails here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from scgi_inetd.client import build_params, call, call_exec
from scgi_inetd.options import OPTIONS, SERVERS
from scgi_inetd.protocol import IncompleteRequest, encode_request, parse_request
from tests.bootmenu_helpers import MAC, write_config
from tests.cgi_support import write_script
from tests.support import ResidentServer, child_env, children_of, python_cmd, wait_for

SCRIPT = "#!/bin/sh\necho matrix-stderr >&2\nprintf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n'\nenv\n"
APP = '''
import os
def app(environ, start_response):
    environ["wsgi.errors"].write("matrix-stderr\\n")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
'''
#: A header cut short: the server waits for the rest.
PARTIAL = b"70:CONTENT_LENGTH\x000\x00"
#: A header refused at once (a leading zero), longer than the reader's first read.
MALFORMED = b"012:" + b"x" * 40
PADDING = [("X-Pad", "a" * 500)]


class FrontEnd:
    """One program with a target that answers 200 to `uri`, run one-shot or resident."""

    def __init__(self, program: str, tmp_path: Path) -> None:
        self.program = program
        self.tmp_path = tmp_path
        if program == "scgi-run":
            self.positionals = [str(write_script(tmp_path / "matrix.sh", SCRIPT))]
            self.uri = "/x"
        elif program == "scgi-wsgi":
            (tmp_path / "matrix_app.py").write_text(APP)
            self.positionals = [f"{tmp_path / 'matrix_app.py'}:app"]
            self.uri = "/x"
        else:
            self.positionals = [str(write_config(tmp_path))]
            self.uri = f"/boot.ipxe?mac={MAC}"

    def argv(self, options: list[str]) -> list[str]:
        return python_cmd(self.program, *options, *self.positionals)

    def one_shot(self, options: list[str], *, env=None, timeout: float = 20, **request):
        return call_exec(self.argv(options), uri=self.uri, env=child_env(env), timeout=timeout, **request)

    @contextlib.contextmanager
    def resident(self, options: list[str]):
        """The program serving on a unix socket (--listen); yields (process, address); SIGTERM at the end."""
        path = self.tmp_path / "matrix.sock"
        path.unlink(missing_ok=True)
        server = ResidentServer(self.program, *options, *self.positionals, listen=f"unix:{path}")
        try:
            yield server.process, server.address
        finally:
            server.close()

    def request(self) -> bytes:
        return encode_request(build_params("GET", self.uri))


def held_connection(address: str, uri: str) -> socket.socket:
    """A request whose body never comes: it occupies a slot of the server.

    (A header that never completes does not: the resident frame reads
    headers itself, holding no slot for them.)
    """
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(address.removeprefix("unix:"))
    sock.sendall(encode_request(build_params("POST", uri), b"x" * 100)[:-100])
    # Once the server has read the whole header, the request is its own, in
    # line ahead of any connection made after. Without the wait, a server
    # that accepted this one before its header came could read the next
    # connection's header first and give that one the slot.
    wait_for(lambda: not unread(sock), what="the server to read the held request's header")
    return sock


def unread(sock: socket.socket) -> int:
    """Bytes sent on a unix socket that its peer has not read yet (TIOCOUTQ: the send queue)."""
    import fcntl
    import struct
    import termios

    return struct.unpack("i", fcntl.ioctl(sock, termios.TIOCOUTQ, bytes(4)))[0]


def answered_within(address: str, request: bytes, seconds: float) -> bool:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(address.removeprefix("unix:"))
        sock.sendall(request)
        sock.settimeout(seconds)
        try:
            return sock.recv(1) != b""
        except TimeoutError:
            return False


def probe_stderr(front: FrontEnd) -> None:
    log = front.tmp_path / "matrix.log"
    assert front.one_shot(["--stderr", str(log)], raw=MALFORMED).status == 400
    assert log.read_text().strip()


def probe_header_timeout(front: FrontEnd) -> None:
    started = time.monotonic()
    response = call_exec(front.argv(["--header-timeout", "0.3"]), raw=PARTIAL, env=child_env(), timeout=10)
    assert response.status == 408 and time.monotonic() - started < 10


def probe_max_header(front: FrontEnd) -> None:
    assert front.one_shot([], headers=PADDING).status == 200
    assert front.one_shot(["--max-header", "100"], headers=PADDING).status == 413


def probe_max_body(front: FrontEnd) -> None:
    assert front.one_shot([], method="POST", body=b"x" * 100).status != 413
    assert front.one_shot(["--max-body", "10"], method="POST", body=b"x" * 100).status == 413


def probe_body_timeout(front: FrontEnd) -> None:
    cut_short = encode_request(build_params("POST", front.uri, body=b"x" * 100), b"x" * 100)[:-90]
    started = time.monotonic()
    response = call_exec(front.argv(["--body-timeout", "0.3"]), raw=cut_short, env=child_env(), timeout=10)
    assert response.status == 408 and time.monotonic() - started < 10


def probe_spool_dir(front: FrontEnd) -> None:
    big = b"s" * (2 << 20)  # over the 1 MiB kept in memory
    assert front.one_shot([], method="POST", body=big).status != 503
    missing = str(front.tmp_path / "missing")
    assert front.one_shot(["--spool-dir", missing], method="POST", body=big).status == 503


def probe_stream_body(front: FrontEnd) -> None:
    front.positionals = [str(write_script(front.tmp_path / "stdin.sh",
                                          "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\n'\nreadlink /proc/self/fd/0\n"))]
    assert front.one_shot([]).body == b"/dev/null\n"
    assert front.one_shot(["--stream-body"]).body.startswith(b"socket:[")


def probe_listen(front: FrontEnd) -> None:
    with front.resident([]) as (_, address):  # resident() passes --listen
        assert call(address, uri=front.uri, timeout=20).status == 200


def probe_socket_mode(front: FrontEnd) -> None:
    socket_path = front.tmp_path / "matrix.sock"
    with front.resident([]):
        assert socket_path.stat().st_mode & 0o777 == 0o660
    with front.resident(["--socket-mode", "0600"]):
        assert socket_path.stat().st_mode & 0o777 == 0o600


def probe_socket_owner(front: FrontEnd) -> None:
    socket_path = front.tmp_path / "matrix.sock"
    uid, gid = os.getuid(), os.getgid()
    other = 1 if gid != 1 else 2  # a group that exists (daemon/bin) and is not ours
    if uid != 0:
        pytest.skip("--socket-owner needs root")
    with front.resident([]):
        assert socket_path.stat().st_gid == gid
    with front.resident(["--socket-owner", f"{uid}:{other}"]):
        assert (socket_path.stat().st_uid, socket_path.stat().st_gid) == (uid, other)


def probe_max_children(front: FrontEnd) -> None:
    with front.resident([]) as (_, address):
        with held_connection(address, front.uri):
            assert answered_within(address, front.request(), 10)
    with front.resident(["--max-children", "1"]) as (_, address):
        held = held_connection(address, front.uri)
        with socket.socket(socket.AF_UNIX) as waiting:
            waiting.connect(address.removeprefix("unix:"))
            waiting.sendall(front.request())
            waiting.settimeout(1)
            with pytest.raises(TimeoutError):
                waiting.recv(1)
            held.close()  # its body ends short: a 400, and the slot is free
            waiting.settimeout(10)
            assert waiting.recv(1) == b"S"


def probe_idle_timeout(front: FrontEnd) -> None:
    with front.resident(["--idle-timeout", "0.3"]) as (process, _):
        assert process.wait(timeout=10) == 0


def probe_grace(front: FrontEnd) -> None:
    with front.resident(["--grace", "0.2"]) as (process, address):
        with held_connection(address, front.uri):
            time.sleep(0.3)  # accepted and being read
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0


def probe_requests_per_child(front: FrontEnd) -> None:
    with front.resident([]) as (process, _):
        time.sleep(0.5)
        assert children_of(process.pid, zombies=True) == set()
    with front.resident(["--requests-per-child", "5", "--max-children", "2"]) as (process, address):
        wait_for(lambda: len(children_of(process.pid, zombies=True)) >= 2, 10, what="workers forked up front")
        assert call(address, uri=front.uri, timeout=20).status == 200


def probe_env(front: FrontEnd) -> None:
    assert b"MATRIX=42\n" not in front.one_shot([]).body
    assert b"MATRIX=42\n" in front.one_shot(["--env", "MATRIX=42"]).body


def probe_pass_env(front: FrontEnd) -> None:
    assert b"MATRIX_PASS=7\n" not in front.one_shot([], env={"MATRIX_PASS": "7"}).body
    assert b"MATRIX_PASS=7\n" in front.one_shot(["--pass-env", "MATRIX_PASS"], env={"MATRIX_PASS": "7"}).body


def probe_pass_var(front: FrontEnd) -> None:
    params = {"REMOTE_USER": "matrix"}
    assert b"REMOTE_USER=matrix\n" not in front.one_shot([], params=params).body
    assert b"REMOTE_USER=matrix\n" in front.one_shot(["--pass-var", "REMOTE_USER"], params=params).body


def probe_fix_status(front: FrontEnd) -> None:
    front.positionals = [str(write_script(front.tmp_path / "no-status.sh",
                                          "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi'\n"))]
    request = front.request()
    assert not call_raw(front.argv([]), request).startswith(b"Status:")
    assert call_raw(front.argv(["--fix-status"]), request).startswith(b"Status: 200")


def probe_timeout(front: FrontEnd) -> None:
    front.positionals = [str(write_script(front.tmp_path / "slow.sh", "#!/bin/sh\nsleep 30\n"))]
    started = time.monotonic()
    call_raw(front.argv(["--timeout", "0.3"]), front.request(), timeout=20)
    assert time.monotonic() - started < 10


def probe_script_name(front: FrontEnd) -> None:
    assert front.one_shot([]).status == 200
    assert front.one_shot(["--script-name", "/elsewhere"]).status == 404


def probe_chdir(front: FrontEnd) -> None:
    home = front.tmp_path / "home"
    home.mkdir()
    (home / "matrix_chdir_app.py").write_text(APP)
    front.positionals = ["matrix_chdir_app:app"]
    assert front.one_shot([]).status == 500
    assert front.one_shot(["--chdir", str(home)]).status == 200


def probe_cache(front: FrontEnd) -> None:
    cache = front.tmp_path / "elsewhere.cache"
    assert front.one_shot(["--cache", str(cache)]).status == 200
    assert cache.exists() and not Path(front.positionals[0] + ".cache").exists()


def call_raw(argv: list[str], request: bytes, timeout: float = 20) -> bytes:
    from scgi_inetd.client import exec_exchange

    return exec_exchange(argv, request, env=child_env(), timeout=timeout)


PROBES = {name.removeprefix("probe_").replace("_", "-"): probe
          for name, probe in globals().items() if name.startswith("probe_")}

ACCEPTED = [(program, names.split()[-1]) for names, programs, *_ in OPTIONS for program in programs
            if program in SERVERS]
SERVING_NAMES = {names.split()[-1]: convert for names, programs, _, _, convert, *_ in OPTIONS
                 if set(programs) & set(SERVERS)}
REFUSED = [(program, name) for program in SERVERS for name in sorted(SERVING_NAMES)
           if (program, name) not in ACCEPTED]


@pytest.mark.parametrize("program, name", ACCEPTED)
def test_option_changes_behaviour(program, name, tmp_path):
    probe = PROBES.get(name.removeprefix("--"))
    assert probe is not None, f"no probe for {name}: add probe_{name[2:].replace('-', '_')} here"
    probe(FrontEnd(program, tmp_path))


@pytest.mark.parametrize("program, name", REFUSED)
def test_option_of_another_front_end_is_refused(program, name, tmp_path):
    argv = [name] + ([] if SERVING_NAMES[name] is None else ["1"]) + ["target"]
    result = subprocess.run(python_cmd(program, *argv), env=child_env(), capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert result.stderr == f"{program}: {name} is not an option of {program} (see '{program} --help')\n"


def test_scgi_run_refuses_requests_per_child():
    """It spawns a fresh process for each script in any case: there is no fork to save."""
    assert ("scgi-run", "--requests-per-child") in REFUSED


def test_the_partial_header_is_incomplete():
    """The probes' PARTIAL header really is cut short (else the header-timeout probe proves nothing)."""
    with pytest.raises(IncompleteRequest):
        parse_request(PARTIAL)
