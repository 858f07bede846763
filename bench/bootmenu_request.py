"""What one boot-menu request costs on top of an interpreter start.

Runs, alternating and interleaved so machine noise hits every variant alike:
  bare        python -I -c pass                        (the floor)
  package     python -I -c "import scgi_inetd"         (what every front-end pays first)
  chain-back  GET /boot.ipxe with no identity          (no state touched)
  menu        GET /boot.ipxe?mac=...&uuid=...          (rules, mark check, inventory write)
  pxelinux    GET /pxelinux.cfg/default + Cookie       (same, PXELINUX renderer)
  menu-1000   menu, with 1,000 more host rules in the config
  marked      menu for a machine with a pending (until-done) mark: SQLite is loaded
  cold-cache  menu with the config cache removed first (tomllib parses the file)
  one-shot    bin/scgi-bootmenu CONFIG on a socketpair (a real SCGI menu
              request, as inetd runs it) against `bare -s` started the same way
  admin-page  bin/scgi-bootmenu CONFIG admin the same way: GET / (the admin page;
              it folds the inventory lines the menu requests queued meanwhile)
  admin-api   the same for GET /api/hosts (JSON)
Each request calls the WSGI app in a fresh interpreter as the one-shot
front-end would (environ in, body out, close()), with the example config. Prints medians and differences in ms.

    /usr/bin/python3.11 bench/bootmenu_request.py [--runs 200] [--python /usr/bin/python3.11]
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

REQUEST = """
import sys, time
sys.path.insert(0, {repo!r})
import scgi_inetd
start = time.perf_counter()
from scgi_inetd.bootmenu.app import make_app
environ = {{"REQUEST_METHOD": "GET", "PATH_INFO": {path!r}, "QUERY_STRING": {query!r},
           "HTTP_COOKIE": {cookie!r}, "REMOTE_ADDR": "10.0.2.15", "wsgi.errors": sys.stderr}}
status = []
response = make_app({config!r})(environ, lambda s, h: status.append(s))
body = b"".join(response)
sent = time.perf_counter()
getattr(response, "close", lambda: None)()  # the deferred inventory write counts too
assert status == ["200 OK"], status
sys.stdout.write("%.3f %.3f" % ((sent - start) * 1000, (time.perf_counter() - sent) * 1000))
"""


def rules_text(count: int) -> str:
    return "".join(f'\n[[rules]]\nname = "h{i}"\nmatch = {{ mac = "02:00:00:00:{i >> 8:02x}:{i & 255:02x}" }}\n'
                   f'default = "memtest"\n' for i in range(count))


def exchange(argv: list[str], request: bytes, env: dict) -> float:
    """Milliseconds from spawning `argv` with a connection on fds 0-2 to EOF."""
    ours, theirs = socket.socketpair()
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=theirs, env=env)
    theirs.close()
    ours.sendall(request)
    try:
        while ours.recv(65536):
            pass
    except ConnectionResetError:  # the bare interpreter never reads the request
        pass
    elapsed = (time.perf_counter() - start) * 1000
    ours.close()
    child.wait()
    return elapsed


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 200
    python = sys.argv[sys.argv.index("--python") + 1] if "--python" in sys.argv else "/usr/bin/python3.11"
    work = Path(tempfile.mkdtemp(prefix="bootmenu-bench-"))
    config = work / "bootmenu.toml"
    big = work / "bootmenu-1000.toml"
    text = (REPO / "examples" / "bootmenu.toml").read_text()
    text = text.replace("/var/lib/scgi-bootmenu/state.sqlite", str(work / "state.sqlite"))
    config.write_text(text)
    big.write_text(text + rules_text(1000))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # Installed packages have their .pyc files: without them every run would
    # compile the modules it imports (PYTHONDONTWRITEBYTECODE, a fresh checkout).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([python, "-m", "compileall", "-q", str(REPO / "scgi_inetd")], check=True, env=env)
    marked = "52:54:00:12:34:57"
    for path, command in ((config, "init"), (config, "check"), (big, "check"),
                          (config, f"next {marked} memtest --until-done")):
        subprocess.run([python, str(REPO / "bin" / "scgi-bootmenu"), str(path), *command.split()], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    identity = "mac=52:54:00:12:34:56&uuid=12345678-1234-5678-9abc-def012345678&buildarch=i386&platform=pcbios"
    cookie = "_Syslinux_ip=10.0.2.15%3A10.0.2.2;_Syslinux_BOOTIF=01-52-54-00-12-34-56"

    def request(path: str, query: str = "", cookie: str = "", config: Path = config) -> list[str]:
        code = REQUEST.format(repo=str(REPO), path=path, query=query, cookie=cookie, config=str(config))
        return [python, "-I", "-c", code]

    cache = Path(str(config) + ".cache")
    variants = {
        "bare": ([python, "-I", "-c", "pass"], None),
        "package": ([python, "-I", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); import scgi_inetd"], None),
        "chain-back": (request("/boot.ipxe"), None),
        "menu": (request("/boot.ipxe", identity), None),
        "pxelinux": (request("/pxelinux.cfg/default", "", cookie), None),
        "menu-1000": (request("/boot.ipxe", identity, config=big), None),
        "marked": (request("/boot.ipxe", f"mac={marked}"), None),
        "cold-cache": (request("/boot.ipxe", identity), lambda: cache.unlink(missing_ok=True)),
    }
    # The real thing: bin/scgi-bootmenu on a socketpair, as inetd runs it,
    # against a bare interpreter started the same way (-s: PYTHONPATH must work).
    sys.path.insert(0, str(REPO))
    from scgi_inetd.client import build_params
    from scgi_inetd.protocol import encode_request

    scgi = encode_request(build_params("GET", "/boot.ipxe?" + identity))
    variants["bare -s"] = ([python, "-s", "-c", "pass"], "exec")
    variants["one-shot"] = ([python, "-s", str(REPO / "bin" / "scgi-bootmenu"), str(config)], "exec")
    secret = work / "admin.secret"
    secret.write_text("bench\n")
    admin = [python, "-s", str(REPO / "bin" / "scgi-bootmenu"), str(config), "admin", "--secret-file", str(secret)]
    variants["admin-page"] = (admin, "exec")
    variants["admin-api"] = (admin, "exec")
    scgi_requests = {name: encode_request(build_params("GET", uri, params={"BOOTMENU_ADMIN_SECRET": "bench"}))
                     for name, uri in (("admin-page", "/"), ("admin-api", "/api/hosts"))}
    times: dict[str, list[float]] = {name: [] for name in variants}
    inside: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, (argv, before) in variants.items():
            if before == "exec":
                times[name].append(exchange(argv, scgi_requests.get(name, scgi), env))
                continue
            if before:
                before()
            start = time.perf_counter()
            out = subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env).stdout
            times[name].append((time.perf_counter() - start) * 1000)
            if out:
                inside[name].append(tuple(map(float, out.split())))
    bare = statistics.median(times["bare"])
    package = statistics.median(times["package"])
    print(f"{runs} alternating runs each, {python}, median wall time")
    for name, values in times.items():
        if name in ("one-shot", "admin-page", "admin-api"):
            base = statistics.median(times["bare -s"])
            median = statistics.median(values)
            what = "menu request" if name == "one-shot" else name
            print(f"  {name:11s} {median:6.2f} ms   +{median - base:5.2f} ms over `bare -s`   x{median / base:.2f}"
                  f"   (bin/scgi-bootmenu, {what}, SCGI on a socketpair)")
            continue
        median = statistics.median(values)
        print(f"  {name:11s} {median:6.2f} ms   +{median - bare:5.2f} ms over bare   "
              f"+{median - package:5.2f} ms over the package import   x{median / bare:.2f}")
    print("in process, after `import scgi_inetd`, median: app import + request until the body is ready;"
          " then close() (the deferred inventory write)")
    for name, values in inside.items():
        if values:
            ready = statistics.median(value[0] for value in values)
            after = statistics.median(value[1] for value in values)
            print(f"  {name:11s} {ready:6.2f} ms + {after:5.2f} ms")


if __name__ == "__main__":
    main()
