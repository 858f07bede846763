"""bench/run's cost curves: what a request costs as the work grows.

- concurrency: requests/s and p99 latency against wrk's connections, every resident path;
- header size: parse time against the header block's size (bench/parse_request.py's sweep);
- body size: CPU per one-shot request against the request body's size, through nginx and inetd;
- modules: one-shot instructions (or CPU time) against the number of package modules imported.

Each returns a Section: Markdown lines for the report, and the points of its
charts, which bench/charts.py draws as PNGs (bench/run --charts DIR).
"""

from __future__ import annotations

import json
import math
import os
import resource
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import stack
import streaming
from cgi_common import one_request
from measure import WrkResult, run_wrk, tree_cpu_seconds
from oneshot_instructions import count

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

CONNECTIONS = (1, 4, 16, 64)
BODY_SIZES = (0, 1 << 10, 64 << 10, 1 << 20, 10 << 20, 100 << 20)


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]] = field(default_factory=list)
    line: bool = True  # False: points only (programs placed on a curve's axis)
    dashed: bool = False  # a peer's, beside ours


@dataclass
class Chart:
    name: str  # the PNG's file stem
    title: str
    x: str
    y: str
    series: list[Series]
    xlog: bool = False
    ylog: bool = False
    xticks: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Section:
    title: str
    lines: list[str]
    charts: list[Chart] = field(default_factory=list)
    seconds: float = 0.0  # how long it took to measure


def size_label(size: float) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):g} {unit}"
    return f"{size:g} B"


def log_slope(x0: float, y0: float, x1: float, y1: float) -> float:
    """The slope of y against x on log-log axes: 1 is linear growth."""
    return math.log(y1 / y0) / math.log(x1 / x0)


# a. Concurrency.

def concurrency(rows, url, *, seconds: int, levels=CONNECTIONS, skip=lambda row: "") -> Section:
    """wrk -c N -t min(N, 2) --latency on each row at each N; the rows interleaved at each N.

    `rows` are peers.Row; `skip(row)` gives a reason not to time a row, or "".
    """
    timed = [row for row in rows if not row.skipped and not skip(row)]
    results: dict[str, dict[int, WrkResult]] = {row.name: {} for row in timed}
    for level in levels:
        for row in timed:
            results[row.name][level] = run_wrk(url(row.path), seconds=seconds, connections=level,
                                               threads=min(level, 2))
    lines = [f"`wrk -c N -t min(N,2) -d{seconds}s --latency`, one run per point, the paths interleaved at each N;"
             " cells are requests/s / p99 latency in ms (wrk's 99th percentile). Our pool and uWSGI have 4 workers,"
             " fcgiwrap -c 4, the scgi package 4 children; flup is threaded, aioscgi one asyncio process.", "",
             "| path | " + " | ".join(f"{level} connection{'s' * (level > 1)}" for level in levels) + " |",
             "| --- |" + " --- |" * len(levels)]
    rps, p99 = [], []
    for row in rows:
        reason = row.skipped or skip(row)
        if reason:
            lines.append(f"| {row.name} | skipped: {reason} |" + " |" * (len(levels) - 1))
            continue
        cells = []
        for result in results[row.name].values():
            bad = [f"{number} {what}" for number, what in ((result.non_2xx, "non-2xx"),
                                                          (result.socket_errors, "socket errors")) if number]
            cells.append(f"{result.requests_per_s:.0f} / {result.latency_p99_ms:.1f}"
                         + (f" ({', '.join(bad)})" if bad else ""))
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
        peer = row.server != "inetd"
        rps.append(Series(row.name, [(n, r.requests_per_s) for n, r in results[row.name].items()], dashed=peer))
        p99.append(Series(row.name, [(n, r.latency_p99_ms) for n, r in results[row.name].items()], dashed=peer))
    ticks = [(level, str(level)) for level in levels]
    return Section("Requests/s and p99 latency against concurrency", lines, [
        Chart("concurrency-rps", "Requests/s against concurrency (hello)", "wrk connections", "requests/s",
              rps, xlog=True, ylog=True, xticks=ticks),
        Chart("concurrency-p99", "p99 latency against concurrency (hello)", "wrk connections", "p99 latency, ms",
              p99, xlog=True, ylog=True, xticks=ticks)])


# b. Header size.

def header_sizes(python: str, *, number: int) -> Section:
    """bench/parse_request.py's sweep (--sweep-json) run by `python`: µs per parse and per KB."""
    done = subprocess.run([python, "-I", str(BENCH / "parse_request.py"), "--sweep-json", "--number", str(number)],
                          capture_output=True, text=True, check=True, timeout=300)
    data = json.loads(done.stdout)
    parsers, points = data["parsers"], data["points"]
    lines = [f"`{python} bench/parse_request.py --sweep-json --number {number}`: the same nginx header block"
             " with one cookie grown (below 1 KB, fewer headers), parsed in memory; min of 5 interleaved rounds"
             f" (Python {data['python']}).", "",
             "| header block | " + " | ".join(f"{name}: µs per parse, per KB" for name in parsers) + " |",
             "| --- |" + " --- |" * len(parsers)]
    for kilobytes, microseconds in points:
        lines.append(f"| {kilobytes:.1f} KB | "
                     + " | ".join(f"{us:.1f}, {us / kilobytes:.2f}" for us in microseconds) + " |")
    (k0, first), (k1, last) = points[2], points[-1]
    lines.append("")
    lines.append(f"Growth from {k0:.0f} to {k1:.0f} KB ({k1 / k0:.0f}x the bytes), as the slope on log-log axes"
                 " (1 is linear): " + ", ".join(f"{name} {log_slope(k0, a, k1, b):.2f} ({b / a:.0f}x the time)"
                                                for name, a, b in zip(parsers, first, last)) + ".")
    if "sioscgi" not in parsers:
        lines.append("sioscgi: not installed for this interpreter, not timed (aioscgi brings it: a full run installs"
                     " it into the peers' virtualenv).")
    series = [Series(name, [(point[0], point[1][index]) for point in points], dashed=index > 0)
              for index, name in enumerate(parsers)]
    return Section("Parse time against header size", lines, [
        Chart("header-size", "Parse time against header size", "header block, KB", "µs per parse", series,
              xlog=True, ylog=True, xticks=[(point[0], f"{round(point[0], 1):g}") for point in points])])


# c. Body size.

def post(url: str, body: Path, expect: bytes) -> None:
    """One POST of the file `body` with curl; HTTP 200 with `expect` in the answer, the whole body sent."""
    done = subprocess.run(streaming.curl_command(url, body), capture_output=True, timeout=700)
    answer, _, stats = done.stdout.rpartition(b"\n")
    code, _, uploaded = stats.decode().split()
    if code != "200" or int(uploaded) != body.stat().st_size or expect not in answer:
        raise RuntimeError(f"{url}: HTTP {code}, {uploaded} bytes sent, answer {answer[:80]!r}")


def cpu_per_request(request, pids: list[int], seconds: float, settle) -> tuple[list[float], int]:
    """Requests made for `seconds` (at least 2); CPU ms per request of each pid's tree, and the count.

    settle() returns once the last request's time has reached the trees.
    """
    before = [tree_cpu_seconds(pid) for pid in pids]
    started, count = time.monotonic(), 0
    while count < 2 or time.monotonic() - started < seconds:
        request()
        count += 1
    settle()
    return [(tree_cpu_seconds(pid) - cpu) * 1000 / count for pid, cpu in zip(pids, before)], count


def body_sizes(paths, url, *, inetd: int, nginx: int, workdir: Path, sizes=BODY_SIZES, seconds: float) -> Section:
    """CPU per one-shot request of inetd's tree (the handlers it reaped) and of nginx, per body size.

    `paths`: (label, location, text the answer holds; {size} is replaced).
    """
    files = {size: streaming.bulk_file(workdir / f"body-{size}.bin", size) for size in sizes}
    resident = set(stack.children_of(inetd))  # the wait-mode servers; a one-shot handler is reaped by inetd

    def reaped() -> None:
        stack.wait_until(lambda: set(stack.children_of(inetd)) <= resident, timeout=10, what="inetd reaping")

    measured = {label: {} for label, _, _ in paths}
    for size in sizes:
        for label, location, expect in paths:
            answer = expect.format(size=size).encode()
            measured[label][size] = cpu_per_request(lambda: post(url(location), files[size], answer),
                                                    [inetd, nginx], seconds, reaped)
    lines = [f"POST bodies with `curl -T FILE` one at a time for {seconds:g} s per point (at least 2 requests),"
             " nginx spooling each body (its default). CPU ms per request: user + system time of inetd's tree"
             " (the one-shot handler it reaped, and for scgi-run the C program it became), then nginx's.", "",
             "| request body | " + " | ".join(f"{label}: requests, CPU ms/req server, nginx" for label, _, _ in paths)
             + " |", "| --- |" + " --- |" * len(paths)]
    for size in sizes:
        cells = [f"{count}, {cpu[0]:.1f}, {cpu[1]:.1f}"
                 for cpu, count in (measured[label][size] for label, _, _ in paths)]
        lines.append(f"| {size_label(size)} | " + " | ".join(cells) + " |")
    largest = sizes[-1]
    lines.append("")
    lines.append(f"Above the empty body, per MiB at {size_label(largest)}: " + ", ".join(
        f"{label} {(measured[label][largest][0][0] - measured[label][0][0][0]) / (largest / (1 << 20)):.2f} ms"
        for label, _, _ in paths) + " (server), the cost of moving the bytes.")
    ticks = [(index, size_label(size)) for index, size in enumerate(sizes)]
    series = [Series(label, [(index, measured[label][size][0][0]) for index, size in enumerate(sizes)])
              for label, _, _ in paths]
    return Section("CPU per one-shot request against body size", lines, [
        Chart("body-size", "One-shot CPU per request against body size", "request body",
              "CPU ms per request (server)", series, ylog=True, xticks=ticks)])


# d. Package modules imported.

def package_modules(package: Path) -> list[str]:
    """Every module of the package, from its files, sorted."""
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def importtime_modules(argv: list[str], data: bytes) -> list[str]:
    """The modules `argv` (an interpreter and its arguments) imports serving `data` on a socketpair.

    In the order -X importtime finishes them, a module after those it
    imports; once each (importtime lists a module again where an import
    statement finds it half-loaded, as `from .protocol import` in the package does).
    """
    ours, theirs = socket.socketpair()
    with ours, theirs:
        process = subprocess.Popen([argv[0], "-X", "importtime", *argv[1:]], stdin=theirs, stdout=theirs,
                                   stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
        theirs.close()
        if data:
            ours.sendall(data)
        while ours.recv(65536):
            pass
        lines = process.communicate(timeout=60)[1].decode().splitlines()
    names = [line.rpartition("|")[2].strip() for line in lines if line.startswith("import time:")]
    return list(dict.fromkeys(names))


def ours(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] == "scgi_inetd"]


def import_command(python: str, modules: list[str]) -> list[str]:
    """Import `modules` and end as the programs do (logsink.exit_now): _exit, no teardown.

    posix, not os: os is not loaded yet in an interpreter started with -S.
    """
    code = f"import sys; sys.path.insert(0, {str(REPO)!r})" + ("; import " + ", ".join(modules) if modules else "")
    return [python, "-I", "-S", "-c", code + "; import posix; posix._exit(0)"]


HOW_COUNTED = {True: "instructions, by valgrind callgrind: every one from exec to exit (for scgi-run, until it"
                     " execs the C hello); instructions barely vary with load",
               False: "CPU time, user + system, of the process (valgrind callgrind counts instructions instead"
                      " where it is installed, except under --quick)"}


def one_shot_cost(argv: list[str], data: bytes, workdir: Path, instructions: bool,
                  runs: int) -> tuple[float, bytes]:
    """Millions of instructions (valgrind callgrind, as bench/oneshot_instructions.py counts them) or
    the mean CPU ms of `runs` runs (children's rusage: call it from one thread); and the answer."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"}
    if instructions:
        counted, answer = count(argv, data, env, workdir)
        return counted / 1e6, answer
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(runs):
        answer = one_request(argv, data, env)[1]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000 / runs, answer


def interpolate(line: list[tuple[float, float]], x: float) -> float:
    """y at x on the polyline through `line` (sorted by x, x within it)."""
    for (x0, y0), (x1, y1) in zip(line, line[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return float("nan")


def modules_curve(python: str, programs, *, workdir: Path, every: int | None, instructions: bool,
                  runs: int = 20) -> Section:
    """One-shot cost of importing the first k of the package's modules, and of each real program,
    placed on the same axis by the package modules it loads serving one request.

    k: 0, every, 2 * every, ... all (every None: 0 and all), and each program's count. Counted:
    instructions (valgrind) or CPU time of `runs` runs.
    The order: the programs' modules first (as they load them), then the rest.
    `programs`: (label, argv, request bytes, text its answer holds).
    """
    program_imports = [importtime_modules(argv, data) for _, argv, data, _ in programs]
    theirs = [ours(modules) for modules in program_imports]
    everything = ours(importtime_modules(import_command(python, package_modules(REPO / "scgi_inetd")), b""))
    order = list(dict.fromkeys([*(name for modules in theirs for name in modules), *everything]))
    steps = sorted({0, len(order), *(len(modules) for modules in theirs), *range(0, len(order), every or len(order))})
    series_commands = [(f"import the first {k}", import_command(python, order[:k]), b"", b"") for k in steps]
    commands = series_commands + list(programs)
    imported = [importtime_modules(argv, b"") for _, argv, _, _ in series_commands] + program_imports
    with ThreadPoolExecutor(2 if instructions else 1) as pool:  # instruction counts do not depend on load
        costs = list(pool.map(lambda c: one_shot_cost(c[1], c[2], workdir, instructions, runs), commands))
    for (label, _, _, expect), (_, answer) in zip(commands, costs):
        if expect not in answer:
            raise RuntimeError(f"{label}: answered {answer[:120]!r}")
    loaded = [len(ours(modules)) for modules in imported]
    if loaded[:len(steps)] != steps:
        raise RuntimeError(f"the first k modules in {order} load {loaded[:len(steps)]} modules, not {steps}")
    unit = "M instructions" if instructions else f"CPU ms (mean of {runs} runs)"
    line = [(k, cost) for k, (cost, _) in zip(steps, costs)]
    lines = [f"Each command on a socketpair as inetd starts it ({python} -I -S, PYTHONHASHSEED=0); counted:"
             f" {HOW_COUNTED[instructions]}. The import series is `python -I -S -c \"import sys;"
             " sys.path.insert(0, CHECKOUT); import scgi_inetd.a, ...; import posix; posix._exit(0)\"` (ending as the"
             " programs end, without the interpreter's teardown) with the first k of the package's"
             f" {len(order)} modules, in a fixed order: those the programs below load, in the order they load them,"
             " then the rest in the order importing them all finishes them (a module after those it imports), so"
             " the first k load exactly k (checked). A program's package modules are those `-X importtime` lists"
             " while it serves one request (the package itself included); all modules: every one it lists, the"
             " standard library's included.", "",
             f"| command | package modules | all modules | {unit} | above the import series at that count |",
             "| --- | --- | --- | --- | --- |"]
    for index, (label, *_rest) in enumerate(commands):
        above = "" if index < len(steps) else f"{costs[index][0] - interpolate(line, loaded[index]):+.2f}"
        lines.append(f"| {label} | {loaded[index]} | {len(imported[index])} | {costs[index][0]:.2f} | {above} |")
    most = max(len(modules) for modules in theirs)
    base, middle, top = line[0][1], interpolate(line, most), line[-1][1]
    lines.append("")
    lines.append(f"Each module the programs load adds {(middle - base) / most:.2f} {unit.split(' (')[0]} on average"
                 f" (0 to {most} modules); each of the other {len(order) - most}, with the standard library modules"
                 f" they bring ({len(imported[len(steps) - 1])} modules in all at {len(order)}),"
                 f" {(top - middle) / (len(order) - most):.2f}. A program's excess over the series is its request's"
                 " own work.")
    series = [Series("import the first N package modules", line)]
    series += [Series(label, [(loaded[index], costs[index][0])], line=False)
               for index, (label, *_rest) in enumerate(commands) if index >= len(steps)]
    return Section("One-shot cost against package modules imported", lines, [
        Chart("modules", "One-shot cost against package modules imported", "package modules loaded",
              unit, series)])


# Charts.

def python_with(module: str, candidates: list[str]) -> str | None:
    """The first of the interpreters that can import `module`."""
    for python in candidates:
        if os.path.exists(python) and subprocess.run([python, "-I", "-c", f"import {module}"],
                                                     capture_output=True).returncode == 0:
            return python
    return None


def draw(sections: list[Section], directory: Path, python: str, workdir: Path) -> list[Path]:
    """bench/charts.py, run by `python`, draws every chart into `directory`; the PNGs written."""
    charts = [asdict(chart) for section in sections for chart in section.charts]
    data = workdir / "charts.json"
    data.write_text(json.dumps(charts))
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-I", str(BENCH / "charts.py"), str(data), str(directory)], check=True, timeout=120)
    return [directory / f"{chart['name']}.png" for chart in charts]
