#!/usr/bin/env python3
"""Count the read system calls that take one request header off a socket.

`read_request` first reads no more than the smallest valid header (which holds
the whole length prefix) and then takes exactly the rest: two calls when the
header arrives whole. The 2011 way (a buffered stdin read
a byte at a time, or the C shim's digit-at-a-time loop) costs one call per
length digit plus the rest. Counted with strace on a child whose fd 0 is one
end of a socketpair holding a realistic nginx header and a body.

    python bench/read_syscalls.py
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from parse_request import NGINX_HEADERS  # noqa: E402
from scgi_inetd.protocol import encode_request  # noqa: E402

READERS = {
    "read_request": "from scgi_inetd.reader import read_request\nread_request(0)\n",
    "digit at a time": (
        "import os\n"
        "digits = b''\n"
        "while (byte := os.read(0, 1)) != b':':\n"
        "    digits += byte\n"
        "size, block = int(digits) + 1, b''\n"
        "while len(block) < size:\n"
        "    block += os.read(0, size - len(block))\n"
    ),
}


def count_reads(code: str, request: bytes, workdir: str) -> int:
    """Run `code` under strace with `request` waiting on its fd 0; count reads after a marker."""
    marker = "import os; os.getppid()\n"
    script = Path(workdir) / "reader.py"
    script.write_text(marker + code)
    trace = Path(workdir) / "trace"
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(request)
        subprocess.run(["strace", "-f", "-o", str(trace), "-e", "trace=read,recvfrom,getppid",
                        sys.executable, "-S", str(script)], stdin=theirs, check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = trace.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "getppid" in line)
    return sum(1 for line in lines[start:] if ("read(0," in line or "recvfrom(0," in line))


def main() -> int:
    if not shutil.which("strace"):
        print("strace is not installed (apt-get install strace)")
        return 1
    request = encode_request(NGINX_HEADERS, b"x" * 4096)
    with tempfile.TemporaryDirectory() as workdir:
        counts = {name: count_reads(code, request, workdir) for name, code in READERS.items()}
    print(f"header of {len(request) - 4096} bytes arriving whole on a socket; read/recvfrom calls on fd 0:")
    for name, count in counts.items():
        print(f"  {name:16} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
