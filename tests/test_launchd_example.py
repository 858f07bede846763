"""examples/launchd/ as far as Linux can check it: a valid plist, run as launchd would.

launchd itself only exists on macOS. With inetdCompatibility Wait=false it
starts ProgramArguments with the connection on fds 0, 1 and 2, which is what
`call_exec` does: so the arguments as written are run that way here, with the
system paths moved to this checkout.
"""

from __future__ import annotations

import plistlib

from scgi_inetd.client import call_exec
from tests.support import BIN, EXAMPLES, PYTHON, child_env

PLIST = EXAMPLES / "launchd" / "org.example.scgi-hello.plist"


def test_plist_is_an_inetd_style_job_on_a_private_unix_socket():
    job = plistlib.loads(PLIST.read_bytes())
    assert job["inetdCompatibility"] == {"Wait": False}
    listener = job["Sockets"]["Listeners"]
    assert listener["SockFamily"] == "Unix"
    assert listener["SockPathMode"] == 0o600
    assert job["ProgramArguments"][0] == "/usr/local/bin/scgi-wsgi"


def test_program_arguments_serve_the_hello_app_as_launchd_starts_them(tmp_path):
    arguments = plistlib.loads(PLIST.read_bytes())["ProgramArguments"]
    moved = {
        "/usr/local/bin/scgi-wsgi": str(BIN / "scgi-wsgi"),
        "/var/log/scgi-hello.log": str(tmp_path / "hello.log"),
        "/usr/local/www/apps/hello_wsgi.py": str(EXAMPLES / "hello_wsgi.py"),
    }
    argv = [PYTHON]
    for argument in arguments:
        for old, new in moved.items():
            argument = argument.replace(old, new)
        argv.append(argument)
    response = call_exec(argv, uri="/hello", env=child_env())
    assert (response.status, response.body) == (200, b"Hello, world!\n")
    assert (tmp_path / "hello.log").exists()
