"""Headless Chromium driven over the DevTools protocol, with the standard library only.

With `--remote-debugging-pipe` Chromium reads protocol commands on its fd 3
and writes answers and events on fd 4, each a JSON message ended by a NUL
byte: no port, no websocket client, no driver program. One page is opened
as a target with a flattened session; commands for it carry that session id.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import unavailable

# Headless, as root, with nothing started that would reach the network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1600,900", "--remote-debugging-pipe"]
TIMEOUT = 60.0  # a page load here takes well under a second; much more under load is fine


class BrowserError(RuntimeError):
    """Chromium answered a command with an error, or did not answer in time."""


def require_chromium() -> str:
    program = shutil.which("chromium")
    if program is None:
        unavailable("chromium not found: apt-get install --no-install-recommends chromium")
    return program


def _high(fd: int) -> int:
    """`fd` moved to 10 or above, so that putting the pipes on 3 and 4 clobbers neither."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One Chromium process with a fresh profile under `directory`; stopped by `close()`."""

    def __init__(self, directory: Path) -> None:
        program = require_chromium()
        commands_read, self._commands = map(_high, os.pipe())
        self._events, events_write = map(_high, os.pipe())

        def onto_3_and_4() -> None:
            os.dup2(commands_read, 3)
            os.dup2(events_write, 4)

        profile = directory / "profile"
        profile.mkdir()
        self.log = directory / "chromium.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([program, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            preexec_fn=onto_3_and_4, pass_fds=(3, 4))
        os.close(commands_read)
        os.close(events_write)
        self._buffer = b""
        self._pending: list[dict] = []
        self._next_id = 0

    def call(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and return its result (events meanwhile are kept)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        answer = self._wait(lambda m: m.get("id") == self._next_id, f"an answer to {method}")
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_event(self, method: str, session: str | None = None) -> dict:
        return self._wait(lambda m: m.get("method") == method and m.get("sessionId") == session, method)

    def drop_events(self, method: str) -> None:
        self._pending = [m for m in self._pending if m.get("method") != method]

    def _wait(self, wanted, what: str) -> dict:
        for number, message in enumerate(self._pending):
            if wanted(message):
                return self._pending.pop(number)
        deadline = time.monotonic() + TIMEOUT
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if wanted(message):
                    return message
                self._pending.append(message)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._events], [], [], left)[0]:
                raise BrowserError(f"no {what} from Chromium within {TIMEOUT} s; see {self.log}")
            chunk = os.read(self._events, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited waiting for {what}; see {self.log}")
            self._buffer += chunk

    def page(self, headers: dict[str, str] | None = None) -> Page:
        """A new tab; `headers` go with every request it makes (as cached credentials would)."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = Page(self, session)
        page.call("Page.enable")
        if headers:
            page.call("Network.enable")
            page.call("Network.setExtraHTTPHeaders", headers=headers)
        return page

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._events)


class Page:
    """One tab: load a URL, run an expression in it, take a screenshot."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def call(self, method: str, **params) -> dict:
        return self.browser.call(method, self.session, **params)

    def navigate(self, url: str) -> None:
        self.browser.drop_events("Page.loadEventFired")
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"{url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.session)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (DevTools runs it whatever the page's CSP)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def submit(self, expression: str) -> None:
        """Run `expression` (a click that submits a form) and wait for the page it loads."""
        self.browser.drop_events("Page.loadEventFired")
        self.evaluate(expression)
        self.browser.wait_event("Page.loadEventFired", self.session)

    def screenshot(self, path: Path) -> bytes:
        """The whole page as PNG, written to `path`."""
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        path.write_bytes(data)
        return data
