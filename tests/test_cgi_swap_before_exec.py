"""A checked script, or its folder, swapped for a symlink out of DIR before the exec.

The window is made deterministic by the request body: every exec path
confines the script when the header is in and runs it only once the whole
body is, so the test sends the header, waits until the shim has taken it,
swaps, and only then sends the body. The script outside DIR touches a
marker; it must never run, whatever the path: one-shot exec, one-shot
``--fix-status``, resident spawn and resident ``--fix-status``.
"""

from __future__ import annotations

import array
import fcntl
import os
import socket
import subprocess
import termios
import time
from pathlib import Path

import pytest

from scgi_inetd.client import connect, receive
from scgi_inetd.protocol import parse_response

from .cgi_support import log_lines, request, scgi_run, write_script
from .support import child_env

INSIDE_SH = "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\ninside'\n"
OUTSIDE_SH = "#!/bin/sh\ntouch '{marker}'\nprintf 'Status: 200 OK\\r\\n\\r\\noutside'\n"

#: (mode, scgi-run options, resident): every way a checked script gets exec'd.
MODES = [
    ("one-shot", (), False),
    ("one-shot --fix-status", ("--fix-status",), False),
    ("resident", (), True),
    ("resident --fix-status", ("--fix-status",), True),
]


def swap_script(cgi: Path, outside: Path) -> None:
    os.symlink(outside / "run.sh", cgi / "sub" / "next")
    os.replace(cgi / "sub" / "next", cgi / "sub" / "run.sh")


def swap_folder(cgi: Path, outside: Path) -> None:
    os.rename(cgi / "sub", cgi / "old")
    os.symlink(outside, cgi / "sub")


def remove_script(cgi: Path, outside: Path) -> None:
    os.unlink(cgi / "sub" / "run.sh")


#: (what changes after the check, the status it gets)
CHANGES = [(swap_script, 403), (swap_folder, 403), (remove_script, 404)]


@pytest.mark.parametrize("swap, status", CHANGES, ids=["script", "folder", "gone"])
@pytest.mark.parametrize("mode, options, resident", MODES, ids=[m[0] for m in MODES])
def test_a_symlink_swapped_in_after_the_check_never_runs(tmp_path, server, swap, status, mode, options,
                                                         resident):
    cgi, outside, marker = tmp_path / "cgi", tmp_path / "outside", tmp_path / "outside-ran"
    (cgi / "sub").mkdir(parents=True)
    outside.mkdir()
    write_script(cgi / "sub" / "run.sh", INSIDE_SH)
    write_script(outside / "run.sh", OUTSIDE_SH.format(marker=marker))
    log = tmp_path / "shim.log"
    data = request("POST", "/", body=b"x", params={"SCRIPT_FILENAME": f"{cgi}/sub/run.sh"})
    header, body = data[:-1], data[-1:]
    if resident:
        running = server(*options, f"{cgi}/")
        log = running.log
        sock = connect(running.address, 30)
    else:
        sock, theirs = socket.socketpair()
        shim = subprocess.Popen(scgi_run("--stderr", log, *options, f"{cgi}/"),
                                stdin=theirs, stdout=theirs, stderr=theirs, env=child_env())
        theirs.close()
    with sock:
        sock.sendall(header)
        wait_until_taken(sock)
        swap(cgi, outside)
        sock.sendall(body)
        response = parse_response(b"".join(receive(sock, time.monotonic() + 30)))
    if not resident:
        shim.wait(30)
    assert not marker.exists(), f"{mode}: the script outside DIR ran"
    assert response.status == status, response
    assert len(log_lines(log)) == 1, log_lines(log)


def wait_until_taken(sock: socket.socket) -> None:
    """Until the peer has read all we sent (the header), and a moment for it to check the script.

    TIOCOUTQ on a unix socket counts what the receiver has not consumed yet.
    """
    pending = array.array("i", [0])
    deadline = time.monotonic() + 20
    while fcntl.ioctl(sock, termios.TIOCOUTQ, pending) or pending[0]:
        assert time.monotonic() < deadline, "the shim never read the header"
        time.sleep(0.01)
    time.sleep(0.2)
