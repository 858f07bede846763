"""Directory mode confinement: hostile SCRIPT_FILENAMEs, each with its status.

Every case runs through the real shim (a child process with the connection
on fds 0, 1, 2), and the marker files prove nothing outside DIR executed.
"""

from __future__ import annotations

import os

import pytest

from scgi_inetd.script_resolver import Script, ScriptError, ScriptResolver

from .cgi_support import ATTACKS, OK_SCRIPT, run, write_script


@pytest.mark.parametrize("name, status", ATTACKS)
def test_attack_is_refused(tree, name, status):
    filename = name if name.startswith("/") or not name else str(tree / name)
    if "\x00" in filename:
        from scgi_inetd.protocol import encode_request
        from .cgi_support import run_raw
        from scgi_inetd.protocol import parse_response

        # A NUL inside a value splits it: the netstring no longer parses as pairs.
        block = f"CONTENT_LENGTH\x000\x00SCGI\x001\x00SCRIPT_FILENAME\x00{filename}\x00".encode()
        response = parse_response(run_raw([f"{tree}/cgi/"], b"%d:%s," % (len(block), block)))
    else:
        response = run([f"{tree}/cgi/"], params={"SCRIPT_FILENAME": filename})
    assert response.status == status, response.body
    assert response.body.startswith(f"{status} ".encode())
    assert not list(tree.rglob("*.ran")), "a script outside DIR ran"


def test_attack_table_is_big_enough():
    assert len(ATTACKS) >= 20


@pytest.mark.parametrize("name, path, path_info", [
    ("cgi/ok.sh", "cgi/ok.sh", ""),
    ("cgi//ok.sh", "cgi/ok.sh", ""),
    ("cgi/./ok.sh", "cgi/ok.sh", ""),
    ("cgi/ok.sh/extra/path", "cgi/ok.sh", "/extra/path"),
    ("cgi/sub/deep.sh/x", "cgi/sub/deep.sh", "/x"),
    ("cgi/link-in.sh", "cgi/ok.sh", ""),      # a symlink inside DIR runs its real target
])
def test_resolve_allowed(tree, name, path, path_info):
    resolver = ScriptResolver(f"{tree}/cgi/")
    assert resolver.resolve(str(tree / name)) == Script(str(tree / path), path_info)


def test_resolve_through_symlinked_directory(tree):
    os.symlink(tree / "cgi", tree / "cgi-link")
    resolver = ScriptResolver(f"{tree}/cgi-link/")
    assert resolver.resolve(f"{tree}/cgi-link/ok.sh/p") == Script(str(tree / "cgi" / "ok.sh"), "/p")


def test_resolve_non_ascii_name(tree):
    """SCRIPT_FILENAME arrives as latin-1 'bytes as str'; the file's UTF-8 name must match."""
    write_script(tree / "cgi" / "caf\u00e9.sh", OK_SCRIPT)
    received = os.fsencode(f"{tree}/cgi/caf\u00e9.sh/x").decode("latin-1")
    script = ScriptResolver(f"{tree}/cgi/").resolve(received)
    assert script == Script(str(tree / "cgi" / "caf\u00e9.sh"), "/x")


def test_error_carries_status_and_hides_path(tree):
    with pytest.raises(ScriptError) as caught:
        ScriptResolver(f"{tree}/cgi/").resolve("/etc/passwd")
    assert caught.value.status == 403
    assert "passwd" not in str(caught.value) and "passwd" in caught.value.detail


def test_allowed_script_runs_through_the_shim(tree):
    response = run([f"{tree}/cgi/"], params={"SCRIPT_FILENAME": f"{tree}/cgi/sub/deep.sh/more"})
    assert response.status == 200
    assert response.body == f"ran {tree}/cgi/sub/deep.sh\n".encode()


@pytest.mark.parametrize("error, status", [
    (FileNotFoundError(2, "No such file or directory"), 404),   # the link was removed after lstat
    (OSError(22, "Invalid argument"), 500),                     # the link became a file after lstat
])
def test_an_entry_changing_during_resolution_is_an_answer(tree, monkeypatch, error, status):
    """realpath's readlink fails when a symlink changes under it: a ScriptError, not an OSError."""
    def changing(path):
        raise error

    resolver = ScriptResolver(f"{tree}/cgi/")
    monkeypatch.setattr(os.path, "realpath", changing)
    with pytest.raises(ScriptError) as caught:
        resolver.resolve(f"{tree}/cgi/link-in.sh")
    assert caught.value.status == status
