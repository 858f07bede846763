"""Run nginx and a super-server in the foreground, with every file in one directory.

Strategy: the deployment examples (examples/nginx.conf, inetd.conf.example,
examples/systemd/) are the configuration. This module rewrites their
system paths (/run/scgi/..., /srv/scgi/..., /usr/local/bin/scgi-*) to a
private directory and the repository checkout, then starts the real programs
and stops them again by pid. examples/stack/run (the stack a person can try)
and tests/e2e (the same stack, proved through HTTP) both use it, so the
examples are exercised exactly as written. Standard library only.

Why openbsd-inetd is the main super-server: it serves unix sockets, runs in
the foreground with a private configuration (`inetd -i -E CONF`), has no
per-second throttle once `nowait.N` lifts its spawn limit, and is what
FreeBSD, OpenBSD and Debian users run. xinetd is TCP only and its Debian
package conflicts with openbsd-inetd; socat leaks fds into the child.
`systemd-socket-activate` is the cheap second one: it runs the very
ExecStart lines of examples/systemd/ without systemd as PID 1.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

# Debian package for each program (the names .ci/apt-packages lists too).
PACKAGES = {
    "nginx": "nginx-light",
    "inetd": "openbsd-inetd",
    "systemd-socket-activate": "systemd",
    "socat": "socat",
    "qemu-system-x86_64": "qemu-system-x86",
    "perl": "perl",
    "dnsmasq": "dnsmasq-base",
    "dhcpd": "isc-dhcp-server",
    "xinetd": "xinetd (it conflicts with openbsd-inetd; .ci/run extracts its binary instead)",
}

# Searched in this order; Debian keeps daemons in sbin, outside a user's PATH.
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"]
)

# Debian's scgi_params minus its comments; used when the system has none.
SCGI_PARAMS = """\
scgi_param  REQUEST_METHOD     $request_method;
scgi_param  REQUEST_URI        $request_uri;
scgi_param  QUERY_STRING       $query_string;
scgi_param  CONTENT_TYPE       $content_type;
scgi_param  DOCUMENT_URI       $document_uri;
scgi_param  DOCUMENT_ROOT      $document_root;
scgi_param  SCGI               1;
scgi_param  SERVER_PROTOCOL    $server_protocol;
scgi_param  REQUEST_SCHEME     $scheme;
scgi_param  HTTPS              $https if_not_empty;
scgi_param  REMOTE_ADDR        $remote_addr;
scgi_param  REMOTE_PORT        $remote_port;
scgi_param  SERVER_PORT        $server_port;
scgi_param  SERVER_NAME        $server_name;
scgi_param  HTTP_HOST          $host;
"""

# Fields of one access log line, tab-separated (see nginx_conf()).
ACCESS_FIELDS = ("status", "method", "uri", "user_agent", "bytes", "upstream")


class MissingProgram(RuntimeError):
    """A program the stack needs is not installed; the message says how to get it."""


class StartError(RuntimeError):
    """A server did not come up; the message carries the end of its log."""


def find_program(name: str) -> str:
    """Return the path of `name`, or raise MissingProgram naming the package."""
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        package = PACKAGES.get(name, name)
        raise MissingProgram(
            f"{name} not found: apt-get install --no-install-recommends {package}"
        )
    return path


def missing_programs(names: Iterable[str]) -> list[str]:
    """Messages for each program of `names` that is not installed."""
    missing = []
    for name in names:
        try:
            find_program(name)
        except MissingProgram as error:
            missing.append(str(error))
    return missing


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(ready: Callable[[], bool], *, timeout: float, what: str,
               process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Poll `ready` until it holds; fail early when `process` exits."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None:
            raise StartError(f"{what}: exited with {process.returncode}\n"
                             + (tail(log) if log else ""))
        if time.monotonic() > deadline:
            raise StartError(f"{what}: not ready after {timeout} s\n"
                             + (tail(log) if log else ""))
        time.sleep(0.02)


def unix_listening(path: str | Path) -> bool:
    """True when a stream socket listens on `path`, read from /proc/net/unix.

    Connecting would be simpler, but to inetd a connection is a request: it
    would spawn a handler just to be hung up on.
    """
    path = str(path)
    try:
        with open("/proc/net/unix") as table:
            next(table)
            for line in table:
                fields = line.split()
                # Num RefCount Protocol Flags Type St Inode [Path]
                if len(fields) >= 8 and fields[7] == path and int(fields[3], 16) & 0x10000:
                    return True
    except FileNotFoundError:
        return os.path.exists(path)  # no procfs: the socket file is the best sign
    return False


def tcp_accepting(port: int) -> bool:
    """True when 127.0.0.1:port accepts a connection (nginx: harmless to probe)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def children_of(pid: int) -> list[int]:
    """Pids whose parent is `pid`, from /proc (zombies included)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                for line in status:
                    if line.startswith("PPid:"):
                        if int(line.split()[1]) == pid:
                            found.append(int(entry))
                        break
        except OSError:
            continue
    return found


def signal_pids(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Wait for `pids` to disappear (they are not our children); return the survivors."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if os.path.exists(f"/proc/{pid}")
                 and not _is_zombie(pid)]
        if alive:
            time.sleep(0.02)
    return alive


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


@dataclass
class Server:
    """One foreground server process that we started and will stop by pid."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=self.env, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        return children_of(self.pid) if self.running() else []

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server's children (by pid: inetd setsid's them), then the server."""
        if self.process is None:
            return
        if self.running():
            handlers = self.children()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            signal_pids(handlers, signal.SIGTERM)
            signal_pids(wait_gone(handlers, timeout), signal.SIGKILL)
        self.process = None


def _system_scgi_params() -> str:
    for candidate in ("/etc/nginx/scgi_params", "/usr/local/etc/nginx/scgi_params"):
        try:
            return Path(candidate).read_text()
        except OSError:
            continue
    return SCGI_PARAMS


def rewrite(text: str, paths: dict[str, str]) -> str:
    """Replace each system path of the examples by its private counterpart.

    Longest first, so /srv/scgi/cgi-bin/ wins over /srv/scgi/.
    """
    for old in sorted(paths, key=len, reverse=True):
        text = text.replace(old, paths[old])
    return text


def example_server_block(port: int, paths: dict[str, str], extra: str = "") -> str:
    """examples/nginx.conf with private paths, on 127.0.0.1:port, plus `extra` locations."""
    text = rewrite((EXAMPLES / "nginx.conf").read_text(), paths)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{port};")
    text = text.replace("listen [::]:80;\n", "")
    head, brace, _ = text.rpartition("}")
    return head + extra + brace + "\n"


def nginx_conf(prefix: Path, server_block: str) -> str:
    """A whole nginx.conf whose pid, logs and temp paths all live under `prefix`."""
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"    {kind}_temp_path {prefix}/temp/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""\
# Written by examples/stack/stack.py; everything lives under {prefix}.
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    log_format fields '$status\\t$request_method\\t$request_uri\\t$http_user_agent\\t$body_bytes_sent\\t$upstream_addr';
    access_log {prefix}/access.log fields;
{temp}    default_type application/octet-stream;
    types {{ text/plain txt; text/html html; }}
{server_block}}}
"""


def write_admin_access(paths: dict[str, str], user: str, password: str) -> None:
    """The files the admin location of examples/nginx.conf and inetd.conf.example
    name: a fresh shared secret, once for nginx (an included `scgi_param`) and
    once for the app (--secret-file), and an htpasswd file with one user.

    The password is stored as nginx's salted SHA-1 (`{SSHA}`), which needs no
    htpasswd program; docs/bootmenu.md shows `htpasswd -B` for real use.
    """
    import base64
    import hashlib

    etc = Path(rewrite("/etc/scgi/", paths))
    etc.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(24).hex()
    salt = os.urandom(8)
    digest = base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()
    for name, text in (("admin.secret", secret + "\n"),
                       ("admin-secret.conf", f'scgi_param BOOTMENU_ADMIN_SECRET "{secret}";\n'),
                       ("admin.htpasswd", f"{user}:{{SSHA}}{digest}\n")):
        fd = os.open(etc / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w") as file:
            file.write(text)


class Nginx(Server):
    """nginx with a private prefix: `nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'`."""

    def __init__(self, prefix: Path, server_block: str, port: int):
        self.prefix = prefix
        self.port = port
        (prefix / "temp").mkdir(parents=True, exist_ok=True)
        (prefix / "scgi_params").write_text(_system_scgi_params())
        (prefix / "nginx.conf").write_text(nginx_conf(prefix, server_block))
        self.access_log = prefix / "access.log"
        self.error_log = prefix / "error.log"
        super().__init__("nginx", [
            find_program("nginx"), "-p", str(prefix), "-e", str(self.error_log),
            "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"], prefix / "nginx.out")

    def start(self, timeout: float = 10.0) -> None:
        super().start()
        wait_until(lambda: tcp_accepting(self.port), timeout=timeout, what="nginx",
                   process=self.process, log=self.error_log)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def access(self) -> list[dict[str, str]]:
        """The access log so far, one dict per request (ACCESS_FIELDS)."""
        try:
            lines = self.access_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return [dict(zip(ACCESS_FIELDS, line.split("\t"))) for line in lines]

    def wait_access(self, match: Callable[[dict[str, str]], bool], count: int = 1,
                    timeout: float = 5.0, since: int = 0) -> list[dict[str, str]]:
        """Access-log entries from line `since` for which `match` holds, once
        there are `count` of them.

        nginx writes the line after the response has gone out: poll for it.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [entry for entry in self.access()[since:] if match(entry)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def log_lines(self, since: int = 0) -> list[str]:
        """Error-log lines of every level, from byte offset `since`."""
        with open(self.error_log, "rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace").splitlines()

    def errors(self, since: int = 0) -> list[str]:
        """Error-log lines at level warn or worse, from byte offset `since`."""
        return [line for line in self.log_lines(since)
                if any(f"[{level}]" in line for level in ("warn", "error", "crit", "alert", "emerg"))]

    def error_offset(self) -> int:
        return self.error_log.stat().st_size if self.error_log.exists() else 0


@dataclass
class Service:
    """One super-server entry: a unix socket and the program serving it.

    `argv` is the program followed by its arguments (argv[0] included, as
    inetd.conf writes it: `program argv0 args...`). `wait` gives the program
    the listening socket instead of a connection (resident mode).
    """

    socket: str
    argv: list[str]
    wait: bool = False

    def inetd_line(self, user: str, max_per_minute: int = 100000) -> str:
        # nowait.N: inetd's default of 256 spawns a minute would silently
        # disable the service for ten minutes under load.
        mode = "wait" if self.wait else f"nowait.{max_per_minute}"
        return " ".join([self.socket, "stream", "unix", mode, user, *self.argv])


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def example_inetd_services(paths: dict[str, str], python: str) -> list[Service]:
    """The active Debian/OpenBSD lines of inetd.conf.example, made private.

    An installed script (`/usr/local/bin/scgi-wsgi scgi-wsgi ARGS`) becomes
    the interpreter running the checkout's script (`PYTHON scgi-wsgi
    REPO/bin/scgi-wsgi ARGS`): the real binary, never a shell wrapper.
    """
    services = []
    for line in (REPO / "inetd.conf.example").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = rewrite(line, paths).split()
        sock, _stream, _unix, mode, _user, program, *args = fields
        if program.startswith("/usr/local/bin/scgi-"):
            name = Path(program).name
            args = [args[0], str(REPO / "bin" / name), *args[1:]]
            program = python
        services.append(Service(sock, [program, *args], wait=mode == "wait"))
    return services


class Inetd(Server):
    """openbsd-inetd in the foreground (-i), environment kept (-E), private config."""

    def __init__(self, root: Path, services: list[Service], env: dict[str, str] | None = None):
        self.services = services
        conf = root / "inetd.conf"
        conf.write_text("".join(s.inetd_line(current_user()) + "\n" for s in services))
        super().__init__("inetd", [find_program("inetd"), "-i", "-E", str(conf)],
                         root / "inetd.log", env)

    def start(self, timeout: float = 10.0) -> None:
        super().start()
        for service in self.services:
            wait_until(lambda: unix_listening(service.socket), timeout=timeout,
                       what=f"inetd on {service.socket}", process=self.process, log=self.log)


class SocketActivate(Server):
    """`systemd-socket-activate` on one unix socket; --accept --inetd for one-shot.

    Without `accept` the program gets the listening socket as fd 3 with
    LISTEN_FDS=1 (systemd Accept=no, resident mode).
    """

    def __init__(self, root: Path, service: Service, *, accept: bool,
                 env: dict[str, str] | None = None, pass_env: Sequence[str] = ("PYTHONPATH", "PATH")):
        self.service = service
        argv = [find_program("systemd-socket-activate"), "-l", service.socket]
        if accept:
            argv += ["--accept", "--inetd"]
        for name in pass_env:
            argv += ["-E", name]
        argv += self._program(service)
        super().__init__("systemd-socket-activate", argv,
                         root / f"activate-{Path(service.socket).stem}.log", env)

    @staticmethod
    def _program(service: Service) -> list[str]:
        # systemd-socket-activate takes `program args...` and sets argv[0]
        # to the program path itself; inetd's separate argv0 is dropped.
        return [service.argv[0], *service.argv[2:]]

    def start(self, timeout: float = 10.0) -> None:
        super().start()
        wait_until(lambda: unix_listening(self.service.socket), timeout=timeout,
                   what=f"systemd-socket-activate on {self.service.socket}",
                   process=self.process, log=self.log)
        # It creates the socket 0644 whatever the umask; nginx workers
        # running as another user need write permission to connect.
        os.chmod(self.service.socket, 0o666)


def systemd_unit_service(unit_dir: Path, name: str, paths: dict[str, str],
                         python: str) -> Service:
    """The socket and ExecStart of examples/systemd/NAME.socket + NAME[@].service."""
    socket_text = rewrite((unit_dir / f"{name}.socket").read_text(), paths)
    listen = _unit_value(socket_text, "ListenStream")
    accept = _unit_value(socket_text, "Accept", "no") == "yes"
    service_file = unit_dir / (f"{name}@.service" if accept else f"{name}.service")
    exec_start = _unit_value(rewrite(service_file.read_text(), paths), "ExecStart").split()
    program, *args = exec_start
    if program.startswith("/usr/local/bin/scgi-"):
        args = [str(REPO / "bin" / Path(program).name), *args]
        program = python
    return Service(listen, [program, Path(program).name, *args], wait=not accept)


def _unit_value(text: str, key: str, default: str | None = None) -> str:
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    if default is None:
        raise KeyError(f"no {key}= in unit")
    return default
