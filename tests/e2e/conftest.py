"""Fixtures for the end-to-end suite: a real nginx and a real super-server.

The stack is examples/nginx.conf and inetd.conf.example as written, with
their system paths moved into a private directory (examples/stack/stack.py
does the rewriting and the process control). The programs inetd starts are
`sys.executable` plus the checkout's bin/ scripts, with PYTHONPATH from
tests.support.child_env(); inetd -E passes that environment on.

Programs missing: the test fails when CI is set, and skips elsewhere.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import BIN, REPO, child_env, load_file

stack = load_file(REPO / "examples" / "stack" / "stack.py", "scgi_stack")

HERE = Path(__file__).resolve().parent

# The admin location's user (examples/nginx.conf: /admin/, behind auth_basic).
ADMIN_USER = "admin"
ADMIN_PASSWORD = os.urandom(6).hex()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives a real nginx and a real super-server")
    config.addinivalue_line("markers", "qemu: boots a real iPXE client in QEMU")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def unavailable(reason: str) -> None:
    """Fail under CI (the suite must run there), skip with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def require_programs(*names: str) -> None:
    missing = stack.missing_programs(names)
    if missing:
        unavailable("; ".join(missing))


def require_frontend(*names: str) -> None:
    """Front-ends are drives through their bin/ scripts only."""
    missing = [name for name in names if not (BIN / name).exists()]
    if missing:
        unavailable(f"{', '.join(missing)} not in {BIN}")


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def http_request(port: int, path: str, *, method: str = "GET", body=None,
                 headers: dict[str, str] | None = None, timeout: float = 30.0) -> Response:
    """One HTTP request to 127.0.0.1:port on a connection of its own."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return Response(answer.status, answer.headers, answer.read())
    finally:
        connection.close()


@dataclass
class Stack:
    """The running stack: nginx, inetd, the private paths, and an HTTP client."""

    root: Path
    paths: dict[str, str]
    nginx: stack.Nginx
    inetd: stack.Inetd
    last_request: int = 0  # access-log lines before the latest request()

    def path(self, system_path: str) -> Path:
        """Where a path of the examples (/run/scgi/..., /srv/...) lives here."""
        return Path(stack.rewrite(system_path, self.paths))

    def request(self, path: str, *, method: str = "GET", body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0) -> Response:
        self.last_request = len(self.nginx.access())
        return http_request(self.nginx.port, path, method=method, body=body, headers=headers, timeout=timeout)

    def raw(self, data: bytes, timeout: float = 10.0) -> bytes:
        """Send raw bytes to nginx and return all it answers (hostile requests)."""
        self.last_request = len(self.nginx.access())
        with socket.create_connection(("127.0.0.1", self.nginx.port), timeout=timeout) as conn:
            conn.sendall(data)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def upstream_errors(self, since: int = 0) -> list[str]:
        """nginx warnings and errors about the upstream (protocol errors, resets).

        Buffering a large body to a temporary file is a [warn] that says
        nothing about the upstream's behaviour: left out.
        """
        return [line for line in self.nginx.errors(since)
                if "upstream" in line and "buffered to a temporary file" not in line]


# Test-only scripts next to the examples' ones in the CGI directory.
NO_STATUS_SCRIPT = """#!/bin/sh
# No Status line: SCGI requires one; --fix-status adds it.
printf 'Content-Type: text/plain\\r\\nX-Script: nostatus\\r\\n\\r\\nno status line\\n'
"""
# nginx does not read the response while it still has request body to send:
# a script that echoes as it reads deadlocks once the unix socket's buffers
# fill (about 200 KB, measured with nginx 1.22). Read everything, then answer.
ECHO_ALL_SCRIPT = """#!/bin/sh
body=$(mktemp)
trap 'rm -f "$body"' EXIT
head -c "${CONTENT_LENGTH:-0}" > "$body"
printf 'Status: 200 OK\\r\\nContent-Type: application/octet-stream\\r\\nContent-Length: %s\\r\\n\\r\\n' "${CONTENT_LENGTH:-0}"
cat "$body"
"""
# Prints its header, then reads its body: the natural order in a shell script.
HEADER_FIRST_SUM_SCRIPT = """#!/bin/sh
printf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n'
head -c "$CONTENT_LENGTH" | sha256sum | cut -d' ' -f1
"""
# What the script was told about itself, one variable a line.
PATHS_SCRIPT = """#!/bin/sh
printf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n'
printf 'SCRIPT_NAME=%s\\nPATH_INFO=%s\\nQUERY_STRING=%s\\n' "$SCRIPT_NAME" "$PATH_INFO" "$QUERY_STRING"
"""
IGNORES_BODY_SCRIPT = """#!/bin/sh
printf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nignored\\n'
"""
OUTSIDE_SCRIPT = """#!/bin/sh
printf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nOUTSIDE-THE-CGI-DIRECTORY\\n'
"""

# Locations the tests add to examples/nginx.conf's server block.
EXTRA_LOCATIONS = """
    # Test only: room for 300 KiB of request headers, so that the front-end's
    # own limit (256 KiB) is what refuses them under /big/.
    large_client_header_buffers 16 64k;
    location /big/ {
        include scgi_params;
        scgi_pass unix:/run/scgi/hello.sock;
    }

    # Test only: marker URLs the QEMU machines fetch (found in the access log).
    location /marker/ {
        return 200 "marker\\n";
    }

    # Test only: the trivial responder, proving the stack without front-ends.
    location = /trivial {
        include scgi_params;
        scgi_pass unix:/run/scgi/trivial.sock;
    }

    # Test only: scgi-run --fix-status on the same directory.
    location ~ ^/fixed/(?<fixed_script>[^/]+)$ {
        include scgi_params;
        scgi_param SCRIPT_FILENAME /srv/scgi/cgi-bin/$fixed_script;
        scgi_param SCRIPT_NAME     /fixed/$fixed_script;
        scgi_pass unix:/run/scgi/fixed.sock;
    }

    # Test only: git through a resident scgi-run (inetd wait).
    location /git-resident/ {
        include scgi_params;
        client_max_body_size 0;
        fastcgi_split_path_info ^(/git-resident)(/.*)$;
        scgi_param SCRIPT_NAME $fastcgi_script_name;
        scgi_param PATH_INFO   $fastcgi_path_info;
        scgi_pass unix:/run/scgi/git-resident.sock;
    }

    # Test only: uploads of any size to the CGI directory, one-shot (under a
    # peak-RSS probe) and resident; a WSGI app that answers before it reads.
    location ~ ^/upload/(?<up_script>[^/]+)$ {
        include scgi_params;
        client_max_body_size 0;
        scgi_param SCRIPT_FILENAME /srv/scgi/cgi-bin/$up_script;
        scgi_pass unix:/run/scgi/cgi-rss.sock;
    }
    location ~ ^/upload-resident/(?<upr_script>[^/]+)$ {
        include scgi_params;
        client_max_body_size 0;
        scgi_param SCRIPT_FILENAME /srv/scgi/cgi-bin/$upr_script;
        scgi_pass unix:/run/scgi/cgi-resident.sock;
    }
    location ~ ^/upload-fixed/(?<upf_script>[^/]+)$ {
        include scgi_params;
        client_max_body_size 0;
        scgi_param SCRIPT_FILENAME /srv/scgi/cgi-bin/$upf_script;
        scgi_pass unix:/run/scgi/fixed.sock;
    }
    location /bottle {
        include scgi_params;
        client_max_body_size 0;
        fastcgi_split_path_info ^(/bottle)(.*)$;
        scgi_param SCRIPT_NAME $fastcgi_script_name;
        scgi_param PATH_INFO   $fastcgi_path_info;
        scgi_pass unix:/run/scgi/bottle.sock;
    }
    location ~ ^/small/(?<small_script>[^/]+)$ {
        include scgi_params;
        scgi_param SCRIPT_FILENAME /srv/scgi/cgi-bin/$small_script;
        scgi_pass unix:/run/scgi/small.sock;
    }
    location /answer-first {
        include scgi_params;
        client_max_body_size 0;
        scgi_pass unix:/run/scgi/answer-first.sock;
    }

    # Test only: the examples/systemd units under systemd-socket-activate.
    location /activated {
        include scgi_params;
        fastcgi_split_path_info ^(/activated)(.*)$;
        scgi_param SCRIPT_NAME $fastcgi_script_name;
        scgi_param PATH_INFO   $fastcgi_path_info;
        scgi_pass unix:/run/scgi-activate/hello.sock;
    }
    location /activated-resident {
        include scgi_params;
        fastcgi_split_path_info ^(/activated-resident)(.*)$;
        scgi_param SCRIPT_NAME $fastcgi_script_name;
        scgi_param PATH_INFO   $fastcgi_path_info;
        scgi_pass unix:/run/scgi-activate/resident.sock;
    }
"""


def private_paths(root: Path) -> dict[str, str]:
    """The examples' system paths and where the test stack keeps them."""
    return {
        "/run/scgi/": f"{root}/run/",
        "/run/scgi-activate/": f"{root}/arun/",
        "/var/log/scgi/": f"{root}/log/",
        "/srv/scgi/cgi-bin/": f"{root}/cgi-bin/",
        "/srv/scgi/hello_wsgi.py": str(REPO / "examples/hello_wsgi.py"),
        "/srv/scgi/bootmenu.toml": f"{root}/bootmenu.toml",
        "/srv/netboot": f"{root}/netboot",
        "/srv/git": f"{root}/git",
        "/etc/scgi/": f"{root}/etc/",
    }


def populate(root: Path, paths: dict[str, str]) -> None:
    for key in ("/run/scgi/", "/run/scgi-activate/", "/var/log/scgi/", "/srv/scgi/cgi-bin/",
                "/srv/netboot", "/srv/git"):
        Path(paths[key]).mkdir(parents=True, exist_ok=True)
    cgi_bin = Path(paths["/srv/scgi/cgi-bin/"])
    examples = REPO / "examples/cgi-bin"
    for script in examples.iterdir() if examples.is_dir() else ():
        shutil.copy2(script, cgi_bin / script.name)
    for name, text in (("nostatus.sh", NO_STATUS_SCRIPT), ("echo-all.sh", ECHO_ALL_SCRIPT),
                       ("header-first-sum.sh", HEADER_FIRST_SUM_SCRIPT), ("paths.sh", PATHS_SCRIPT),
                       ("ignores-body.sh", IGNORES_BODY_SCRIPT)):
        (cgi_bin / name).write_text(text)
        (cgi_bin / name).chmod(0o755)
    outside = root / "outside.sh"
    outside.write_text(OUTSIDE_SCRIPT)
    outside.chmod(0o755)
    (cgi_bin / "escape.sh").symlink_to(outside)
    (cgi_bin / "subdir").mkdir()
    netboot = Path(paths["/srv/netboot"])
    (netboot / "index.txt").write_text("netboot files\n")
    stack.write_admin_access(paths, ADMIN_USER, ADMIN_PASSWORD)
    for name, source in (("lpxelinux.0", "/usr/lib/PXELINUX/lpxelinux.0"),
                         ("ldlinux.c32", "/usr/lib/syslinux/modules/bios/ldlinux.c32"),
                         ("snponly.efi", "/usr/lib/ipxe/snponly.efi")):
        if os.path.exists(source):
            os.symlink(source, netboot / name)


def test_services(paths: dict[str, str]) -> list[stack.Service]:
    """inetd lines the tests add to inetd.conf.example's."""
    python = sys.executable
    cgi_bin = paths["/srv/scgi/cgi-bin/"]
    return [
        stack.Service(stack.rewrite("/run/scgi/trivial.sock", paths),
                      [python, "trivial", str(HERE / "trivial_handler.py")]),
        stack.Service(stack.rewrite("/run/scgi/fixed.sock", paths),
                      [python, "scgi-run", str(BIN / "scgi-run"), "--fix-status",
                       "--stderr", stack.rewrite("/var/log/scgi/fixed.log", paths), cgi_bin]),
        stack.Service(stack.rewrite("/run/scgi/git-resident.sock", paths),
                      [python, "scgi-run", str(REPO / "bin/scgi-run"),
                       "--env", f"GIT_PROJECT_ROOT={paths['/srv/git']}", "--env", "GIT_HTTP_EXPORT_ALL=1",
                       "--stderr", stack.rewrite("/var/log/scgi/git-wait.log", paths),
                       "/usr/lib/git-core/git-http-backend"], wait=True),
        stack.Service(stack.rewrite("/run/scgi/cgi-rss.sock", paths),
                      [python, "maxrss", str(HERE / "maxrss.py"), stack.rewrite("/var/log/scgi/rss", paths),
                       python, str(REPO / "bin/scgi-run"),
                       "--stderr", stack.rewrite("/var/log/scgi/upload.log", paths), cgi_bin]),
        stack.Service(stack.rewrite("/run/scgi/cgi-resident.sock", paths),
                      [python, "scgi-run", str(REPO / "bin/scgi-run"),
                       "--stderr", stack.rewrite("/var/log/scgi/cgi-wait.log", paths), cgi_bin],
                      wait=True),
        stack.Service(stack.rewrite("/run/scgi/answer-first.sock", paths),
                      [python, "scgi-wsgi", str(REPO / "bin/scgi-wsgi"),
                       "--stderr", stack.rewrite("/var/log/scgi/answer-first.log", paths),
                       f"{REPO}/tests/body_apps.py:answer_first"]),
        stack.Service(stack.rewrite("/run/scgi/bottle.sock", paths),
                      # argv0 the interpreter's own path: a virtualenv's python (Bottle is
                      # installed there) finds its site-packages from argv[0].
                      [python, python, str(REPO / "bin/scgi-wsgi"),
                       "--stderr", stack.rewrite("/var/log/scgi/bottle.log", paths),
                       f"{HERE}/bottle_app.py:app"]),
        stack.Service(stack.rewrite("/run/scgi/facts.sock", paths),
                      [python, "scgi-wsgi", str(REPO / "bin/scgi-wsgi"),
                       "--script-name", "/facts", "--stderr", stack.rewrite("/var/log/scgi/facts.log", paths),
                       f"{REPO}/tests/wsgi_apps.py:application"]),
        stack.Service(stack.rewrite("/run/scgi/small.sock", paths),
                      [python, "scgi-run", str(REPO / "bin/scgi-run"), "--max-body", "1000",
                       "--stderr", stack.rewrite("/var/log/scgi/small.log", paths), cgi_bin]),
    ]


def bootmenu(config: Path, *args: str) -> str:
    """Run `scgi-bootmenu CONFIG ARGS` (init, next MAC ENTRY, ...); its output."""
    done = subprocess.run([sys.executable, str(BIN / "scgi-bootmenu"), str(config), *args],
                          env=child_env(), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"scgi-bootmenu {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory):
    """nginx + openbsd-inetd serving the examples, for the whole session."""
    require_programs("nginx", "inetd")
    root = tmp_path_factory.mktemp("stack")
    paths = private_paths(root)
    populate(root, paths)
    config = Path(paths["/srv/scgi/bootmenu.toml"])

    def write_config(port: int) -> None:
        # @BASE@: nginx as QEMU's guests reach it (slirp maps 10.0.2.2 to loopback).
        config.write_text((HERE / "bootmenu-test.toml").read_text()
                          .replace("@STATE@", str(root / "bootstate.sqlite"))
                          .replace("@BASE@", f"http://10.0.2.2:{port}"))

    write_config(0)
    if (BIN / "scgi-bootmenu").exists():
        bootmenu(config, "init")
    services = stack.example_inetd_services(paths, sys.executable) + test_services(paths)
    inetd = stack.Inetd(root, services, env=child_env())
    nginx = None
    try:
        inetd.start()
        for attempt in range(3):
            port = stack.free_port()
            block = stack.example_server_block(port, paths, stack.rewrite(EXTRA_LOCATIONS, paths))
            (root / "nginx").mkdir(exist_ok=True)
            nginx = stack.Nginx(root / "nginx", block, port)
            try:
                nginx.start()
                break
            except stack.StartError:
                nginx.stop()
                if attempt == 2 or "Address already in use" not in stack.tail(nginx.error_log):
                    raise
        write_config(nginx.port)
        yield Stack(root, paths, nginx, inetd)
    finally:
        if nginx is not None:
            nginx.stop()
        inetd.stop()


@pytest.fixture
def web(e2e_stack: Stack):
    """The session stack, checking that the test left no upstream errors in nginx's log."""
    offset = e2e_stack.nginx.error_offset()
    yield e2e_stack
    errors = e2e_stack.upstream_errors(offset)
    assert not errors, "nginx logged upstream errors:\n" + "\n".join(errors)


def wait_no_children(server: stack.Server, timeout: float = 10.0,
                     exclude: set[int] = frozenset()) -> list[int]:
    """Wait until the server has no child processes but `exclude`; return the others."""
    deadline = time.monotonic() + timeout
    while True:
        children = [pid for pid in server.children() if pid not in exclude]
        if not children or time.monotonic() > deadline:
            return children
        time.sleep(0.05)


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org",
                           "-c", "init.defaultBranch=main", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout
