"""Per-request wall time of `scgi-run SCRIPT` against a minimal exec shim, same interpreter, one run.

Usage: python bench/cgi_exec_overhead.py [ROUNDS] [-- EXTRA INTERPRETER FLAGS]
Each round runs every candidate once, in alternating order, through a
socketpair on fds 0, 1, 2 (as inetd does); the figure is the median.
Without EXTRA flags the shim starts with site, as a Python program that
needs site-packages does, and `scgi-run SCRIPT, -I -S` is set against it.
"""

from __future__ import annotations

import os
import sys

from cgi_common import (HELLO_C, MINIMAL_SHIM, PYTHON, REPO, build, compile_package, median, one_request, request,
                        workdir)


def main() -> None:
    args = sys.argv[1:]
    flags = args[args.index("--") + 1:] if "--" in args else []
    rounds = int(args[0]) if args and args[0] != "--" else 200
    compile_package()
    work = workdir()
    hello = str(build(work, "hello", HELLO_C))
    (work / "shim.py").write_text(MINIMAL_SHIM)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    candidates = {
        "hello (C) run directly": [hello],
        f"python {' '.join(flags + ['-I'])} -c pass": [PYTHON, *flags, "-I", "-c", "pass"],
        "minimal shim (os.read + os.execv)": [PYTHON, *flags, str(work / "shim.py"), hello],
        "scgi-run SCRIPT": [PYTHON, *flags, str(REPO / "bin" / "scgi-run"), hello],
        # As README ("Speed") starts it; its bin/ script finds the package without site.
        "scgi-run SCRIPT, -I -S": [PYTHON, *flags, "-I", "-S", str(REPO / "bin" / "scgi-run"), hello],
        "scgi-run --timeout 30 SCRIPT": [PYTHON, *flags, str(REPO / "bin" / "scgi-run"), "--timeout", "30", hello],
        "scgi-run --fix-status SCRIPT": [PYTHON, *flags, str(REPO / "bin" / "scgi-run"), "--fix-status", hello],
    }
    # The program run directly and the bare interpreter get no request (they would not read it).
    data = {name: b"" if name.startswith(("hello", "python")) else request() for name in candidates}
    times = {name: [] for name in candidates}
    for name, argv in candidates.items():  # warm-up, and check the answers
        _, output = one_request(argv, data[name], env)
        assert name.startswith("python") or output.endswith(b"hello\n"), (name, output)
    for round_number in range(rounds):
        order = list(candidates.items())
        if round_number % 2:
            order.reverse()
        for name, argv in order:
            times[name].append(one_request(argv, data[name], env)[0])
    base = median(times["minimal shim (os.read + os.execv)"])
    print(f"interpreter: {PYTHON} {' '.join(flags)}  rounds: {rounds}")
    for name, values in times.items():
        print(f"{name:40s} {median(values) * 1000:8.2f} ms   {median(values) / base:5.2f}x minimal shim")


if __name__ == "__main__":
    main()
