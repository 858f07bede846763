"""Where the per-request CPU of one-shot and resident mode goes: the evidence behind docs/benchmarks.md.

    python bench/process_costs.py [--python /usr/bin/python3.11] [--runs 200]

CPU time (user + system, from rusage), not wall time, so the figures hold on
a loaded machine. Measures, in this interpreter with the package imported:
  fork + _exit           what resident mode pays per connection before any work
  fork + execv(C hello)  resident scgi-run today (the child also tears down its copy)
  posix_spawn(C hello)   the same program started without copying the interpreter
  handle_connection      one hello request: in this process, and in a forked child
                         (copy-on-write faults on every object the request touches)
and, in fresh interpreters of --python: `-I -c pass` with and without os._exit,
i.e. what interpreter finalization costs a one-shot process.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "examples"))

from scgi_inetd.client import build_params  # noqa: E402
from scgi_inetd.logsink import open_log  # noqa: E402
from scgi_inetd.protocol import encode_request  # noqa: E402
from scgi_inetd.wsgi import handle_connection  # noqa: E402
from hello_wsgi import application  # noqa: E402

HELLO_C = "#include <unistd.h>\nint main(void) { return write(1, \"hello\\n\", 6) != 6; }\n"


def cpu() -> tuple[float, float, int]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime,
            own.ru_minflt + children.ru_minflt)


def per_run(label: str, runs: int, body) -> None:
    before = cpu()
    for _ in range(runs):
        body()
    after = cpu()
    own, children, faults = ((b - a) / runs for a, b in zip(before, after))
    print(f"{label:44} parent {own * 1000:5.2f} ms  children {children * 1000:5.2f} ms"
          f"  minor faults {faults:4.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="/usr/bin/python3.11")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    runs = args.runs
    work = Path(tempfile.mkdtemp(prefix="scgi_inetd-costs-"))
    (work / "hello.c").write_text(HELLO_C)
    subprocess.run(["cc", "-O2", "-o", str(work / "hello"), str(work / "hello.c")], check=True)
    hello = str(work / "hello")
    devnull = os.open(os.devnull, os.O_RDWR)
    errors = open_log(str(work / "log"))
    request = encode_request(build_params("GET", "/hello"))

    def fork_exit() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    def fork_exec() -> None:
        pid = os.fork()
        if pid == 0:
            os.dup2(devnull, 1)
            os.execv(hello, [hello])
        os.waitpid(pid, 0)

    def spawn() -> None:
        os.waitpid(os.posix_spawn(hello, [hello], {}, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)]), 0)

    def serve(in_child: bool) -> None:
        ours, theirs = socket.socketpair()
        ours.sendall(request)
        pid = os.fork() if in_child else -1
        if pid <= 0:
            handle_connection(application, errors, stdin=theirs.fileno(), stdout=theirs.fileno(), run_once=False)
            if pid == 0:
                os._exit(0)
        theirs.close()
        while ours.recv(65536):
            pass
        ours.close()
        if pid > 0:
            os.waitpid(pid, 0)

    print(f"{runs} runs each, CPU per run (this process: {os.path.realpath(sys.executable)})")
    per_run("fork + _exit", runs, fork_exit)
    per_run("fork + execv(C hello)", runs, fork_exec)
    per_run("posix_spawn(C hello)", runs, spawn)
    per_run("hello request, in this process", runs, lambda: serve(False))
    per_run("hello request, in a forked child", runs, lambda: serve(True))
    python = args.python
    for label, code in (("python -I -c pass", "pass"), ("python -I -c pass, ending in os._exit",
                                                         "import os; os._exit(0)")):
        per_run(label, max(runs // 4, 20),
                lambda: subprocess.run([python, "-I", "-c", code], check=True))


if __name__ == "__main__":
    main()
