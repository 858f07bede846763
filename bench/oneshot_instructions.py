"""Instructions executed by one one-shot request, ours against the minimal baselines.

Wall-clock time on a loaded machine varies by tens of percent from run to
run; the number of instructions a process executes barely varies at all.
Each command runs under valgrind's callgrind with a
socketpair end on fds 0, 1 and 2, as inetd does, and gets one request.
For the exec shims the count stops where the shim becomes the program
(valgrind does not follow execve): the shim's own cost, which is what is
being compared.

    python bench/oneshot_instructions.py [--python /usr/bin/python3.11] [--flags=-S] [--runs 3]

The last group runs our programs with -I -S, as the README's inetd lines
start them, against the baselines with site (-I), as a program that needs
site-packages starts.

The package is compiled (compileall) first: PYTHONDONTWRITEBYTECODE would
otherwise make every run compile it from source.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgi_common import HELLO_C, MINIMAL_SHIM, REPO, build, request  # noqa: E402

sys.path.insert(0, str(REPO))
from scgi_inetd.client import build_params  # noqa: E402
from scgi_inetd.protocol import encode_request  # noqa: E402

#: A form POST's body size, for the cost of spooling a small body.
FORM_POST = 4096
RESPONSE = b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nHello, world!\n"
RESPONDER = f"import os\nos.read(0, 65536)\nos.write(1, {RESPONSE!r})\n"


def count(argv: list[str], data: bytes, env: dict[str, str], work: Path) -> tuple[int, bytes]:
    """Run argv under callgrind on a socketpair; return (instructions, response).

    callgrind dumps its counts before execve too (--dump-before), where a
    process that is replaced would otherwise take them along.
    """
    out = Path(tempfile.mkdtemp(dir=work))
    ours, theirs = socket.socketpair()
    command = ["valgrind", "--tool=callgrind", "--dump-before=execve", f"--callgrind-out-file={out}/cg",
               f"--log-file={out}/log", *argv]
    process = subprocess.Popen(command, stdin=theirs, stdout=theirs, stderr=theirs, env=env)
    theirs.close()
    chunks = []
    try:
        if data:
            ours.sendall(data)
        while chunk := ours.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    process.wait()
    ours.close()
    totals = [int(match.group(1)) for dump in out.glob("cg*")
              for match in re.finditer(r"^totals: (\d+)", dump.read_text(), re.M)]
    if not totals:
        raise RuntimeError(f"no count for {argv}: {(out / 'log').read_text()}")
    return sum(totals), b"".join(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=os.path.realpath(sys.executable))
    parser.add_argument("--flags", default="-S", help="interpreter flags for every command (default -S)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    python = os.path.realpath(args.python)
    flags = args.flags.split()
    subprocess.run([python, "-m", "compileall", "-q", "-l", str(REPO / "scgi_inetd"), str(REPO / "examples")],
                   check=True, stdout=subprocess.DEVNULL)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    work = Path(tempfile.mkdtemp(prefix="scgi-bench-"))
    hello = str(build(work, "hello", HELLO_C))
    (work / "shim.py").write_text(MINIMAL_SHIM)
    (work / "responder.py").write_text(RESPONDER)
    wsgi_request = encode_request(build_params("GET", "/", [("User-Agent", "bench")]))
    groups = {
        "WSGI": {
            "bare start (-c pass)": ([python, *flags, "-c", "pass"], b""),
            "minimal responder": ([python, *flags, str(work / "responder.py")], wsgi_request),
            "scgi-wsgi hello": ([python, *flags, str(REPO / "bin" / "scgi-wsgi"),
                                 str(REPO / "examples" / "hello_wsgi.py")], wsgi_request),
        },
        "CGI (until execve)": {
            "minimal shim (os.read + os.execv)": ([python, *flags, str(work / "shim.py"), hello], request()),
            "scgi-run SCRIPT": ([python, *flags, str(REPO / "bin" / "scgi-run"), hello], request()),
            "scgi-run --stream-body SCRIPT": ([python, *flags, str(REPO / "bin" / "scgi-run"), "--stream-body",
                                               hello], request()),
            "scgi-run SCRIPT, 4 KB POST": ([python, *flags, str(REPO / "bin" / "scgi-run"), hello],
                                           request(FORM_POST) + b"f" * FORM_POST),
            "scgi-run --stream-body SCRIPT, 4 KB POST": (
                [python, *flags, str(REPO / "bin" / "scgi-run"), "--stream-body", hello],
                request(FORM_POST) + b"f" * FORM_POST),
        },
        # The programs started with -I -S, as the README's inetd lines start them: no site
        # (the bin/ script finds its package), against the baselines with site.
        "without site (-I -S), against baselines with site (-I)": {
            "bare start with site (-I -c pass)": ([python, "-I", "-c", "pass"], b""),
            "minimal responder with site": ([python, "-I", str(work / "responder.py")], wsgi_request),
            "minimal shim with site": ([python, "-I", str(work / "shim.py"), hello], request()),
            "scgi-wsgi hello, -I -S": ([python, "-I", "-S", str(REPO / "bin" / "scgi-wsgi"),
                                        str(REPO / "examples" / "hello_wsgi.py")], wsgi_request),
            "scgi-run SCRIPT, -I -S": ([python, "-I", "-S", str(REPO / "bin" / "scgi-run"), hello], request()),
        },
    }
    print(f"interpreter: {python} {' '.join(flags)}; instructions (valgrind callgrind), min of {args.runs}")
    for group, commands in groups.items():
        counts = {}
        for name, (argv, data) in commands.items():
            runs = []
            for _ in range(args.runs):
                instructions, response = count(argv, data, env, work)
                if data and argv[-1] != hello:
                    assert response.endswith(b"Hello, world!\n"), (name, response)
                runs.append(instructions)
            counts[name] = min(runs)
        base = counts[{"WSGI": "minimal responder", "CGI (until execve)": "minimal shim (os.read + os.execv)"}
                      .get(group, "minimal shim with site")]
        print(f"{group}:")
        for name, instructions in counts.items():
            print(f"  {name:42} {instructions / 1e6:8.2f} M   {instructions / base:6.3f}x baseline"
                  f"   {(instructions - base) / 1e6:+7.2f} M")
        if group.startswith("without site"):
            floor = counts["bare start with site (-I -c pass)"]
            print(f"  scgi-wsgi hello, -I -S / bare start with site: {counts['scgi-wsgi hello, -I -S'] / floor:.3f}x"
                  f"; / minimal responder with site: "
                  f"{counts['scgi-wsgi hello, -I -S'] / counts['minimal responder with site']:.3f}x")
        if group.startswith("CGI"):
            # The body spooled before the script runs (the default) against the body
            # left on the connection (--stream-body): what the default costs.
            for what in ("", ", 4 KB POST"):
                spooled, streamed = counts[f"scgi-run SCRIPT{what}"], counts[f"scgi-run --stream-body SCRIPT{what}"]
                print(f"  default / --stream-body{what or ', GET'}: {spooled / streamed:.4f}x")


if __name__ == "__main__":
    main()
