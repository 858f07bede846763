"""scgi-run finding the script from the URL below --script-name, as behind Apache's mod_proxy_scgi.

Apache sends SCRIPT_FILENAME=proxy:scgi://HOST/rest, the whole decoded path as
SCRIPT_NAME and no PATH_INFO (measured; ARCHITECTURE.md). Each request here is
sent that way, one-shot (the connection on fds 0, 1, 2) and resident (the
spawning loop), and the marker files prove nothing outside DIR executed.
"""

from __future__ import annotations

import pytest

from scgi_inetd.client import call
from scgi_inetd.protocol import parse_response, percent_decode

from .cgi_support import log_lines, run_raw, write_script
from .cgi_support import request as scgi_request

PATHS_SCRIPT = ("#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\n'\n"
                "printf '%s|%s|%s\\n' \"$SCRIPT_NAME\" \"$PATH_INFO\" \"$SCRIPT_FILENAME\"\n")

# (URI, expected status): the confinement table, spelt as URLs below /cgi-bin.
URL_ATTACKS = [
    ("/cgi-bin/../outside/x.sh", 404),          # normalised to /outside/x.sh: not under the mount
    ("/cgi-bin/%2e%2e/outside/x.sh", 404),      # dots spelt with escapes: decoded, then normalised
    ("/cgi-bin/%2E%2E%2Foutside%2Fx.sh", 404),
    ("/cgi-bin/../../etc/passwd", 400),         # climbs above the root
    ("/cgi-bin/%2e%2e/%2e%2e/etc/passwd", 400),
    ("/cgi-bin/link-out.sh", 403),              # symlink to a file outside DIR
    ("/cgi-bin/dir-link-out/x.sh", 403),        # symlinked directory leading outside
    ("/cgi-bin/loop-a", 403),                   # symlink loop
    ("/cgi-bin/dangling", 403),                 # symlink to a path outside DIR
    ("/cgi-bin/plain.txt", 403),                # not executable
    ("/cgi-bin/fifo", 403),                     # not a regular file
    ("/cgi-bin/missing.sh", 404),               # no such script
    ("/cgi-bin/sub/missing/more", 404),
    ("/cgi-bin/", 404),                         # no script named at all
    ("/cgi-bin/sub", 404),                      # a directory
    ("/cgi-bin-evil/x.sh", 404),                # prefix confusion: not under /cgi-bin
    ("/etc/passwd", 404),                       # elsewhere entirely
    ("/cgi-bin/ok.sh%00x", 400),                # a NUL byte, once decoded
]


def apache(uri: str) -> dict[str, str]:
    """What mod_proxy_scgi sends for `uri` mounted at /cgi-bin/ (ProxyPass /cgi-bin/ ...|scgi://cgi/)."""
    path = uri.partition("?")[0]
    return {"DOCUMENT_URI": "", "SCRIPT_NAME": percent_decode(path),
            "SCRIPT_FILENAME": f"proxy:scgi://cgi/{path.removeprefix('/cgi-bin/')}"}


@pytest.fixture(params=["one-shot", "resident"])
def ask(request, tree, server):
    """ask(uri, *options) -> Response, through scgi-run OPTIONS DIR/ in each mode."""
    def one(uri: str, *options: str, directory: str = f"{tree}/cgi/"):
        if request.param == "one-shot":
            log = tree / "one-shot.log"
            raw = run_raw(["--stderr", log, *options, directory], scgi_request("GET", uri, params=apache(uri)))
            response = parse_response(raw)
            one.log = log
            return response
        running = server(*options, directory)
        one.log = running.log
        return call(running.address, "GET", uri, params=apache(uri), timeout=20)
    return one


@pytest.mark.parametrize("uri, status", URL_ATTACKS)
def test_url_attack_is_refused(tree, ask, uri, status):
    response = ask(uri, "--script-name", "/cgi-bin")
    assert response.status == status, response.body
    assert not list(tree.rglob("*.ran")), "a script outside DIR ran"


@pytest.mark.parametrize("uri, expected", [
    ("/cgi-bin/paths.sh/extra/path?q=1", "/cgi-bin/paths.sh|/extra/path|{cgi}/paths.sh"),
    ("/cgi-bin//sub/./deep.sh/x/", "/cgi-bin/sub/deep.sh|/x/|{cgi}/sub/deep.sh"),
    ("/cgi-bin/paths.sh", "/cgi-bin/paths.sh||{cgi}/paths.sh"),
    ("/cgi-bin/caf%C3%A9.sh/%C3%BC", "/cgi-bin/caf\u00e9.sh|/\u00fc|{cgi}/caf\u00e9.sh"),
])
def test_the_script_and_its_paths_come_from_the_url(tree, ask, uri, expected):
    for name in ("paths.sh", "sub/deep.sh", "caf\u00e9.sh"):
        write_script(tree / "cgi" / name, PATHS_SCRIPT)
    response = ask(uri, "--script-name", "/cgi-bin")
    assert response.status == 200, response.body
    assert response.body.decode() == expected.format(cgi=tree / "cgi") + "\n"


def test_without_a_mount_point_a_proxy_url_is_400_naming_the_option(tree, ask):
    response = ask("/cgi-bin/ok.sh")
    assert response.status == 400 and b"no SCRIPT_FILENAME path" in response.body
    assert any("--script-name" in line for line in log_lines(ask.log))


def test_a_file_path_in_script_filename_still_wins(tree):
    """nginx and lighttpd name the file: with --script-name as well, SCRIPT_FILENAME stands."""
    raw = run_raw(["--script-name", "/cgi-bin", f"{tree}/cgi/"],
                  scgi_request("GET", "/cgi-bin/missing.sh", params={"SCRIPT_FILENAME": f"{tree}/cgi/ok.sh"}))
    assert parse_response(raw).body == f"ran {tree}/cgi/ok.sh\n".encode()


def test_single_script_mode_takes_path_info_below_the_mount(tree, ask):
    script = write_script(tree / "one.sh", PATHS_SCRIPT)
    response = ask("/git/repo.git/info/refs?service=git-upload-pack", "--script-name", "/git", directory=str(script))
    assert response.body.decode() == f"/git|/repo.git/info/refs|{script}\n"
    assert ask("/other", "--script-name", "/git", directory=str(script)).status == 404


def test_an_nginx_location_needs_no_scgi_param_script_filename(tree):
    """nginx sends DOCUMENT_URI (decoded, normalised) and no SCRIPT_FILENAME: the mount finds the script."""
    write_script(tree / "cgi" / "paths.sh", PATHS_SCRIPT)
    raw = run_raw(["--script-name", "/cgi-bin", f"{tree}/cgi/"],
                  scgi_request("GET", "/cgi-bin/paths.sh/a%20b?x=1"))
    assert parse_response(raw).body.decode() == f"/cgi-bin/paths.sh|/a b|{tree}/cgi/paths.sh\n"
