"""Every program and boot-menu subcommand: -h/--help, --version, and one-line usage errors (exit 2).

The programs run as installed commands (tests/support.py python_cmd); the
help each prints must list every option the table in scgi_inetd.options
gives it, so help cannot drift from what is parsed.
"""

from __future__ import annotations

import subprocess

import pytest

from scgi_inetd import __version__
from scgi_inetd.options import options_of
from scgi_inetd.usage import PROGRAMS
from tests.support import child_env, python_cmd


def command(program: str, *args: str) -> list[str]:
    """argv for `program`, a subcommand ('scgi-bootmenu check') getting a CONFIG first."""
    name, _, sub = program.partition(" ")
    return python_cmd(name, *(["no-such-config.toml", sub] if sub else []), *args)


def run(program: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(program, *args), env=child_env(), capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_lists_every_option_and_exits_0(program, flag):
    result = run(program, flag)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(f"usage: {program.partition(' ')[0]}")
    for names, *_ in options_of(program):
        for name in names.split():
            assert f"{name} " in result.stdout or f"{name}\n" in result.stdout or f"{name}," in result.stdout, name


@pytest.mark.parametrize("program", PROGRAMS)
def test_version(program):
    result = run(program, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{program.split()[0]} {__version__}\n", "")


def usage_errors():
    for program in PROGRAMS:
        yield program, ["--no-such-option"], "unknown option '--no-such-option'"
        valued = [names.split()[-1] for names, _, _, _, convert, *_ in options_of(program) if convert]
        if valued:
            yield program, [valued[0]], f"{valued[0]} needs a value"
        flags = [names.split()[-1] for names, _, _, _, convert, *_ in options_of(program) if not convert]
        if flags:
            yield program, [f"{flags[0]}=1"], f"{flags[0]} takes no value"
    yield "scgi-run", ["--max-children", "many", "x"], "--max-children needs a number, not 'many'"
    yield "scgi-wsgi", ["--grace", "-1", "app:app"], "--grace must be at least 0, not '-1'"
    # A --stderr log that cannot be opened is no usage error: it is answered
    # (503), and said where it can be read (tests/test_failures_answered.py).
    yield "scgi-bootmenu", [], "CONFIG is missing"
    yield "scgi-bootmenu render", ["--format", "svg"], "--format is ipxe or pxelinux or grub, not 'svg'"
    yield "scgi-bootmenu next", ["only-a-mac"], "needs MAC and ENTRY"
    yield "scgi-call", [], "give an address (unix:PATH or HOST:PORT) or --exec COMMAND"
    yield "scgi-call", ["--timeout", "0", "unix:/x"], "--timeout must be greater than 0, not '0'"


@pytest.mark.parametrize("program, args, message", list(usage_errors()))
def test_usage_error_is_one_line_naming_it_and_exit_2(program, args, message):
    result = run(program, *args)
    name, _, sub = program.partition(" ")
    where = f"{name} CONFIG {sub} --help" if sub else f"{name} --help"
    prefix = f"{name}: {sub}: " if sub else f"{name}: "
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"{prefix}{message} (see '{where}')\n"


def test_render_takes_every_identity_key():
    from scgi_inetd.bootmenu import identity

    assert {names for names, *_ in options_of("scgi-bootmenu render")} == {f"--{key}" for key in identity.KEYS} | {
        "--format"}


def test_attributes_are_unique_across_the_table():
    """ServeOptions() carries every default, so two entries must not share an attribute."""
    from scgi_inetd.options import OPTIONS

    attributes = [attribute for _, _, attribute, *_ in OPTIONS]
    assert len(attributes) == len(set(attributes))


def test_every_subcommand_has_usage():
    """A boot-menu subcommand without an entry in PROGRAMS would have no --help (and so no test here)."""
    from scgi_inetd.bootmenu.cli import _COMMANDS

    assert {f"scgi-bootmenu {command}" for command in _COMMANDS} <= set(PROGRAMS)
