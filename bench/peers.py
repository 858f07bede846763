"""bench/run: scgi_inetd against the peers a user would pick instead, in one run.

One nginx on 127.0.0.1 and one openbsd-inetd serve every path side by side
(examples/stack/stack.py starts them); fcgiwrap, flup's SCGI server, the
scgi package's server, uWSGI and aioscgi (ASGI) sit behind the same nginx.
wrk measures each path for a bounded time; the rows are interleaved within
each repeat, so a noisy neighbour hits every row alike, and each figure is
printed beside its comparison as a ratio of medians from the same run. Then the cost curves
(bench/curves.py): concurrency, header size, body size, modules imported;
--charts DIR draws them as PNGs (bench/charts.py, with matplotlib).

    bench/run [--quick] [--python PATH] [--seconds N] [--repeats N]
              [--connections N] [--stream-mib N] [--curve-seconds S] [--charts DIR]
              [--peers-venv DIR] [--no-install] [--keep]
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "examples" / "stack"))
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import stack  # noqa: E402
import curves  # noqa: E402
from cgi_common import REPO, request as cgi_request  # noqa: E402
from measure import Figure, fetch, ratio, run_wrk, spawn_rate, tree_cpu_seconds, wrk_command  # noqa: E402
import peer_apps  # noqa: E402
import streaming  # noqa: E402
from wsgi_bulk import APP as BULK_APP  # noqa: E402
from scgi_inetd.client import build_params  # noqa: E402
from scgi_inetd.protocol import encode_request  # noqa: E402

USAGE = __doc__.split("\n\n")[-1].strip()
BIN = REPO / "bin"
BOOT_QUERY = "mac=52:54:00:12:34:56&uuid=12345678-1234-5678-9abc-def012345678"

# Streaming locations: nginx passes the body and the response through as
# they come instead of spooling 1 GiB to its temp files; the buffers are
# sized so that each read and write moves a useful amount.
STREAM_DIRECTIVES = """\
        scgi_request_buffering off;
        scgi_buffering off;
        scgi_buffer_size 256k;
        scgi_buffers 4 256k;
        client_body_buffer_size 256k;
        scgi_read_timeout 600s;
        scgi_send_timeout 600s;"""


# A bench-only prototype of a proposed library change (bench/proto_*.py), and the previous
# resident scgi-run loop (bench/forking_cgi_resident.py), measured in the same run.
PROTO_EXIT = "prototype: scgi-wsgi hello, os._exit at the end"
FORKING_RUN = "previous: scgi-run resident, a forked interpreter per connection"

# scgi-wsgi resident with a pool of pre-forked workers (--requests-per-child).
REQUESTS_PER_CHILD = 1000
POOL = f"scgi-wsgi resident --requests-per-child {REQUESTS_PER_CHILD} hello"

# aioscgi serves peer_apps.HELLO_ASGI, the hello app's ASGI twin, in one asyncio process.
AIOSCGI = "aioscgi (ASGI) server"

# The rows of the concurrency curve: every resident mode of ours, then the peers.
CONCURRENCY_ROWS = ("scgi-wsgi resident hello", POOL, "scgi-run resident + hello (C)", "scgi-run resident + hello.sh",
                    "uWSGI --scgi-socket", "flup SCGI server", "scgi package server", AIOSCGI,
                    "fcgiwrap + hello (C)", "fcgiwrap + hello.sh")

# The body-size curve's paths: one-shot, nginx spooling the body (no STREAM_DIRECTIVES).
BODY_PATHS = (("scgi-wsgi (the app reads wsgi.input)", "/stream/wsgi/spooled", "{size}"),
              ("scgi-run + C discard (reads stdin)", "/stream/scgi-run/spooled", "done"))


@dataclass
class Options:
    quick: bool = False
    python: str = field(default_factory=peer_apps.default_python)
    seconds: int = 5
    repeats: int = 3
    connections: int = 4
    stream_mib: int = 1024
    stream_repeats: int = 3
    curve_seconds: float = 2.0
    charts: Path | None = None
    peers_venv: Path = Path(tempfile.gettempdir()) / "scgi_inetd-bench" / "peers"
    install: bool = True
    keep: bool = False


def parse(argv: list[str]) -> Options:
    options = Options()
    numbers = {"--seconds": "seconds", "--repeats": "repeats", "--connections": "connections",
               "--stream-mib": "stream_mib"}
    explicit = set()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--quick":
            options.quick = True
        elif arg == "--no-install":
            options.install = False
        elif arg == "--keep":
            options.keep = True
        elif arg in numbers and args and args[0].isdigit():
            setattr(options, numbers[arg], int(args.pop(0)))
            explicit.add(numbers[arg])
        elif arg == "--python" and args:
            options.python = args.pop(0)
        elif arg == "--peers-venv" and args:
            options.peers_venv = Path(args.pop(0))
        elif arg == "--charts" and args:
            options.charts = Path(args.pop(0))
        elif arg == "--curve-seconds" and args and args[0].replace(".", "", 1).isdigit():
            options.curve_seconds = float(args.pop(0))
            explicit.add("curve_seconds")
        else:
            raise SystemExit(f"unknown argument {arg!r}\nusage: {USAGE}")
    if options.quick:
        # Under a minute: one short repeat of each row, 64 MiB streams, short
        # curves, and no peer installation (peers not installed already are skipped).
        quick = {"seconds": 1, "repeats": 1, "stream_mib": 64, "curve_seconds": 0.1}
        for name, value in quick.items():
            if name not in explicit:
                setattr(options, name, value)
        options.stream_repeats = 1
        options.install = False
    return options


@dataclass
class Row:
    """One path measured with wrk through nginx; `compare` names the rows it is set against."""

    name: str
    group: str
    path: str
    expect: bytes
    compare: list[str] = field(default_factory=list)
    targets: list[tuple[str, float]] = field(default_factory=list)
    figure: Figure = field(default_factory=Figure)
    p50: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    nginx_cpu_ms: list[float] = field(default_factory=list)
    skipped: str = ""

    @property
    def server(self) -> str:
        """Whose process tree serves this row (its CPU time is charged to the row)."""
        for prefix, server in (("fcgiwrap", "fcgiwrap"), ("flup", "flup"), ("scgi package", "scgi"),
                               ("uWSGI", "uwsgi"), ("aioscgi", "aioscgi"), (FORKING_RUN, "forking-run")):
            if self.name.startswith(prefix):
                return server
        return "inetd"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def location(path: str, socket: str, *, kind: str = "scgi", script: str | None = None,
             prefix: bool = False, extra: str = "") -> str:
    lines = [f"    location {'' if prefix else '= '}{path} {{", f"        include {kind}_params;"]
    if script:
        lines.append(f"        {kind}_param SCRIPT_FILENAME {script};")
        lines.append(f"        {kind}_param SCRIPT_NAME {path};")
    if extra:
        lines.append(extra)
    lines.append(f"        {kind}_pass unix:{socket};")
    lines.append("    }\n")
    return "\n".join(lines)


class Bench:
    """One run: the work directory, the servers started, the rows and what was measured."""

    def __init__(self, options: Options, root: Path):
        self.options = options
        self.root = root
        self.run_dir = root / "run"
        self.cgi = root / "cgi-bin"
        self.run_dir.mkdir()
        self.servers: list[stack.Server] = []
        self.commands: list[str] = []
        self.rows: list[Row] = []
        self.direct: dict[str, Figure] = {}
        self.streams: dict[str, tuple[Figure, dict[str, int]]] = {}
        self.shim_kib = 0
        self.pids: dict[str, int] = {}
        self.failed: list[str] = []
        self.sections: list[curves.Section] = []
        self.charts_note = ""

    def sock(self, name: str) -> str:
        return str(self.run_dir / f"{name}.sock")


    def prepare(self) -> None:
        options = self.options
        log(f"work directory {self.root}")
        peer_apps.compile_package(options.python)
        self.python = peer_apps.run_venv(self.root, options.python)
        self.bulk_size = options.stream_mib << 20
        self.bulk = streaming.bulk_file(self.root / "bulk.bin", self.bulk_size)
        peer_apps.cgi_programs(self.cgi, self.python, self.bulk, self.bulk_size)
        (self.root / "bulk_app.py").write_text(BULK_APP)
        self.has_bootmenu = self.bootmenu_config()
        if options.install:
            self.peers = peer_apps.install_peers(options.peers_venv, options.python, log)
        else:
            self.peers = peer_apps.installed_peers(options.peers_venv)

    def ours(self, script: str, *args: str) -> list[str]:
        """A front-end as README ("Speed") has inetd start it: the interpreter, -I -S, the checkout's script.

        Without site, the script puts the checkout (its PREFIX) on sys.path
        itself. argv[0] is the interpreter's own path, as inetd lines give it.
        """
        return [self.python, self.python, "-I", "-S", str(BIN / script), *args]

    def services(self) -> list[stack.Service]:
        py, cgi = self.python, f"{self.cgi}/"
        hello = f"{peer_apps.HELLO_APP}:application"
        workers = str(self.options.connections)
        services = [
            stack.Service(self.sock("floor-python"), [py, py, "-I", "-c", "pass"]),
            stack.Service(self.sock("floor-sh"), ["/bin/sh", "sh", "-c", "true"]),
            stack.Service(self.sock("wsgi"), self.ours("scgi-wsgi", hello)),
            stack.Service(self.sock("run"), self.ours("scgi-run", cgi)),
            stack.Service(self.sock("run-fix"), self.ours("scgi-run", "--fix-status", cgi)),
            stack.Service(self.sock("wsgi-bulk"), self.ours("scgi-wsgi", "--script-name", "/stream/wsgi",
                                                                  f"{self.root}/bulk_app.py:application")),
            stack.Service(self.sock("wsgi-resident"), self.ours("scgi-wsgi", hello), wait=True),
            # As many workers as the peers get (--connections): uWSGI --processes, the scgi package's workers.
            stack.Service(self.sock("wsgi-prefork"), self.ours("scgi-wsgi", "--max-children", workers,
                                                               "--requests-per-child", str(REQUESTS_PER_CHILD),
                                                               hello), wait=True),
            stack.Service(self.sock("proto-exit"), [py, py, "-I", str(BENCH / "proto_exit_wsgi.py"), hello]),
            stack.Service(self.sock("run-resident"), self.ours("scgi-run", cgi), wait=True),
        ]
        if self.has_bootmenu:
            services.append(stack.Service(self.sock("boot"), self.ours("scgi-bootmenu", str(self.root / "bootmenu.toml"))))
        return services

    def bootmenu_config(self) -> bool:
        """examples/bootmenu.toml with a private state database, initialised; False when absent."""
        example = REPO / "examples" / "bootmenu.toml"
        if not (BIN / "scgi-bootmenu").exists() or not example.exists():
            return False
        config = self.root / "bootmenu.toml"
        if not config.exists():
            config.write_text(example.read_text().replace("/var/lib/scgi-bootmenu/state.sqlite",
                                                          str(self.root / "state.sqlite")))
            subprocess.run([self.python, "-I", str(BIN / "scgi-bootmenu"), str(config), "init"],
                           check=True, capture_output=True)
        return True

    def define_rows(self) -> None:
        add = self.rows.append
        add(Row("floor: python -I -c pass, via nginx+inetd (502)", "floor", "/floor/python", b""))
        add(Row("floor: sh -c true, via nginx+inetd (502)", "floor", "/floor/sh", b""))
        add(Row("scgi-wsgi hello", "one-shot", "/wsgi", b"Hello, world!",
                ["floor: python -I -c pass, via nginx+inetd (502)", "fcgiwrap + wsgiref CGIHandler hello"],
                [("floor: python -I -c pass, via nginx+inetd (502)", 0.95)]))
        add(Row(PROTO_EXIT, "one-shot", "/proto/wsgi-exit", b"Hello, world!",
                ["floor: python -I -c pass, via nginx+inetd (502)", "scgi-wsgi hello"]))
        add(Row("fcgiwrap + wsgiref CGIHandler hello", "one-shot", "/fcgiwrap/wsgiref.cgi", b"Hello, world!"))
        add(Row("scgi-run + hello.sh", "one-shot", "/scgi-run/hello.sh", b"Hello from sh",
                ["fcgiwrap + hello.sh"]))
        add(Row("fcgiwrap + hello.sh", "one-shot", "/fcgiwrap/hello.sh", b"Hello from sh"))
        add(Row("scgi-run + hello (C)", "one-shot", "/scgi-run/hello", b"hello", ["fcgiwrap + hello (C)"]))
        add(Row("fcgiwrap + hello (C)", "one-shot", "/fcgiwrap/hello", b"hello"))
        boot = Row("scgi-bootmenu menu (iPXE, known MAC)", "one-shot", f"/boot/boot.ipxe?{BOOT_QUERY}", b"#!ipxe",
                   ["floor: python -I -c pass, via nginx+inetd (502)", "scgi-wsgi hello"])
        if not self.has_bootmenu:
            boot.skipped = "bin/scgi-bootmenu or examples/bootmenu.toml not in this checkout"
        add(boot)
        add(Row("scgi-run resident + hello.sh", "resident", "/scgi-run-resident/hello.sh", b"Hello from sh",
                ["fcgiwrap + hello.sh", "scgi-run + hello.sh", f"{FORKING_RUN} + hello.sh"],
                [("fcgiwrap + hello.sh", 1.0)]))
        add(Row("scgi-run resident + hello (C)", "resident", "/scgi-run-resident/hello", b"hello",
                ["fcgiwrap + hello (C)", "scgi-run + hello (C)", f"{FORKING_RUN} + hello (C)"],
                [("fcgiwrap + hello (C)", 1.0)]))
        add(Row("scgi-wsgi resident hello", "resident", "/wsgi-resident", b"Hello, world!",
                ["flup SCGI server", "uWSGI --scgi-socket", "scgi package server", AIOSCGI, "scgi-wsgi hello"],
                [("flup SCGI server", 1.5)]))
        add(Row(POOL, "resident", "/wsgi-prefork", b"Hello, world!",
                ["flup SCGI server", "uWSGI --scgi-socket", "scgi package server", AIOSCGI,
                 "scgi-wsgi resident hello"],
                [("flup SCGI server", 1.5), (AIOSCGI, 1.2)]))
        add(Row(f"{FORKING_RUN} + hello.sh", "resident", "/forking-run/hello.sh", b"Hello from sh",
                ["fcgiwrap + hello.sh"]))
        add(Row(f"{FORKING_RUN} + hello (C)", "resident", "/forking-run/hello", b"hello",
                ["fcgiwrap + hello (C)"]))
        for name, package, path in (("flup SCGI server", "flup", "/flup"),
                                    ("scgi package server", "scgi", "/scgi-package"),
                                    ("uWSGI --scgi-socket", "uwsgi", "/uwsgi"),
                                    (AIOSCGI, "aioscgi", "/aioscgi")):
            row = Row(name, "resident", path, b"Hello, world!")
            if package not in self.peers:
                row.skipped = (f"{package} not installed in {self.options.peers_venv}"
                               + (" (--quick installs nothing; a full run does)" if self.options.quick else ""))
            add(row)

    def nginx_block(self, port: int) -> str:
        cgi, fcgi = str(self.cgi), self.sock("fcgiwrap")
        parts = [f"server {{\n    listen 127.0.0.1:{port};\n    access_log off;\n    client_max_body_size 0;\n"]
        parts.append(location("/floor/python", self.sock("floor-python")))
        parts.append(location("/floor/sh", self.sock("floor-sh")))
        parts.append(location("/wsgi", self.sock("wsgi")))
        parts.append(location("/wsgi-resident", self.sock("wsgi-resident")))
        parts.append(location("/wsgi-prefork", self.sock("wsgi-prefork")))
        for program in ("hello.sh", "hello", "wsgiref.cgi"):
            parts.append(location(f"/fcgiwrap/{program}", fcgi, kind="fastcgi", script=f"{cgi}/{program}"))
        for program in ("hello.sh", "hello"):
            parts.append(location(f"/scgi-run/{program}", self.sock("run"), script=f"{cgi}/{program}"))
            parts.append(location(f"/scgi-run-resident/{program}", self.sock("run-resident"), script=f"{cgi}/{program}"))
        parts.append("    location /boot/ {\n        include scgi_params;\n"
                     "        fastcgi_split_path_info ^(/boot)(/.*)$;\n"
                     "        scgi_param SCRIPT_NAME $fastcgi_script_name;\n"
                     "        scgi_param PATH_INFO $fastcgi_path_info;\n"
                     f"        scgi_pass unix:{self.sock('boot')};\n    }}\n")
        parts.append(location("/proto/wsgi-exit", self.sock("proto-exit")))
        for program in ("hello.sh", "hello"):
            parts.append(location(f"/forking-run/{program}", self.sock("forking-run"), script=f"{cgi}/{program}"))
        parts.append(location("/flup", self.sock("flup")))
        parts.append(location("/scgi-package", self.sock("scgi-package")))
        parts.append(location("/uwsgi", self.sock("uwsgi")))
        parts.append(location("/aioscgi", self.sock("aioscgi")))
        parts.append(location("/stream/wsgi/spooled", self.sock("wsgi-bulk")))
        parts.append(location("/stream/scgi-run/spooled", self.sock("run"), script=f"{cgi}/discard"))
        for name, sock, script in (("wsgi/download", "wsgi-bulk", None), ("wsgi/upload", "wsgi-bulk", None),
                                   ("scgi-run/download", "run", f"{cgi}/download.sh"),
                                   ("scgi-run/upload", "run", f"{cgi}/discard"),
                                   ("scgi-run-fix-status/download", "run-fix", f"{cgi}/download.sh")):
            parts.append(location(f"/stream/{name}", self.sock(sock), script=script, extra=STREAM_DIRECTIVES))
        parts.append("}\n")
        return "".join(parts)

    def start(self) -> None:
        services = self.services()
        env = {"PATH": "/usr/bin:/bin", "BULK_FILE": str(self.bulk)}
        inetd = stack.Inetd(self.root, services, env=env)
        self.commands.append("inetd -i -E inetd.conf, inetd.conf:\n" + (self.root / "inetd.conf").read_text())
        inetd.start()
        self.servers.append(inetd)
        self.pids["inetd"] = inetd.pid
        self.inetd = inetd
        workers = str(self.options.connections)
        if shutil.which("fcgiwrap", path=stack.SEARCH_PATH):
            self.background("fcgiwrap", [stack.find_program("fcgiwrap"), "-c", workers, "-s",
                                         f"unix:{self.sock('fcgiwrap')}"], self.sock("fcgiwrap"))
        else:
            for row in self.rows:
                if row.name.startswith("fcgiwrap"):
                    row.skipped = "fcgiwrap not installed (apt-get install fcgiwrap)"
        self.background("forking-run", [self.python, "-I", str(BENCH / "forking_cgi_resident.py"),
                                        self.sock("forking-run"), f"{self.cgi}/"], self.sock("forking-run"))
        venv_python = str(peer_apps.peers_venv_python(self.options.peers_venv))
        app_dir = str(peer_apps.HELLO_APP.parent)
        if "flup" in self.peers:
            script = peer_apps.write_executable(self.root / "flup_server.py", peer_apps.FLUP_SERVER.format(
                app_dir=app_dir, socket=self.sock("flup")))
            self.background("flup", [venv_python, "-I", str(script)], self.sock("flup"))
        if "scgi" in self.peers:
            script = peer_apps.write_executable(self.root / "scgi_server.py", peer_apps.SCGI_SERVER.format(
                app_dir=app_dir, socket=self.sock("scgi-package"), workers=workers))
            self.background("scgi", [venv_python, "-I", str(script)], self.sock("scgi-package"))
        if "uwsgi" in self.peers:
            uwsgi = str(self.options.peers_venv / "bin" / "uwsgi")
            self.background("uwsgi", [uwsgi, "--scgi-socket", self.sock("uwsgi"), "--chmod-socket=666",
                                      "--wsgi-file", str(peer_apps.HELLO_APP), "--master", "--processes", workers,
                                      "--disable-logging", "--die-on-term", "--need-app"], self.sock("uwsgi"))
        if "aioscgi" in self.peers:
            (self.root / "hello_asgi.py").write_text(peer_apps.HELLO_ASGI)
            script = peer_apps.write_executable(self.root / "aioscgi_server.py", peer_apps.AIOSCGI_SERVER.format(
                app_dir=str(self.root), socket=self.sock("aioscgi")))
            self.background("aioscgi", [venv_python, "-I", str(script)], self.sock("aioscgi"))
        (self.root / "nginx").mkdir()
        for name in ("fastcgi_params",):
            system = Path("/etc/nginx") / name
            (self.root / "nginx" / name).write_text(system.read_text() if system.exists() else "")
        port = stack.free_port()
        nginx = stack.Nginx(self.root / "nginx", self.nginx_block(port), port)
        self.commands.append(f"nginx -p {self.root}/nginx -c nginx.conf -g 'daemon off;'"
                             f" (server block in {self.root}/nginx/nginx.conf)")
        nginx.start()
        self.servers.append(nginx)
        self.nginx = nginx

    def background(self, name: str, argv: list[str], socket: str) -> None:
        """Start a server and wait for its socket.

        A socket that bind_listener made is bound under a temporary name and
        renamed, and /proc/net/unix keeps the first name: wait for the path.
        """
        server = stack.Server(name, argv, self.root / f"{name}.log")
        self.commands.append(" ".join(argv))
        server.start()
        self.servers.append(server)
        self.pids[name] = server.pid
        stack.wait_until(lambda: stack.unix_listening(socket) or os.path.exists(socket), timeout=20, what=name,
                         process=server.process, log=server.log)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()


    def check_rows(self) -> None:
        """Every row answers what it should before it is timed (and warms up)."""
        for row in self.rows:
            if row.skipped:
                continue
            for _ in range(3):
                status, body = fetch(self.nginx.url(row.path))
            if row.group == "floor":
                if status != 502:
                    row.skipped = f"expected 502 from an upstream that answers nothing, got {status}"
            elif status != 200 or row.expect not in body:
                row.skipped = f"check failed: HTTP {status} {body[:80]!r}"
                log(f"{row.name}: {row.skipped}")
                self.failed.append(row.name)

    def measure(self) -> None:
        options = self.options
        self.direct = {"sh -c true, spawned directly": Figure(),
                       "python -I -c pass, spawned directly": Figure()}
        argv = {"sh -c true, spawned directly": ["/bin/sh", "-c", "true"],
                "python -I -c pass, spawned directly": [self.python, "-I", "-c", "pass"]}
        for repeat in range(options.repeats):
            log(f"repeat {repeat + 1} of {options.repeats}")
            for name, figure in self.direct.items():
                figure.values.append(spawn_rate(argv[name], seconds=options.seconds, parallel=options.connections))
            for row in self.rows:
                if row.skipped:
                    continue
                before = tree_cpu_seconds(self.pids[row.server]), tree_cpu_seconds(self.nginx.pid)
                result = run_wrk(self.nginx.url(row.path), seconds=options.seconds,
                                 connections=options.connections)
                time.sleep(0.2)  # let the last handlers be reaped, so their time is counted
                after = tree_cpu_seconds(self.pids[row.server]), tree_cpu_seconds(self.nginx.pid)
                row.cpu_ms.append((after[0] - before[0]) * 1000 / max(result.requests, 1))
                row.nginx_cpu_ms.append((after[1] - before[1]) * 1000 / max(result.requests, 1))
                bad = result.non_2xx if row.group != "floor" else 0
                if bad or result.socket_errors:
                    row.figure.notes.append(f"repeat {repeat + 1}: {bad} non-2xx, {result.socket_errors} socket errors")
                row.figure.values.append(result.requests_per_s)
                row.p50.append(result.latency_p50_ms)
        self.measure_streams()

    def measure_streams(self) -> None:
        cases = [("scgi-wsgi download (wsgi.file_wrapper)", "/stream/wsgi/download", None),
                 ("scgi-wsgi upload (wsgi.input)", "/stream/wsgi/upload", self.bulk),
                 ("scgi-run download (exec; cat)", "/stream/scgi-run/download", None),
                 ("scgi-run upload (exec; C discard)", "/stream/scgi-run/upload", self.bulk),
                 ("scgi-run --fix-status download (shim splices)", "/stream/scgi-run-fix-status/download", None)]
        for repeat in range(self.options.stream_repeats):
            for name, path, upload in cases:
                figure, peaks = self.streams.setdefault(name, (Figure(), {}))
                elapsed, seen = streaming.transfer(self.nginx.url(path), self.bulk_size, upload, self.inetd.pid)
                figure.values.append(self.bulk_size / elapsed / 1e6)
                for program, kib in seen.items():
                    peaks[program] = max(peaks.get(program, 0), kib)
        from cgi_common import request

        self.shim_kib = streaming.shim_peak_kib(self.root / "maxrss", [self.python, "-I", str(BIN / "scgi-run"), str(self.cgi / "hello")],
                                                request())


    def measure_curves(self) -> None:
        """The cost curves (bench/curves.py); --quick keeps each tiny."""
        quick, options = self.options.quick, self.options
        venv_python = str(peer_apps.peers_venv_python(options.peers_venv))
        measures = [
            lambda: curves.concurrency(
                [self.by_name(name) for name in CONCURRENCY_ROWS], self.nginx.url,
                seconds=max(1, round(options.curve_seconds)), levels=(64,) if quick else curves.CONNECTIONS,
                skip=lambda row: "--quick times our rows only, at 64" if quick and row.server != "inetd" else ""),
            lambda: curves.header_sizes(curves.python_with("sioscgi", [venv_python]) or self.python,
                                        number=1000 if quick else 10000),
            lambda: curves.body_sizes(BODY_PATHS, self.nginx.url, inetd=self.inetd.pid, nginx=self.nginx.pid,
                                      workdir=self.root, sizes=curves.BODY_SIZES[:-1] if quick else curves.BODY_SIZES,
                                      seconds=options.curve_seconds),
            lambda: curves.modules_curve(self.python, self.programs(), workdir=self.root, every=None if quick else 2,
                                         instructions=not quick and bool(shutil.which("valgrind")),
                                         runs=5 if quick else 20),
        ]
        for measure in measures:
            started = time.monotonic()
            section = measure()
            section.seconds = time.monotonic() - started
            log(f"{section.title}: {section.seconds:.0f} s")
            self.sections.append(section)

    def programs(self) -> list[tuple[str, list[str], bytes, bytes]]:
        """The one-shot programs of the modules curve: (label, argv, request, what the answer holds)."""
        py, hello = [self.python, "-I", "-S"], str(self.cgi / "hello")
        programs = [
            ("scgi-wsgi hello", [*py, str(BIN / "scgi-wsgi"), str(peer_apps.HELLO_APP)],
             encode_request(build_params("GET", "/")), b"Hello, world!"),
            ("scgi-run SCRIPT (C hello)", [*py, str(BIN / "scgi-run"), hello], cgi_request(), b"hello"),
            ("scgi-run DIR/ (C hello)", [*py, str(BIN / "scgi-run"), f"{self.cgi}/"],
             encode_request(build_params("GET", "/hello", params={"SCRIPT_FILENAME": hello, "SCRIPT_NAME": "/hello"})),
             b"hello")]
        if self.has_bootmenu:
            programs.append(("scgi-bootmenu menu (iPXE, known MAC)",
                             [*py, str(BIN / "scgi-bootmenu"), str(self.root / "bootmenu.toml")],
                             encode_request(build_params("GET", f"/boot.ipxe?{BOOT_QUERY}")), b"#!ipxe"))
        return programs

    def draw_charts(self) -> None:
        directory = self.options.charts
        if directory is None:
            return
        venv_python = str(peer_apps.peers_venv_python(self.options.peers_venv))
        python = curves.python_with("matplotlib", [venv_python, sys.executable])
        if python is None:
            self.charts_note = (f"Charts not drawn: matplotlib is not importable by {venv_python} or {sys.executable}"
                                " (a full run installs it into the peers' virtualenv).")
            return
        written = curves.draw(self.sections, directory, python, self.root)
        self.charts_note = f"Charts drawn by {python}: " + ", ".join(str(path) for path in written) + "."

    def by_name(self, name: str) -> Row | None:
        return next((row for row in self.rows if row.name == name), None)

    def report(self, started: float, load_before: str) -> str:
        options = self.options
        out = []
        w = out.append
        w(f"# bench/run {'--quick ' if options.quick else ''}results\n")
        w(f"wrk: {' '.join(wrk_command('URL', seconds=options.seconds, connections=options.connections))}; "
          f"{options.repeats} repeat(s), rows interleaved; figures are min / median / max, ratios are of medians.\n")
        w("\n## One-shot and resident: requests/s through nginx\n")
        w("CPU ms/req: CPU time (user + system) of the serving process tree (inetd and its handlers, or the"
          " peer server) per request, and of nginx; machine load stretches wall time, not these. fcgiwrap:"
          " n/a, its CGI children are reaped without their CPU time reaching it.\n")
        w("| path | requests/s (min / median / max) | p50 ms | CPU ms/req server, nginx | against | ratio |")
        w("| --- | --- | --- | --- | --- | --- |")
        for name, figure in self.direct.items():
            w(f"| floor: {name} (no nginx, {options.connections} at a time) | {figure.spread()} | | | | |")
        for row in self.rows:
            if row.skipped:
                w(f"| {row.name} | skipped: {row.skipped} | | | | |")
                continue
            server_cpu = "n/a" if row.server == "fcgiwrap" else f"{middle(row.cpu_ms):.2f}"
            cpu = f"{server_cpu}, {middle(row.nginx_cpu_ms):.2f}"
            against = [self.by_name(name) for name in row.compare]
            against = [other for other in against if other and not other.skipped]
            first = f"{against[0].name} | {ratio(row.figure, against[0].figure)}" if against else " | "
            w(f"| {row.name} | {row.figure.spread()} | {middle(row.p50):.1f} | {cpu} | {first} |")
            for other in against[1:]:
                w(f"| | | | | {other.name} | {ratio(row.figure, other.figure)} |")
            if row.name == "scgi-wsgi hello":
                direct = self.direct["python -I -c pass, spawned directly"]
                w(f"| | | | | floor: python -I -c pass, spawned directly | {ratio(row.figure, direct)} |")
            for note in row.figure.notes:
                w(f"| | {note} | | | | |")
        w("\n## Streaming through nginx (curl), MB/s and peak RSS of the handler\n")
        w(f"{options.stream_mib} MiB each way, {options.stream_repeats} repeat(s); MB = 10^6 bytes; "
          "peak RSS = largest VmHWM polled from /proc every 2 ms, per program the handler pid ran.\n")
        w("| transfer | MB/s (min / median / max) | peak RSS MB |")
        w("| --- | --- | --- |")
        for name, (figure, peaks) in self.streams.items():
            rss = ", ".join(f"{program} {kib * 1024 / 1e6:.1f}" for program, kib in sorted(peaks.items()))
            w(f"| {name} | {figure.spread()} | {rss} |")
        w(f"| scgi-run shim + hello (C), one request run directly (ru_maxrss from wait4, covers the shim before execve) | "
          f"| {self.shim_kib * 1024 / 1e6:.1f} |")
        w("\n## Cost as work grows\n")
        for section in self.sections:
            w(f"### {section.title}\n")
            w("\n".join(section.lines) + f"\n\nMeasured in {section.seconds:.0f} s.\n")
        if self.charts_note:
            w(self.charts_note + "\n")
        w("\n## Targets (ratios of medians, this run)\n")
        w(self.targets())
        w("\n## Machine, versions, commands\n")
        w(machine(load_before, self.python, self.peers, options))
        w("\n```\n" + "\n".join(self.commands) + "\n```")
        w(f"\nNotes: the package's .pyc were compiled first (python -m compileall); PYTHONDONTWRITEBYTECODE="
          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} in this environment. "
          f"Total time {time.monotonic() - started:.0f} s.")
        return "\n".join(out) + "\n"

    def targets(self) -> str:
        lines = []
        for row in self.rows:
            for name, factor in [] if row.skipped else row.targets:
                other = self.by_name(name)
                if other is None or other.skipped:
                    lines.append(f"- {row.name} >= {factor}x {name}: not measured ({other and other.skipped})")
                    continue
                value = row.figure.median / other.figure.median
                verdict = "met" if value >= factor else "MISSED"
                by_cpu = ""
                if other.server != "fcgiwrap" and row.cpu_ms and other.cpu_ms:
                    by_cpu = f" (by CPU per request: {middle(other.cpu_ms) / middle(row.cpu_ms):.2f}x)"
                lines.append(f"- {row.name} >= {factor}x {name}: {value:.2f}x{by_cpu}, {verdict}")
        for name, (figure, peaks) in self.streams.items():
            if "fix-status" in name:
                continue
            python_mb = peaks.get("python3", peaks.get("python3.11", 0)) * 1024 / 1e6
            ours = max(python_mb, self.shim_kib * 1024 / 1e6 if "scgi-run" in name else 0)
            ok = figure.median >= 500 and ours <= 40
            lines.append(f"- {name} >= 500 MB/s with our process <= 40 MB: {figure.median:.0f} MB/s, "
                         f"{ours:.1f} MB, {'met' if ok else 'MISSED'}")
        return "\n".join(lines)


def middle(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else float("nan")


def first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]


def deb_version(package: str) -> str:
    return first_line(["dpkg-query", "-W", "-f=${Version}", package])


def machine(load_before: str, python: str, peers: dict[str, str], options: Options) -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        memory = next(line.split()[1] for line in info if line.startswith("MemTotal"))
    return "\n".join([
        f"- machine: {platform.system()} {platform.release()} {platform.machine()}, {cpu}, "
        f"{os.cpu_count()} CPUs, {int(memory) // 1024} MiB",
        f"- load average before: {load_before}; after: {loadavg()}",
        f"- Python {peer_apps.python_version(python)}: {options.python} (a virtualenv of it with this checkout"
        " linked in, so `-I` works; handlers and floors start the same interpreter)",
        f"- nginx: {first_line(['nginx', '-v'])}; openbsd-inetd {deb_version('openbsd-inetd')}; "
        f"fcgiwrap {deb_version('fcgiwrap')}; {first_line(['wrk', '-v'])}; {first_line(['curl', '--version'])}; "
        f"{first_line(['cc', '--version'])}",
        "- peers: " + (", ".join(f"{name} {version}" for name, version in peers.items()) or "none installed")
        + f" (virtualenv {options.peers_venv}); {options.connections} workers each where they take a number "
        "(fcgiwrap -c, uWSGI --processes, scgi max_children); flup threaded (its default); aioscgi one"
        " asyncio process (it has no workers option)",
    ])


def loadavg() -> str:
    with open("/proc/loadavg") as info:
        return " ".join(info.read().split()[:3])


def missing_tools() -> list[str]:
    return stack.missing_programs(["nginx", "inetd", "wrk", "fcgiwrap", "curl", "cc"])


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    missing = missing_tools()
    if missing:
        print("\n".join(missing), file=sys.stderr)
        return 2
    started = time.monotonic()
    load_before = loadavg()
    root = Path(tempfile.mkdtemp(prefix="scgi_inetd-peers-"))
    bench = Bench(options, root)
    try:
        bench.prepare()
        bench.define_rows()
        bench.start()
        bench.check_rows()
        bench.measure()
        bench.measure_curves()
        bench.draw_charts()
        sys.stdout.write(bench.report(started, load_before))
        if bench.failed:
            log("these paths did not answer as they should: " + ", ".join(bench.failed))
            return 1
    finally:
        bench.stop()
        if options.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0
