"""examples/dhcp/ as written, checked by the DHCP servers themselves.

Booting a machine from them needs a network of its own; what can be proven
here is that both servers accept the files and that each keeps the loop
breaker: plain PXE gets undionly.kpxe over TFTP, iPXE (user-class "iPXE")
gets the HTTP URL of the boot menu instead of loading iPXE again.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import require_programs, stack

DHCP = stack.EXAMPLES / "dhcp"


def check(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("name, command", [
    ("dnsmasq.conf", ["dnsmasq", "--test", "-C"]),
    ("dhcpd.conf", ["dhcpd", "-t", "-cf"]),
])
def test_dhcp_servers_accept_the_examples_and_refuse_a_broken_copy(name, command, tmp_path):
    require_programs(command[0])
    program = stack.find_program(command[0])
    text = (DHCP / name).read_text()
    result = check([program, *command[1:], str(DHCP / name)])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / name
    broken.write_text(text + "\nthis is not a valid line {\n")
    assert check([program, *command[1:], str(broken)]).returncode != 0


def test_both_examples_break_the_ipxe_loop():
    dnsmasq = (DHCP / "dnsmasq.conf").read_text()
    assert "dhcp-userclass=set:ipxe,iPXE" in dnsmasq
    assert "dhcp-boot=tag:!ipxe,undionly.kpxe" in dnsmasq
    assert "dhcp-boot=tag:ipxe,http://" in dnsmasq
    dhcpd = (DHCP / "dhcpd.conf").read_text()
    assert 'option user-class = "iPXE"' in dhcpd
    assert 'filename "undionly.kpxe"' in dhcpd and 'filename "http://' in dhcpd
