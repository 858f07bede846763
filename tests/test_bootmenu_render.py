"""Renderers over hypothesis-generated configs: every iPXE script and PXELINUX
file is structurally sound whatever the config and the machine."""

from __future__ import annotations

import string

from hypothesis import given, settings, strategies as st

from scgi_inetd.bootmenu import config as configuration
from scgi_inetd.bootmenu import identity as ident
from scgi_inetd.bootmenu import ipxe, menu, pxelinux

NAMES = st.text(string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=12).filter(
    lambda name: name[0].isalnum())
TEXT = st.builds(
    lambda text, setting: text + setting,
    st.text(string.ascii_letters + string.digits + " ./:=?&$-_|#'\"()+,", min_size=1, max_size=30).filter(
        lambda text: text.strip() and not text.lstrip().startswith("-") and not {"||", "&&"} & set(text.split())),
    st.sampled_from(["", " ${net0/ip}", "{{base}}", " {{mac}}"]))
MACS = st.sampled_from(["52:54:00:00:00:01", "52:54:00:00:00:02", "aa:bb:cc:dd:ee:ff"])
CIDRS = st.sampled_from(["10.0.0.0/8", "10.0.2.0/24", "10.0.2.15/32", "0.0.0.0/0", "192.168.0.0/16"])


@st.composite
def entries(draw):
    names = draw(st.lists(NAMES, min_size=1, max_size=8, unique=True))
    out = []
    for name in names:
        kind = draw(st.sampled_from(sorted(configuration.KINDS)))
        entry = {"name": name, "kind": kind}
        if draw(st.booleans()):
            entry["label"] = draw(TEXT)
        if kind in ("linux", "memtest"):
            entry["kernel"] = draw(TEXT)
            if draw(st.booleans()):
                entry["args"] = draw(TEXT)
            if kind == "linux" and draw(st.booleans()):
                entry["initrd"] = draw(st.lists(TEXT, min_size=1, max_size=3))
        elif kind in ("chain", "sanboot"):
            entry["url"] = draw(TEXT)
        elif kind == "script":
            entry["lines"] = draw(st.lists(TEXT.map(lambda text: "echo " + text), min_size=1, max_size=3))
        out.append(entry)
    return out


@st.composite
def documents(draw):
    raw_entries = draw(entries())
    names = [entry["name"] for entry in raw_entries]
    shown = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    document = {
        "server": {"state": "/nonexistent/state.sqlite"},
        "variables": {"base": draw(TEXT)},
        "menu": {"title": draw(TEXT), "default": draw(st.sampled_from(shown)), "entries": shown,
                 "timeout": draw(st.integers(0, 600) | st.floats(0, 600))},
        "entries": raw_entries,
        "rules": [],
    }
    for i in range(draw(st.integers(0, 5))):
        match = draw(st.fixed_dictionaries({}, optional={
            "mac": MACS, "ip": CIDRS, "platform": st.sampled_from(["pcbios", "efi"])}).filter(bool))
        rule = {"name": f"rule{i}", "match": match}
        if draw(st.booleans()):
            rule["default"] = draw(st.sampled_from(names))
        if draw(st.booleans()):
            rule["entries"] = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
            if "default" in rule and rule["default"] not in rule["entries"]:
                rule["entries"].append(rule["default"])
        if draw(st.booleans()):
            rule["timeout"] = draw(st.integers(0, 60))
        document["rules"].append(rule)
    return document


MACHINES = st.fixed_dictionaries({}, optional={
    "mac": MACS, "ip": st.sampled_from(["10.0.2.15", "192.168.1.1", "8.8.8.8"]),
    "platform": st.sampled_from(["pcbios", "efi"]), "hostname": st.sampled_from(["db1", "a-b.example"]),
    "uuid": st.uuids().map(str)})


def check_ipxe(script: str, forced: str | None) -> None:
    assert script.startswith("#!ipxe\n") and script.endswith("\n")
    lines = script[:-1].split("\n")
    assert all(line.isprintable() and line.strip() for line in lines)
    labels = [line[1:] for line in lines if line.startswith(":")]
    assert len(labels) == len(set(labels)), "duplicate label"
    items = [line.split()[1] for line in lines if line.startswith("item ")]
    assert len(items) == len(set(items)) and items
    for item in items:
        assert item in labels, f"item {item} has no section"
    chooses = [line for line in lines if line.startswith("choose ")]
    assert len(chooses) == 1 and chooses[0].endswith(" selected || exit")
    words = chooses[0].split()
    if "--default" in words:
        assert words[words.index("--default") + 1] in items
    for line in lines:
        words = line.split()
        for i, word in enumerate(words[:-1]):
            if word == "goto" and words[i + 1] != "${selected}":
                assert words[i + 1] in labels, f"goto {words[i + 1]} has no label"
    assert lines[lines.index(chooses[0]) + 1] == "goto ${selected}"
    if forced:
        assert lines[2] == f"goto {forced}"


PXELINUX_DIRECTIVES = ("#", "UI ", "MENU TITLE ", "DEFAULT ", "TIMEOUT ", "PROMPT ", "LABEL ")
LABEL_DIRECTIVES = ("MENU LABEL ", "LINUX ", "KERNEL ", "INITRD ", "APPEND ", "LOCALBOOT ")


def check_pxelinux(text: str, forced: str | None) -> None:
    lines = text[:-1].split("\n")
    assert all(line.isprintable() for line in lines)
    labels = []
    for line in lines:
        if line.startswith("  "):
            assert line[2:].startswith(LABEL_DIRECTIVES), line
        elif line:
            assert line.startswith(PXELINUX_DIRECTIVES), line
            if line.startswith("LABEL "):
                labels.append(line[6:])
    assert len(labels) == len(set(labels))
    blocks = text.split("\nLABEL ")[1:]
    for block in blocks:
        booters = [line for line in block.split("\n") if line.startswith(("  LINUX ", "  KERNEL ", "  LOCALBOOT "))]
        assert len(booters) == 1, block
    defaults = [line[8:] for line in lines if line.startswith("DEFAULT ")]
    assert len(defaults) <= 1 and all(default in labels for default in defaults)
    timeouts = [line for line in lines if line.startswith("TIMEOUT ")]
    assert len(timeouts) == 1 and timeouts[0][8:].isdigit()
    if forced and forced in labels:
        assert defaults == [forced] and "PROMPT 0" in lines and not any(line.startswith("UI ") for line in lines)


@settings(max_examples=300, deadline=None)
@given(documents(), MACHINES, st.data())
def test_every_rendered_script_is_well_formed(document, machine, data):
    config = configuration.validate(document)
    forced = data.draw(st.none() | st.sampled_from(sorted(config["entries"])))
    resolved = menu.resolve(config, machine, forced)
    check_ipxe(ipxe.render(resolved), forced)
    check_pxelinux(pxelinux.render(resolved), forced)
    assert resolved["default"] in [entry["name"] for entry in resolved["entries"]]


@given(st.dictionaries(st.sampled_from(ident.QUERY_NAMES), st.text(), max_size=13))
def test_any_request_values_render_safely(params):
    document = {
        "server": {"state": "/nonexistent"},
        "variables": {"hostname": "x"},
        "menu": {"default": "a", "title": "{{hostname}} {{mac}} {{uuid}} {{ip}} {{buildarch}} {{platform}}"},
        "entries": [{"name": "a", "kind": "linux", "kernel": "k", "args": "h={{hostname}} m={{mac_hyphen}}"}],
        "rules": [{"name": "r", "match": {"hostname": "db1"}, "default": "a"}],
    }
    config = configuration.validate(document)
    resolved = menu.resolve(config, ident.from_query(params))
    for text in (ipxe.render(resolved), pxelinux.render(resolved)):
        assert all(line.isprintable() for line in text[:-1].split("\n"))
    assert len(ipxe.render(resolved).split("\n")) == len(ipxe.render(menu.resolve(config, {})).split("\n"))


def test_chain_back_is_well_formed():
    script = ipxe.chain_back()
    assert script.startswith("#!ipxe\n") and script.count("\n") == 2
    assert "serial_hex=${serial:hexhyp}" in script and "mac=${net0/mac:hexhyp}&" in script
    # Outside ${...}, no ':' (iPXE would read a relative URL as having a scheme).
    query = script.split("\n")[1]
    while "${" in query:
        start = query.index("${")
        query = query[:start] + query[query.index("}", start) + 1:]
    assert ":" not in query and "uristring" not in script
