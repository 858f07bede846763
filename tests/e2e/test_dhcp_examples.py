"""examples/dhcp/ as written, checked by the DHCP servers themselves.

Booting a machine from them needs a network of its own; what can be proven
here is that both servers accept the files and that each keeps the loop
breaker and the split by architecture: BIOS PXE gets undionly.kpxe, UEFI
x86_64 and arm64 PXE their snponly.efi over TFTP, UEFI HTTP Boot
(HTTPClient) the EFI binary's URL, and iPXE (user-class "iPXE") the boot
menu's URL under the one mount point of examples/nginx.conf.
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


def test_both_examples_break_the_ipxe_loop_and_split_by_architecture():
    dnsmasq = (DHCP / "dnsmasq.conf").read_text().splitlines()
    assert "dhcp-userclass=set:ipxe,iPXE" in dnsmasq
    boots = [line for line in dnsmasq if line.startswith("dhcp-boot=")]
    assert boots[0] == "dhcp-boot=tag:ipxe,http://192.168.1.2/netboot/boot.ipxe"
    assert all(line.startswith("dhcp-boot=tag:!ipxe,") for line in boots[1:])  # the loop breaker
    for match in ("option:client-arch,7", "option:client-arch,9", "option:client-arch,11",
                  "option:client-arch,19"):
        assert any(line.startswith("dhcp-match=set:") and line.endswith(match) for line in dnsmasq), match
    assert "dhcp-vendorclass=set:http,HTTPClient" in dnsmasq
    assert "dhcp-option-force=tag:http,option:vendor-class,HTTPClient" in dnsmasq
    files = {line.rsplit(",", 1)[1] for line in boots}
    assert files == {"http://192.168.1.2/netboot/boot.ipxe", "undionly.kpxe", "snponly.efi", "arm64/snponly.efi",
                     "http://192.168.1.2/netboot/snponly.efi", "http://192.168.1.2/netboot/arm64/snponly.efi"}
    dhcpd = (DHCP / "dhcpd.conf").read_text()
    assert 'if exists user-class and option user-class = "iPXE" {\n        filename "http://192.168.1.2/netboot/boot.ipxe";' in dhcpd
    for text in ('option client-arch = 7 or option client-arch = 9 {\n        filename "snponly.efi";',
                 'option client-arch = 11 {\n        filename "arm64/snponly.efi";',
                 'option vendor-class-identifier "HTTPClient";', 'filename "undionly.kpxe";',
                 'filename "http://192.168.1.2/netboot/arm64/snponly.efi";'):
        assert text in dhcpd, text
