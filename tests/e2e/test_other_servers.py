"""lighttpd and Apache in front of the same inetd sockets as nginx: examples/lighttpd.conf
and examples/apache.conf as written, proven with the programs behind them.

Each server gets the same cases; what differs between them (which mounts an
example has, what each does to a chunked upload) is said where it differs.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, git, require_programs, stack
from tests.e2e.webservers import Apache, Lighttpd
from tests.support import REPO, ResidentServer

# Test-only mounts beside each example's: the environ-reporting app (--script-name /facts).
EXTRA = {
    "lighttpd": '\nscgi.server += ( "/facts" => (( "socket" => "/run/scgi/facts.sock", "check-local" => "disable" )) )\n',
    "apache": "\nProxyPass /facts unix:/run/scgi/facts.sock|scgi://facts/\n",
}
#: Over TCP, each example names 127.0.0.1:9000, a resident front-end started on its own.
TCP_EXAMPLE = {"lighttpd": ('"port" => 9000', '"port" => {port}'),
               "apache": ("scgi://127.0.0.1:9000/", "scgi://127.0.0.1:{port}/")}


def example_config(name: str, paths: dict[str, str], tcp_port: int) -> str:
    text = (stack.EXAMPLES / f"{name}.conf").read_text() + EXTRA[name]
    if name == "lighttpd":
        # The private CGI directory is ROOT/cgi-bin/ where the example's is /srv/scgi/cgi-bin/.
        docroot = Path(paths["/srv/scgi/cgi-bin/"]).parent
        text = text.replace('"docroot" => "/srv/scgi"', f'"docroot" => "{docroot}"')
    old, new = TCP_EXAMPLE[name]
    return stack.rewrite(text, paths).replace(old, new.format(port=tcp_port))


@pytest.fixture(scope="module", params=["lighttpd", "apache"])
def started(request, e2e_stack: Stack, tmp_path_factory):
    name = request.param
    require_programs("lighttpd" if name == "lighttpd" else "apache2")
    tcp_port = stack.free_port()
    resident = ResidentServer("scgi-wsgi", "--script-name", "/tcp-hello", str(REPO / "examples/hello_wsgi.py"),
                              listen=f"127.0.0.1:{tcp_port}")
    kind = Lighttpd if name == "lighttpd" else Apache
    server = kind(tmp_path_factory.mktemp(name), example_config(name, e2e_stack.paths, tcp_port),
                  stack.free_port())
    server.kind = name
    try:
        server.start()
        yield server
    finally:
        server.stop()
        resident.close()


@pytest.fixture
def web_server(started):
    """The server, checking that the test left no backend errors in its error log."""
    before = len(started.errors())
    yield started
    words = ("scgi", "backend") if started.kind == "lighttpd" else ("proxy", ":error]")
    errors = [line for line in started.errors()[before:] if any(word in line.lower() for word in words)]
    assert not errors, f"{started.kind} logged backend errors:\n" + "\n".join(errors)


def test_wsgi_under_a_mount_prefix_with_a_utf8_path(web_server):
    for path, info in (("/facts/a/b", "/a/b"), ("/facts/caf%C3%A9/x%20y", "/caf\u00e9/x y")):
        answer = web_server.request(path)
        assert answer.status == 200, answer.text
        facts = json.loads(answer.body)
        # PEP 3333: bytes as latin-1 str.
        assert (facts["script_name"], facts["path_info"].encode("latin-1").decode()) == ("/facts", info)


def test_hello_one_shot_resident_and_over_tcp(web_server):
    paths = ["/hello", "/tcp-hello"] + (["/resident"] if web_server.kind == "lighttpd" else [])
    for path in paths:
        answer = web_server.request(path)
        assert (answer.status, answer.body) == (200, b"Hello, world!\n"), path


def test_cgi_directory_mode_with_path_info_and_query(web_server):
    """lighttpd names the file (SCRIPT_FILENAME); Apache sends only the URL, walked below --script-name."""
    answer = web_server.request("/cgi-bin/paths.sh/extra/part?q=1&r=%20")
    assert answer.status == 200, answer.text
    assert answer.text == "SCRIPT_NAME=/cgi-bin/paths.sh\nPATH_INFO=/extra/part\nQUERY_STRING=q=1&r=%20\n"


def test_20_mib_post_to_a_script_that_answers_first(web_server):
    body = os.urandom(20 << 20)
    answer = web_server.request("/cgi-bin/header-first-sum.sh", method="POST", body=body)
    assert (answer.status, answer.text.strip()) == (200, hashlib.sha256(body).hexdigest())


def test_refusals(web_server):
    assert web_server.request("/cgi-bin/escape.sh").status == 403  # a symlink out of the directory
    assert web_server.request("/cgi-bin/missing.sh").status == 404


def test_a_chunked_upload(web_server):
    """lighttpd de-chunks it for the script; Apache answers 411 itself (documented in apache.conf)."""
    connection = http.client.HTTPConnection("127.0.0.1", web_server.port, timeout=30)
    try:
        connection.request("POST", "/cgi-bin/header-first-sum.sh", body=iter([b"a" * 10]), encode_chunked=True)
        answer = connection.getresponse()
        if web_server.kind == "apache":
            assert answer.status == 411
        else:
            assert (answer.status, answer.read().strip()) == (200, hashlib.sha256(b"a" * 10).hexdigest().encode())
    finally:
        connection.close()


def test_git_clone_and_push(web_server, e2e_stack, tmp_path):
    require_programs("git")
    bare = e2e_stack.path("/srv/git") / f"{web_server.kind}.git"
    git("init", "--bare", "-q", str(bare))
    git("config", "http.receivepack", "true", cwd=bare)
    work = tmp_path / "work"
    git("clone", "-q", web_server.url(f"/git/{web_server.kind}.git"), str(work))
    (work / "data.bin").write_bytes(os.urandom(5 << 20))
    git("add", "data.bin", cwd=work)
    git("commit", "-q", "-m", "data", cwd=work)
    # git sends a pack over http.postBuffer (1 MiB) chunked: lighttpd takes that, Apache
    # refuses it with 411, so there a larger buffer makes git say the length.
    buffer = ["-c", "http.postBuffer=67108864"] if web_server.kind == "apache" else []
    git(*buffer, "push", "-q", "origin", "main", cwd=work)
    assert git("rev-parse", "main", cwd=bare) == git("rev-parse", "HEAD", cwd=work)
