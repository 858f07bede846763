"""`scgi-bootmenu CONFIG check`: every error reported with its key path, exit 1."""

from __future__ import annotations

import io
import shutil

import pytest

from scgi_inetd.bootmenu import config as configuration
from scgi_inetd.bootmenu import loader
from scgi_inetd.bootmenu.cli import main
from tests.bootmenu_helpers import write_config
from tests.support import EXAMPLES

GOOD_RULE = '\n[[rules]]\nname = "r1"\nmatch = { mac = "52:54:00:12:34:56" }\n'


def run_check(path, *extra_args):
    out, err = io.StringIO(), io.StringIO()
    status = main([*extra_args, str(path), "check"], stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def replace(text, old, new):
    assert old in text
    return text.replace(old, new, 1)


# (name, edit of the BASE text, expected "key.path: message" fragment)
CASES = [
    ("unknown top-level key", lambda t: t + "\n[extra]\nx = 1\n", "extra: unknown key"),
    ("unknown server key", lambda t: replace(t, "[server]\n", "[server]\nport = 1\n"), "server.port: unknown key"),
    ("unknown entry key", lambda t: replace(t, 'kind = "memtest"', 'kind = "memtest"\ninitrd = "x"'),
     "entries[2].initrd: unknown key"),
    ("relative state path", lambda t: t.replace('state = "/', 'state = "'), "server.state: must be an absolute path"),
    ("missing state", lambda t: replace(t, 'state = "', 'stat_e = "'), "server.state: missing"),
    ("missing kernel", lambda t: replace(t, 'kernel = "{{base}}/memtest86+.bin"', ""), "entries[2].kernel: missing"),
    ("missing kind", lambda t: replace(t, 'kind = "shell"', ""), "entries[3].kind: missing"),
    ("unknown kind", lambda t: replace(t, 'kind = "shell"', 'kind = "bash"'), "entries[3].kind: unknown kind 'bash'"),
    ("missing menu default", lambda t: replace(t, 'default = "local"', ""), "menu.default: missing"),
    ("dangling default", lambda t: replace(t, 'default = "local"', 'default = "windows"'),
     "menu.default: dangling default: no entry named 'windows'"),
    ("dangling rule default", lambda t: t + GOOD_RULE + 'default = "gone"\n',
     "rules[0].default: dangling default: no entry named 'gone'"),
    ("default not shown", lambda t: replace(t, "timeout = 7", 'timeout = 7\nentries = ["install"]'),
     "menu.default: 'local' is not in menu.entries"),
    ("unknown entry in list", lambda t: replace(t, "timeout = 7", 'timeout = 7\nentries = ["local", "x"]'),
     "menu.entries[1]: no entry named 'x'"),
    ("bad MAC", lambda t: t + '\n[[rules]]\nname = "r"\nmatch = { mac = "52:54:00:12:34" }\n',
     "rules[0].match.mac: bad MAC address '52:54:00:12:34'"),
    ("bad MAC in a list", lambda t: t + '\n[[rules]]\nname = "r"\nmatch = { mac = ["525400123456", "zz"] }\n',
     "rules[0].match.mac[1]: bad MAC address 'zz'"),
    ("bad CIDR", lambda t: t + '\n[[rules]]\nname = "r"\nmatch = { ip = "10.0.0.1/8" }\n',
     "rules[0].match.ip: bad IPv4 address or CIDR '10.0.0.1/8'"),
    ("bad CIDR length", lambda t: t + '\n[[rules]]\nname = "r"\nmatch = { ip = "10.0.0.0/40" }\n',
     "rules[0].match.ip: bad IPv4"),
    ("bad uuid", lambda t: t + '\n[[rules]]\nname = "r"\nmatch = { uuid = "1234" }\n', "rules[0].match.uuid: bad UUID"),
    ("bad platform", lambda t: t + '\n[[rules]]\nname = "r"\nmatch = { platform = "bios" }\n',
     "rules[0].match.platform: bad platform 'bios'"),
    ("empty match", lambda t: t + '\n[[rules]]\nname = "r"\nmatch = {}\n', "rules[0].match: needs at least one"),
    ("unknown match key", lambda t: t + '\n[[rules]]\nname = "r"\nmatch = { vendor = "x" }\n',
     "rules[0].match.vendor: unknown key"),
    ("newline in a value", lambda t: replace(t, 'kind = "local"', 'kind = "local"\nlabel = "a\\nshell"'),
     "entries[0].label: newline or other control character"),
    ("newline in a multi-line string", lambda t: replace(t, 'title = "Menu for {{hostname}}"', 'title = """x\nMenu"""'), "menu.title: newline"),
    ("escape in a variable", lambda t: replace(t, 'role = "none"', 'role = "a\\u001bb"'), "variables.role: newline or other"),
    ("control character in a file", lambda t: t.replace("string boot.example", "string \\u0007"),
     "files.preseed: control character other than newline or tab"),
    ("duplicate entry names", lambda t: t + '\n[[entries]]\nname = "local"\nkind = "exit"\n',
     "entries[5].name: duplicate entry name 'local'"),
    ("duplicate rule names", lambda t: t + GOOD_RULE + GOOD_RULE, "rules[1].name: duplicate rule name 'r1'"),
    ("bad entry name", lambda t: replace(t, 'name = "rescue"', 'name = "_menu"'), "entries[3].name: '_menu'"),
    ("unknown variable", lambda t: replace(t, '{{base}}/memtest86+.bin', '{{bsae}}/memtest86+.bin'),
     "entries[2].kernel: unknown variable {{bsae}}"),
    ("reserved variable", lambda t: replace(t, 'role = "none"', 'mac = "x"'), "variables.mac: reserved"),
    ("undeclared rule variable", lambda t: t + GOOD_RULE + 'variables = { colour = "red" }\n',
     "rules[0].variables.colour: not declared in [variables]"),
    ("bad timeout", lambda t: replace(t, "timeout = 7", "timeout = -1"), "menu.timeout: must be a number"),
    ("boolean timeout", lambda t: replace(t, "timeout = 7", "timeout = true"), "menu.timeout: must be a number"),
    ("wrong type", lambda t: replace(t, 'initrd = ["', 'initrd = [1, "'), "entries[1].initrd[0]: must be a string"),
    ("option-like label", lambda t: replace(t, 'kind = "local"', 'kind = "local"\nlabel = "--gap"'),
     "entries[0].label: must not start with '-'"),
    ("chained command", lambda t: replace(t, '{{base}}/memtest86+.bin', '{{base}}/m.bin || shell'),
     "entries[2].kernel: '||' or '&&' would start another iPXE command"),
    ("TOML syntax", lambda t: t + "\n[menu\n", "TOML: "),
    ("duplicate TOML table", lambda t: t + "\n[menu]\n", "TOML: "),
]


@pytest.mark.parametrize("name, edit, expected", CASES, ids=[case[0] for case in CASES])
def test_check_reports_key_path(tmp_path, name, edit, expected):
    path = write_config(tmp_path, init=False)
    path.write_text(edit(path.read_text()))
    status, out, err = run_check(path, "--cache", "")
    assert status == 1, out
    assert expected in err, err
    assert f"{path}: " in err


def test_check_lists_every_error(tmp_path):
    path = write_config(tmp_path, init=False)
    text = path.read_text().replace('default = "local"', 'default = "x"').replace("timeout = 7", "timeout = -1")
    path.write_text(text + "\n[extra]\n")
    status, _, err = run_check(path, "--cache", "")
    assert status == 1
    assert "menu.default" in err and "menu.timeout" in err and "extra: unknown key" in err
    assert "3 errors" in err


def test_base_config_is_valid_and_check_writes_the_cache(tmp_path):
    path = write_config(tmp_path, GOOD_RULE, init=False)
    status, out, err = run_check(path)
    assert (status, err) == (0, "")
    assert "ok: 5 entries, 1 rules, 1 files" in out
    cache = str(path) + ".cache"
    cached = loader._read_cache(cache, path.read_bytes())
    parsed = configuration.parse(path.read_bytes())
    assert len(cached["rules"]) == 1 and list(cached["rules"]) == parsed["rules"]
    assert dict(cached, rules=parsed["rules"]) == parsed
    assert loader._read_cache(cache, path.read_bytes() + b"\n") is None


def test_example_config_is_valid(tmp_path):
    copy = tmp_path / "bootmenu.toml"
    shutil.copy(EXAMPLES / "bootmenu.toml", copy)
    status, out, err = run_check(copy)
    assert (status, err) == (0, ""), err


def test_stale_cache_is_never_used(tmp_path):
    path = write_config(tmp_path, init=False)
    cache = str(tmp_path / "c")
    first = loader.load(str(path), cache)
    path.write_text(path.read_text().replace('title = "Menu', 'title = "Other'))
    second = loader.load(str(path), cache)
    assert first["menu"]["title"] != second["menu"]["title"]
    path.write_text(path.read_text() + "\n[bad]\n")
    with pytest.raises(loader.ConfigError, match="bad: unknown key"):
        loader.load(str(path), cache)


def test_missing_file(tmp_path):
    status, _, err = run_check(tmp_path / "none.toml")
    assert status == 1 and "cannot read" in err


def test_usage_errors(tmp_path):
    path = write_config(tmp_path)
    err = io.StringIO()
    assert main([str(path), "frobnicate"], stderr=err) == 2
    assert main([], stderr=err) == 2
    assert main([str(path), "next", "zz", "local"], stderr=err) == 2
    assert "bad MAC address 'zz'" in err.getvalue()
    assert main([str(path), "next", "52:54:00:12:34:56", "nope"], stderr=err) == 1
    assert "no entry named 'nope'" in err.getvalue()

