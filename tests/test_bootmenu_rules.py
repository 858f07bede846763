"""Rule matching: the index gives the same answer as checking every rule, and
precedence is most specific first, then file order."""

from __future__ import annotations

import time

from hypothesis import given, settings, strategies as st

from scgi_inetd.bootmenu import config as configuration
from scgi_inetd.bootmenu import rules

ENTRIES = [{"name": "a", "kind": "local"}, {"name": "b", "kind": "exit"}]
MACS = ["52:54:00:00:00:01", "52:54:00:00:00:02"]
CIDRS = ["10.0.0.0/8", "10.0.2.0/24", "10.0.2.15", "0.0.0.0/0", "192.168.0.0/16"]


def build(rule_list):
    return configuration.validate({"server": {"state": "/x"}, "menu": {"default": "a"}, "entries": ENTRIES,
                                   "rules": rule_list})


def naive(config, machine):
    """Every rule, checked by the written-down precedence."""
    found = []
    for i, rule in enumerate(config["rules"]):
        match = rule["match"]
        if any(machine.get(key) not in match[key] for key in ("mac", "uuid", "serial", "hostname", "buildarch",
                                                               "platform") if key in match):
            continue
        prefix = 0
        if "ip" in match:
            if "ip" not in machine:
                continue
            octets = [int(part) for part in machine["ip"].split(".")]
            address = octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3]
            lengths = [length for network, length in match["ip"]
                       if length == 0 or address >> (32 - length) == network >> (32 - length)]
            if not lengths:
                continue
            prefix = max(lengths) + 1
        machine_keys = sum(key in match for key in ("mac", "uuid", "serial", "hostname"))
        kinds = sum(key in match for key in ("buildarch", "platform"))
        found.append(((machine_keys, prefix, kinds), i))
    found.sort(key=lambda item: (item[0], -item[1]), reverse=True)
    return [i for _, i in found]


MATCHES = st.fixed_dictionaries({}, optional={
    "mac": st.lists(st.sampled_from(MACS), min_size=1, max_size=2, unique=True),
    "hostname": st.sampled_from(["db1", "db2"]),
    "serial": st.sampled_from(["S1", "S 2"]),
    "ip": st.lists(st.sampled_from(CIDRS), min_size=1, max_size=3, unique=True),
    "platform": st.sampled_from(["efi", "pcbios"]),
    "buildarch": st.sampled_from(["x86_64", "i386"]),
}).filter(bool)
MACHINE = st.fixed_dictionaries({}, optional={
    "mac": st.sampled_from(MACS), "hostname": st.sampled_from(["db1", "db2"]), "serial": st.sampled_from(["S1", "S 2"]),
    "ip": st.sampled_from(["10.0.2.15", "10.0.3.1", "192.168.1.1", "8.8.8.8"]),
    "platform": st.sampled_from(["efi", "pcbios"]), "buildarch": st.sampled_from(["x86_64", "i386"])})


@settings(max_examples=300)
@given(st.lists(MATCHES, max_size=12), MACHINE)
def test_index_agrees_with_checking_every_rule(matches, machine):
    config = build([{"name": f"r{i}", "match": match} for i, match in enumerate(matches)])
    assert rules.matching(config, machine) == naive(config, machine)


def test_settings_first_rule_that_sets_it_wins():
    config = build([
        {"name": "wide", "match": {"ip": "10.0.0.0/8"}, "default": "b", "timeout": 1, "variables": {"hostname": "w"}},
        {"name": "narrow", "match": {"ip": "10.0.2.0/24"}, "entries": ["a"]},
        {"name": "efi", "match": {"platform": "efi"}, "timeout": 9},
    ])
    decided = rules.settings(config, rules.matching(config, {"ip": "10.0.2.15", "platform": "efi"}))
    assert decided == {"default": "b", "timeout": 1, "entries": ["a"], "variables": {"hostname": "w"},
                       "rules": ["narrow", "wide", "efi"]}
    decided = rules.settings(config, rules.matching(config, {"ip": "172.16.0.1"}))
    assert decided["rules"] == [] and decided["default"] == "a" and decided["timeout"] == 10


def test_thousand_rules_match_within_a_millisecond():
    """A loose guard (the bench has the real figures): 1,000 CIDR rules, all scanned."""
    config = build([{"name": f"r{i}", "match": {"ip": f"10.{i >> 8}.{i & 255}.0/24"}} for i in range(1000)])
    machine = {"ip": "10.3.9.15"}
    start = time.perf_counter()
    for _ in range(100):
        matched = rules.settings(config, rules.matching(config, machine))
    assert (time.perf_counter() - start) / 100 < 0.005  # 5x slack for a busy test machine
    assert matched["rules"] == ["r777"]
