"""examples/stack/run as README.md tells a new user to try it: it starts, its URLs answer, Ctrl-C stops it."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.e2e.conftest import require_programs, stack
from tests.support import EXAMPLES


def test_stack_run_serves_every_url_it_prints_and_stops_on_sigint() -> None:
    require_programs("nginx", "inetd")
    process = subprocess.Popen([str(EXAMPLES / "stack" / "run"), "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines = []
    try:
        deadline = time.monotonic() + 60
        while not lines or "Ctrl-C stops everything." not in lines[-1]:
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines) or "no output"
            lines.append(line)
        urls = [(word, line) for line in lines for word in line.split() if word.startswith("http://")]
        root = Path(lines[0].split(" files under ")[1].strip())
        assert len(urls) >= 8 and root.is_dir()
        for url, line in urls:
            with urllib.request.urlopen(as_printed(url, line), timeout=20) as answer:
                assert answer.status == 200, url
                assert answer.read(), url
        children = stack_processes(process.pid)
        assert children, "nginx and inetd should run under the stack"
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, rest
    assert "stopping" in rest
    assert not root.exists(), "the temporary directory is left behind"
    assert stack.wait_gone(children, 5) == []


def as_printed(url: str, line: str) -> urllib.request.Request:
    """A request for `url`, with the credentials its line gives ("(user NAME, password WORD)"), if any."""
    found = re.search(r"\(user (\S+), password (\S+)\)", line)
    request = urllib.request.Request(url)
    if found:
        token = base64.b64encode(f"{found[1]}:{found[2]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def stack_processes(pid: int) -> list[int]:
    """The processes started under `pid`: its children and theirs."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rpartition(")")[2].split()[1])
            except OSError:
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent:
                found.append(child)
                frontier.append(child)
    return found
