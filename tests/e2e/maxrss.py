"""Run a program as inetd would, the connection on fds 0-2, and record its peak RSS in KiB.

`maxrss.py PREFIX PROGRAM ARGS...` writes PREFIX.PID. Linux keeps a
process's high-water mark across execve, so for a shim that execs its
script this is the larger of the two (and of this launcher at fork time).
"""

import os
import sys

prefix, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execv(argv[0], argv)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)  # the connection belongs to the program alone
_, _, usage = os.wait4(pid, 0)
with open(f"{prefix}.{pid}", "w") as report:
    report.write(f"{usage.ru_maxrss}\n")
