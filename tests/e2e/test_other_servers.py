"""lighttpd and Apache in front of the same inetd sockets as nginx: examples/lighttpd.conf
and examples/apache.conf as written, proven with the programs behind them."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, require_programs, stack
from tests.e2e.test_bodies import git
from tests.e2e.webservers import Apache, Lighttpd
from tests.support import REPO, child_env

# Test-only mounts beside the example's: the environ-reporting app.
LIGHTTPD_EXTRA = """
scgi.server += (
    "/facts" => (( "socket" => "/run/scgi/facts.sock", "check-local" => "disable" )),
)
"""


@pytest.fixture(scope="module")
def lighttpd(e2e_stack: Stack, tmp_path_factory):
    require_programs("lighttpd")
    tcp_port = stack.free_port()
    resident = subprocess.Popen([sys.executable, str(REPO / "bin/scgi-wsgi"), "--listen",
                                 f"127.0.0.1:{tcp_port}", str(REPO / "examples/hello_wsgi.py")],
                                env=child_env())
    # The private CGI directory is ROOT/cgi-bin/ where the example's is /srv/scgi/cgi-bin/.
    docroot = Path(e2e_stack.paths["/srv/scgi/cgi-bin/"]).parent
    example = (stack.EXAMPLES / "lighttpd.conf").read_text()
    example = example.replace('"docroot" => "/srv/scgi"', f'"docroot" => "{docroot}"')
    example = stack.rewrite(example, e2e_stack.paths).replace('"port" => 9000', f'"port" => {tcp_port}')
    server = Lighttpd(tmp_path_factory.mktemp("lighttpd"), example + stack.rewrite(LIGHTTPD_EXTRA, e2e_stack.paths),
                      stack.free_port())
    try:
        stack.wait_until(lambda: stack.tcp_accepting(tcp_port), timeout=10, what="scgi-wsgi --listen")
        server.start()
        yield server
    finally:
        server.stop()
        resident.terminate()
        resident.wait(20)


@pytest.fixture
def light(lighttpd):
    """lighttpd, checking that the test left no backend errors in its error log."""
    before = len(lighttpd.errors())
    yield lighttpd
    errors = [line for line in lighttpd.errors()[before:] if "scgi" in line.lower() or "backend" in line.lower()]
    assert not errors, "lighttpd logged backend errors:\n" + "\n".join(errors)


def test_lighttpd_wsgi_under_a_mount_prefix_with_a_utf8_path(light):
    for path, info in (("/facts/a/b", "/a/b"), ("/facts/caf%C3%A9/x%20y", "/caf\u00e9/x y")):
        answer = light.request(path)
        assert answer.status == 200, answer.text
        facts = json.loads(answer.body)
        # PEP 3333: bytes as latin-1 str; lighttpd sends PATH_INFO percent-decoded.
        assert (facts["script_name"], facts["path_info"].encode("latin-1").decode()) == ("/facts", info)


def test_lighttpd_hello_one_shot_resident_and_over_tcp(light):
    for path in ("/hello", "/resident", "/tcp-hello"):
        answer = light.request(path)
        assert (answer.status, answer.body) == (200, b"Hello, world!\n"), path


def test_lighttpd_cgi_directory_mode_with_path_info_and_query(light):
    answer = light.request("/cgi-bin/paths.sh/extra/part?q=1&r=%20")
    assert answer.status == 200, answer.text
    assert answer.text == "SCRIPT_NAME=/cgi-bin/paths.sh\nPATH_INFO=/extra/part\nQUERY_STRING=q=1&r=%20\n"


def test_lighttpd_20_mib_post_to_a_script_that_answers_first(light):
    body = os.urandom(20 << 20)
    answer = light.request("/cgi-bin/header-first-sum.sh", method="POST", body=body)
    assert (answer.status, answer.text.strip()) == (200, hashlib.sha256(body).hexdigest())


def test_lighttpd_refusals(light):
    assert light.request("/cgi-bin/escape.sh").status == 403  # a symlink out of the directory
    assert light.request("/cgi-bin/missing.sh").status == 404


def test_lighttpd_git_clone_and_push(light, e2e_stack, tmp_path):
    require_programs("git")
    bare = e2e_stack.path("/srv/git") / "lighttpd.git"
    git("init", "--bare", "-q", str(bare))
    git("config", "http.receivepack", "true", cwd=bare)
    work = tmp_path / "work"
    git("clone", "-q", light.url("/git/lighttpd.git"), str(work))
    (work / "data.bin").write_bytes(os.urandom(5 << 20))
    git("add", "data.bin", cwd=work)
    git("commit", "-q", "-m", "data", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    assert git("rev-parse", "main", cwd=bare) == git("rev-parse", "HEAD", cwd=work)


# Test-only mount beside the example's: the environ-reporting app (--script-name /facts).
APACHE_EXTRA = """
ProxyPass /facts unix:/run/scgi/facts.sock|scgi://facts/
"""


@pytest.fixture(scope="module")
def apache(e2e_stack: Stack, tmp_path_factory):
    require_programs("apache2")
    tcp_port = stack.free_port()
    resident = subprocess.Popen([sys.executable, str(REPO / "bin/scgi-wsgi"), "--listen",
                                 f"127.0.0.1:{tcp_port}", "--script-name", "/tcp-hello",
                                 str(REPO / "examples/hello_wsgi.py")], env=child_env())
    example = stack.rewrite((stack.EXAMPLES / "apache.conf").read_text() + APACHE_EXTRA, e2e_stack.paths)
    example = example.replace("scgi://127.0.0.1:9000/", f"scgi://127.0.0.1:{tcp_port}/")
    server = Apache(tmp_path_factory.mktemp("apache"), example, stack.free_port())
    try:
        stack.wait_until(lambda: stack.tcp_accepting(tcp_port), timeout=10, what="scgi-wsgi --listen")
        server.start()
        yield server
    finally:
        server.stop()
        resident.terminate()
        resident.wait(20)


@pytest.fixture
def httpd(apache):
    """Apache, checking that the test left no proxy errors in its error log."""
    before = len(apache.errors())
    yield apache
    errors = [line for line in apache.errors()[before:] if "proxy" in line.lower() or ":error]" in line]
    assert not errors, "Apache logged proxy errors:\n" + "\n".join(errors)


def test_apache_wsgi_under_a_mount_prefix_with_a_utf8_path(httpd):
    for path, info in (("/facts/a/b", "/a/b"), ("/facts/caf%C3%A9/x%20y", "/caf\u00e9/x y")):
        answer = httpd.request(path)
        assert answer.status == 200, answer.text
        facts = json.loads(answer.body)
        assert (facts["script_name"], facts["path_info"].encode("latin-1").decode()) == ("/facts", info)


def test_apache_hello_one_shot_and_over_tcp(httpd):
    for path in ("/hello", "/tcp-hello"):
        answer = httpd.request(path)
        assert (answer.status, answer.body) == (200, b"Hello, world!\n"), path


def test_apache_cgi_directory_mode_finds_the_script_from_the_url(httpd):
    answer = httpd.request("/cgi-bin/paths.sh/extra/part?q=1&r=%20")
    assert answer.status == 200, answer.text
    assert answer.text == "SCRIPT_NAME=/cgi-bin/paths.sh\nPATH_INFO=/extra/part\nQUERY_STRING=q=1&r=%20\n"


def test_apache_20_mib_post_to_a_script_that_answers_first(httpd):
    body = os.urandom(20 << 20)
    answer = httpd.request("/cgi-bin/header-first-sum.sh", method="POST", body=body)
    assert (answer.status, answer.text.strip()) == (200, hashlib.sha256(body).hexdigest())


def test_apache_refusals(httpd):
    assert httpd.request("/cgi-bin/escape.sh").status == 403  # a symlink out of the directory
    assert httpd.request("/cgi-bin/missing.sh").status == 404
    assert httpd.request("/cgi-bin/").status == 404            # no script named


def test_apache_answers_a_chunked_body_with_411_itself(httpd):
    connection = http.client.HTTPConnection("127.0.0.1", httpd.port, timeout=30)
    try:
        connection.request("POST", "/cgi-bin/header-first-sum.sh", body=iter([b"a" * 10]), encode_chunked=True)
        assert connection.getresponse().status == 411
    finally:
        connection.close()


def test_apache_git_clone_and_push(httpd, e2e_stack, tmp_path):
    require_programs("git")
    bare = e2e_stack.path("/srv/git") / "apache.git"
    git("init", "--bare", "-q", str(bare))
    git("config", "http.receivepack", "true", cwd=bare)
    work = tmp_path / "work"
    git("clone", "-q", httpd.url("/git/apache.git"), str(work))
    (work / "data.bin").write_bytes(os.urandom(5 << 20))
    git("add", "data.bin", cwd=work)
    git("commit", "-q", "-m", "data", cwd=work)
    # git sends a pack over http.postBuffer (1 MiB) chunked, which Apache refuses
    # with 411 before any backend sees it: a larger buffer makes git say its length.
    git("-c", "http.postBuffer=67108864", "push", "-q", "origin", "main", cwd=work)
    assert git("rev-parse", "main", cwd=bare) == git("rev-parse", "HEAD", cwd=work)
