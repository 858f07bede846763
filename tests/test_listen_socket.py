"""--listen unix:PATH: a live server's socket is never stolen, a stale one is replaced, and the
socket's permissions are the operator's choice (--socket-mode, --socket-owner), not the umask's."""

from __future__ import annotations

import os
import pwd
import grp
import socket
import stat
import subprocess

import pytest

from scgi_inetd.client import call
from tests.support import REPO, child_env, python_cmd, wait_for

HELLO = str(REPO / "examples" / "cgi-bin" / "hello.sh")
PROGRAMS = {
    "scgi-run": [HELLO],
    "scgi-wsgi": [str(REPO / "tests" / "wsgi_apps.py")],
    "scgi-bootmenu": [str(REPO / "tests" / "e2e" / "bootmenu-test.toml")],
}


@pytest.fixture
def started(serving):
    def start(path, *args, program="scgi-run", umask=0o022):
        return serving(program, *args, *PROGRAMS[program], listen=f"unix:{path}", log=None, umask=umask).process

    return start


def run_briefly(program, *args):
    return subprocess.run(python_cmd(program, *args, *PROGRAMS[program]), env=child_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=20)


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_second_server_on_a_live_socket_is_refused(tmp_path, started, program):
    path = tmp_path / "s.sock"
    first = started(path)
    second = run_briefly(program, "--listen", f"unix:{path}")
    assert second.returncode == 1
    assert second.stderr.decode().splitlines() == [f"{program}: cannot listen: a server is already listening on {path}"]
    assert call(f"unix:{path}", timeout=10).status == 200  # the first still owns the path
    assert first.poll() is None


def test_a_stale_socket_is_replaced(tmp_path, started):
    path = tmp_path / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nothing listens: what a killed server leaves
    stale_inode = os.stat(path).st_ino
    server = started(path)

    def replaced() -> bool:  # the server's socket is renamed over the stale one
        assert server.poll() is None, "the server exited"
        return os.stat(path).st_ino != stale_inode

    wait_for(replaced, 10, what="the stale socket to be replaced")
    assert call(f"unix:{path}", timeout=10).status == 200


def test_a_path_that_is_no_socket_is_refused(tmp_path):
    path = tmp_path / "s.sock"
    path.write_text("data\n")
    result = run_briefly("scgi-run", "--listen", f"unix:{path}")
    assert result.returncode == 1 and b"is not a socket" in result.stderr
    assert path.read_text() == "data\n"


@pytest.mark.parametrize("umask", [0o000, 0o077])
@pytest.mark.parametrize("program", PROGRAMS)
def test_socket_mode_defaults_to_0660_whatever_the_umask(tmp_path, started, program, umask):
    path = tmp_path / "s.sock"
    started(path, program=program, umask=umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660


def test_socket_mode_option(tmp_path, started):
    path = tmp_path / "s.sock"
    started(path, "--socket-mode", "0600", umask=0o000)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("mode", ["rw", "0999", "1777", ""])
def test_bad_socket_mode_is_a_usage_error(tmp_path, mode):
    result = run_briefly("scgi-run", "--socket-mode", mode, "--listen", f"unix:{tmp_path}/s.sock")
    assert result.returncode == 2 and b"--socket-mode" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a socket's owner needs root")
def test_socket_owner_as_root(tmp_path, started):
    path = tmp_path / "s.sock"
    started(path, "--socket-owner", "nobody:nogroup")
    info = os.stat(path)
    assert (info.st_uid, info.st_gid) == (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)


def test_unknown_socket_owner_is_refused_in_one_line(tmp_path):
    result = run_briefly("scgi-run", "--socket-owner", "no-such-user-here", "--listen", f"unix:{tmp_path}/s.sock")
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "scgi-run: cannot listen: no such user or group in --socket-owner 'no-such-user-here'"]
    assert not list(tmp_path.iterdir()), "a socket file was left behind"
