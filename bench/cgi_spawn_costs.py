"""How resident scgi-run should start a script: the evidence for cgi_resident.spawn.

    python bench/cgi_spawn_costs.py [--runs 2000]

Starts a C hello (built here with cc) many times from this interpreter, with
the package imported, each the way the resident loop could, with what a CGI
script needs (its folder as cwd, its own process group, default signals, the
"connection" on fds 0 and 1):
  subprocess.Popen   cwd=, process_group=0, restore_signals=True, close_fds=True (vfork in 3.11)
  spawn              cgi_resident.spawn: chdir, posix_spawn (vfork), fchdir back
  fork + execve      what the previous loop did, minus reading the header in the child
CPU time (user + system, from rusage) of this process and of its children,
so the figures hold on a loaded machine; wall time too.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scgi_inetd.cgi_exec import RESET_SIGNALS  # noqa: E402
from scgi_inetd.cgi_resident import spawn  # noqa: E402

HELLO_C = "#include <unistd.h>\nint main(void) { return write(1, \"hello\\n\", 6) != 6; }\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        source, hello = Path(folder, "hello.c"), os.path.join(folder, "hello")
        source.write_text(HELLO_C)
        subprocess.run(["cc", "-O2", "-o", hello, str(source)], check=True)
        measure(hello, runs)


def measure(hello: str, runs: int) -> None:
    connection = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    environ = {b"PATH": b"/usr/bin:/bin", b"QUERY_STRING": b"x=1"}
    folder = os.path.dirname(hello)

    def popen() -> None:
        process = subprocess.Popen([hello], cwd=folder, env=environ, stdin=connection, stdout=connection,
                                   process_group=0, restore_signals=True, close_fds=True)
        os.waitpid(process.pid, 0)
        process.returncode = 0

    def posix_spawn() -> None:
        os.waitpid(spawn([hello], environ, connection, connection, home), 0)

    def fork_exec() -> None:
        pid = os.fork()
        if pid == 0:
            try:
                os.chdir(folder)
                os.setpgid(0, 0)
                os.dup2(connection, 0)
                os.dup2(connection, 1)
                os.execve(hello, [hello], environ)
            finally:
                os._exit(127)
        os.waitpid(pid, 0)

    assert RESET_SIGNALS
    print(f"{runs} runs each, per run (this process: {os.path.realpath(sys.executable)}, "
          f"load average {os.getloadavg()[0]:.1f})")
    print("| start | wall ms | CPU ms, this process | CPU ms, children |")
    print("| --- | --- | --- | --- |")
    for _ in range(2):
        for label, start in (("subprocess.Popen", popen), ("cgi_resident.spawn (posix_spawn)", posix_spawn),
                             ("fork + execve", fork_exec)):
            per_run(label, runs, start)


def per_run(label: str, runs: int, start) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    for _ in range(runs):
        start()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    own, children = ((a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime) / runs * 1e3
                     for a, b in zip(after, before))
    print(f"| {label} | {wall / runs * 1e3:.3f} | {own:.3f} | {children:.3f} |")


if __name__ == "__main__":
    main()
