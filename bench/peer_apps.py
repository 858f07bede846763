"""The programs bench/run serves, ours and the peers', written into its work directory.

The same hello app (examples/hello_wsgi.py) runs under every WSGI server,
and its ASGI twin (HELLO_ASGI: the same body and headers) under aioscgi;
the same two CGI programs (examples/cgi-bin/hello.sh and a C hello built
with cc here) run under scgi-run and fcgiwrap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from cgi_common import DISCARD_C, HELLO_C, REPO

HELLO_APP = REPO / "examples" / "hello_wsgi.py"

#: Peers installed into the benchmark's own virtualenv, never the project's.
PEER_PACKAGES = ("flup", "scgi", "uwsgi", "aioscgi")

#: Installed beside them: matplotlib draws bench/run --charts (bench/charts.py).
BENCH_TOOLS = ("matplotlib",)

# The "plain CGI" way to run WSGI: the standard library's CGIHandler.
WSGIREF_CGI = """\
#!{python} -I
import sys
sys.path.insert(0, {app_dir!r})
from wsgiref.handlers import CGIHandler
from hello_wsgi import application
CGIHandler().run(application)
"""

# flup's SCGI server as its documentation shows it: threaded, one process.
FLUP_SERVER = """\
import sys
sys.path.insert(0, {app_dir!r})
from flup.server.scgi import WSGIServer
from hello_wsgi import application
WSGIServer(application, bindAddress={socket!r}, umask=0).run()
"""

# The scgi package (Neil Schemenauer's, the spec's author) ships a pre-forking
# server with a handler to override, no WSGI adapter: this is the smallest
# honest one (status, headers, body; the app's close() called).
SCGI_SERVER = """\
import os, socket, sys
sys.path.insert(0, {app_dir!r})
from scgi.scgi_server import SCGIServer
from scgi.util import SCGIHandler
from hello_wsgi import application

class WSGIHandler(SCGIHandler):
    def produce(self, env, bodysize, input, output):
        env.update({{"wsgi.input": input, "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
                    "wsgi.url_scheme": "http", "wsgi.multithread": False,
                    "wsgi.multiprocess": True, "wsgi.run_once": False}})
        head = []
        def start_response(status, headers, exc_info=None):
            head[:] = [status, headers]
        result = application(env, start_response)
        try:
            body = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        status, headers = head
        output.write(("Status: %s\\r\\n" % status).encode("latin-1"))
        output.write("".join("%s: %s\\r\\n" % pair for pair in headers).encode("latin-1"))
        output.write(b"\\r\\n" + body)

class UnixSCGIServer(SCGIServer):
    def get_listening_socket(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind({socket!r})
        os.chmod({socket!r}, 0o666)
        return sock

UnixSCGIServer(WSGIHandler, max_children={workers}).serve()
"""

# examples/hello_wsgi.py as an ASGI app: the same body and headers. It answers
# the lifespan protocol too, as an ASGI app that has nothing to set up does.
HELLO_ASGI = """\
BODY = b"Hello, world!\\n"
HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(BODY))]


async def application(scope, receive, send):
    while scope["type"] == "lifespan":
        if (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""

# aioscgi's own command line, `aioscgi --unix-socket SOCKET --base-uri /aioscgi
# hello_asgi:application`, run by its main() with the app's directory on
# sys.path (the command imports the app from the current directory). One
# process: aioscgi serves every connection in one asyncio loop and has no
# workers option. --base-uri: nginx's scgi_params send no SCRIPT_NAME, which
# aioscgi needs otherwise.
AIOSCGI_SERVER = """\
import sys
sys.path.insert(0, {app_dir!r})
sys.argv[1:] = ["--unix-socket", {socket!r}, "--base-uri", "/aioscgi", "hello_asgi:application"]
from aioscgi.main import main
main()
"""

# The download script for scgi-run: headers, then the file through cat.
DOWNLOAD_SH = """\
#!/bin/sh
printf 'Status: 200 OK\\r\\nContent-Type: application/octet-stream\\r\\nContent-Length: {size}\\r\\n\\r\\n'
exec cat {path}
"""


# `maxrss REPORT PROGRAM ARGS...`: run PROGRAM as a child and write its
# ru_maxrss (KiB) to REPORT. Forked from this small process, the child's
# figure is its own: a child vfork'ed by posix_spawn from the (large) Python
# driver would inherit the driver's high-water mark at execve.
MAXRSS_C = r"""
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 2;
    pid_t pid = fork();
    if (pid == 0) { execv(argv[2], argv + 2); _exit(127); }
    int status;
    struct rusage usage;
    if (pid < 0 || wait4(pid, &status, 0, &usage) < 0) return 1;
    FILE *report = fopen(argv[1], "w");
    if (!report) return 1;
    fprintf(report, "%ld\n", usage.ru_maxrss);
    fclose(report);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
"""


def write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def build_c(workdir: Path, name: str, source: str) -> Path:
    (workdir / f"{name}.c").write_text(source)
    subprocess.run(["cc", "-O2", "-o", str(workdir / name), str(workdir / f"{name}.c")], check=True)
    (workdir / f"{name}.c").unlink()
    return workdir / name


def cgi_programs(cgi_dir: Path, python: str, bulk_file: Path, bulk_size: int) -> None:
    """hello.sh, hello (C), wsgiref.cgi, download.sh and discard (C) in cgi_dir."""
    cgi_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "examples" / "cgi-bin" / "hello.sh", cgi_dir / "hello.sh")
    build_c(cgi_dir, "hello", HELLO_C)
    build_c(cgi_dir, "discard", DISCARD_C)
    build_c(cgi_dir.parent, "maxrss", MAXRSS_C)
    write_executable(cgi_dir / "wsgiref.cgi", WSGIREF_CGI.format(python=python, app_dir=str(HELLO_APP.parent)))
    write_executable(cgi_dir / "download.sh", DOWNLOAD_SH.format(size=bulk_size, path=bulk_file))


def run_venv(root: Path, base_python: str) -> str:
    """A virtualenv without pip whose site-packages links to this checkout's package.

    So `python -I` imports scgi_inetd (-I ignores PYTHONPATH) and the floor,
    `python -I -c pass`, starts the very same interpreter with the very same
    sys.path: the difference between the two is our code, nothing else.
    """
    venv = root / "venv"
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python3"
    site = subprocess.run([str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    os.symlink(REPO / "scgi_inetd", Path(site) / "scgi_inetd")
    return str(python)


def compile_package(python: str) -> None:
    """Write the .pyc files first: with PYTHONDONTWRITEBYTECODE=1 every
    one-shot start would otherwise compile the package from source."""
    subprocess.run([python, "-m", "compileall", "-q", str(REPO / "scgi_inetd")],
                   check=True, stdout=subprocess.DEVNULL)
    # examples/ without recursing: examples/cgi-bin must stay free of __pycache__.
    subprocess.run([python, "-m", "compileall", "-q", "-l", str(HELLO_APP.parent)],
                   check=True, stdout=subprocess.DEVNULL)


def peers_venv_python(venv: Path) -> Path:
    return venv / "bin" / "python3"


def installed_peers(venv: Path, names: tuple[str, ...] = PEER_PACKAGES) -> dict[str, str]:
    """Package -> version, for those of `names` installed in venv."""
    python = peers_venv_python(venv)
    if not python.exists():
        return {}
    code = ("import importlib.metadata as m\n"
            f"for name in {names!r}:\n"
            "    try: print(name, m.version(name))\n"
            "    except m.PackageNotFoundError: pass\n")
    done = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True)
    return dict(line.split() for line in done.stdout.splitlines())


def install_peers(venv: Path, base_python: str, log) -> dict[str, str]:
    """Create venv (once) and pip install the missing peers and bench tools into it.

    uWSGI compiles from source (gcc and the Python headers): a failure is
    reported and the benchmark goes on without it.
    """
    if not peers_venv_python(venv).exists():
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    have = installed_peers(venv, PEER_PACKAGES + BENCH_TOOLS)
    for name in PEER_PACKAGES + BENCH_TOOLS:
        if name in have:
            continue
        log(f"installing {name} into {venv} (benchmark only)")
        done = subprocess.run([str(peers_venv_python(venv)), "-m", "pip", "install", "-q", name],
                              capture_output=True, text=True)
        if done.returncode:
            log(f"  {name} failed to install: " + (done.stderr.strip().splitlines() or ["?"])[-1])
    return installed_peers(venv)


def python_version(python: str) -> str:
    return subprocess.run([python, "-I", "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True).stdout.strip()


def default_python() -> str:
    """Debian's interpreter when there is one (what inetd.conf lines name), else ours."""
    return "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else os.path.realpath(sys.executable)
