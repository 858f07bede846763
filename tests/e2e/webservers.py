"""lighttpd and Apache beside the e2e stack's nginx: the same inetd sockets, private configs.

Each runs in the foreground with its pid, logs and runtime files in its own
directory, on 127.0.0.1, and is stopped by pid, as the stack's nginx is.
examples/lighttpd.conf and examples/apache.conf are included as written,
their system paths moved by stack.rewrite.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Response, http_request, stack

APACHE_MODULES = "/usr/lib/apache2/modules"


class WebServer(stack.Server):
    """A server on 127.0.0.1:port with an error log to check."""

    port: int
    error_log: Path

    def start(self, timeout: float = 10.0) -> None:
        super().start()
        stack.wait_until(lambda: stack.tcp_accepting(self.port), timeout=timeout, what=self.name,
                         process=self.process, log=self.error_log)

    def request(self, path: str, *, method: str = "GET", body=None, headers=None,
                timeout: float = 60.0) -> Response:
        return http_request(self.port, path, method=method, body=body, headers=headers, timeout=timeout)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def errors(self) -> list[str]:
        try:
            return self.error_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []


class Lighttpd(WebServer):
    def __init__(self, root: Path, example: str, port: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "docroot").mkdir(exist_ok=True)
        self.port, self.error_log = port, root / "error.log"
        (root / "scgi-inetd.conf").write_text(example)
        (root / "lighttpd.conf").write_text(f"""\
server.document-root = "{root}/docroot"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{self.error_log}"
server.pid-file = "{root}/lighttpd.pid"
server.max-request-size = 0
include "{root}/scgi-inetd.conf"
""")
        super().__init__("lighttpd", [stack.find_program("lighttpd"), "-D", "-f", str(root / "lighttpd.conf")],
                         root / "lighttpd.out")


class Apache(WebServer):
    def __init__(self, root: Path, example: str, port: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.port, self.error_log = port, root / "error.log"
        (root / "scgi-inetd.conf").write_text(example)
        # Debian's apache2 has unixd and log_config built in.
        modules = "".join(f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so\n"
                          for name in ("mpm_event", "authz_core", "proxy", "proxy_scgi"))
        (root / "apache2.conf").write_text(f"""\
ServerRoot "{root}"
DefaultRuntimeDir "{root}"
PidFile "{root}/apache2.pid"
Mutex file:{root}
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
{modules}ErrorLog "{self.error_log}"
LogLevel warn
DocumentRoot "{root}"
Include "{root}/scgi-inetd.conf"
""")
        super().__init__("apache2", [stack.find_program("apache2"), "-f", str(root / "apache2.conf"),
                                     "-DFOREGROUND"], root / "apache2.out")
