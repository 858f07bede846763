"""examples/xinetd.d/scgi-hello as written, under a real xinetd in the foreground.

xinetd serves TCP only, so the test talks SCGI to its port directly with the
project's client (nginx's side of a TCP scgi_pass is the same bytes). Only
the system paths, the port and the user are changed; the server line is
pointed at this interpreter and checkout, as the comment in the example says
to do when running from a checkout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from scgi_inetd.client import call
from tests.e2e.conftest import require_programs, stack
from tests.support import BIN, child_env


def xinetd_config(port: int, log: str) -> str:
    text = (stack.EXAMPLES / "xinetd.d" / "scgi-hello").read_text()
    text = text.replace("port        = 4000", f"port        = {port}")
    text = text.replace("/var/log/scgi/hello.log", log)
    text = text.replace("/srv/scgi/hello_wsgi.py", str(stack.EXAMPLES / "hello_wsgi.py"))
    text = text.replace("server      = /usr/local/bin/scgi-wsgi",
                        f"server      = {sys.executable}\n    env         = PYTHONPATH={child_env()['PYTHONPATH']}")
    text = text.replace("server_args = ", f"server_args = {BIN / 'scgi-wsgi'} ")
    if os.geteuid() == 0:
        text = text.replace("user        = www-data", "user        = root")
    else:
        text = text.replace("    user        = www-data\n", "")
    return "defaults\n{\n}\n" + text


def wait_listening(port: int, process: subprocess.Popen, timeout: float = 10) -> None:
    """Readiness from /proc/net/tcp, not by connecting (a probe would start a handler)."""
    wanted = f"0100007F:{port:04X} 00000000:0000 0A"
    deadline = time.monotonic() + timeout
    while wanted not in open("/proc/net/tcp").read():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "xinetd did not start listening"
        time.sleep(0.05)


def test_xinetd_example_serves_the_wsgi_hello(tmp_path):
    require_programs("xinetd")
    port = stack.free_port()
    config = tmp_path / "xinetd.conf"
    config.write_text(xinetd_config(port, str(tmp_path / "hello.log")))
    process = subprocess.Popen(
        [stack.find_program("xinetd"), "-dontfork", "-f", str(config), "-pidfile", str(tmp_path / "pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, process)
        responses = [call(f"127.0.0.1:{port}", uri=f"/hello?n={n}", timeout=10) for n in range(5)]
        assert [(r.status, r.body) for r in responses] == [(200, b"Hello, world!\n")] * 5
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
