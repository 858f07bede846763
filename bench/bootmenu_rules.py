"""Matching one request against 1,000 host rules, in process.

Three rule sets of 1,000: MAC rules (indexed), CIDR rules (scanned), and a
mix (800 MAC, 100 hostname, 100 CIDR/platform). Reports the mean time of
rules.matching + rules.settings per request, and of a whole menu render.

    /usr/bin/python3.11 bench/bootmenu_rules.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scgi_inetd.bootmenu import config as configuration  # noqa: E402
from scgi_inetd.bootmenu import ipxe, menu, rules  # noqa: E402

ENTRIES = [{"name": "local", "kind": "local"}, {"name": "memtest", "kind": "memtest", "kernel": "m"}]


def document(rule_list: list[dict]) -> dict:
    return {"server": {"state": "/x"}, "menu": {"default": "local"}, "entries": ENTRIES, "rules": rule_list}


def mac(i: int) -> str:
    return f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}"


SETS = {
    "1000 mac rules": [{"name": f"r{i}", "match": {"mac": mac(i)}, "default": "memtest"} for i in range(1000)],
    "1000 cidr rules": [{"name": f"r{i}", "match": {"ip": f"10.{i >> 8}.{i & 255}.0/24"}, "timeout": 1}
                        for i in range(1000)],
    "mixed 1000": ([{"name": f"m{i}", "match": {"mac": mac(i)}} for i in range(800)]
                   + [{"name": f"h{i}", "match": {"hostname": f"host{i}"}} for i in range(100)]
                   + [{"name": f"c{i}", "match": {"ip": f"10.9.{i}.0/24", "platform": "efi"}} for i in range(100)]),
}
MACHINE = {"mac": mac(777), "ip": "10.3.9.15", "platform": "efi", "hostname": "host50"}


def per_call(function, count: int = 2000) -> float:
    start = time.perf_counter()
    for _ in range(count):
        function()
    return (time.perf_counter() - start) / count * 1000


def main() -> None:
    for name, rule_list in SETS.items():
        config = configuration.validate(document(rule_list))
        matched = rules.matching(config, MACHINE)
        match_ms = per_call(lambda: rules.settings(config, rules.matching(config, MACHINE)))
        render_ms = per_call(lambda: ipxe.render(menu.resolve(config, MACHINE)))
        print(f"{name:16s} matched {len(matched):3d}  match {match_ms:.4f} ms  match+render {render_ms:.4f} ms")


if __name__ == "__main__":
    main()
