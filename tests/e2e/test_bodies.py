"""Request bodies through a real nginx and inetd: git push, programs that answer first or never read.

nginx stops sending the request body once the response begins
(ARCHITECTURE.md), so these pass only because the gateway takes the whole
body before the program's answer is relayed. Programs nobody here wrote
(git's http-backend, sha256sum) do the reading.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time

import pytest

from tests.e2e.conftest import Stack, git, require_programs, wait_no_children

GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


@pytest.mark.parametrize("mount", ["git", "git-resident"])
def test_git_clone_and_push_of_20_mib(web: Stack, tmp_path, mount):
    require_programs("git")
    if not os.path.exists(GIT_HTTP_BACKEND):
        pytest.fail(f"{GIT_HTTP_BACKEND} missing (Debian's git package)")
    bare = web.path("/srv/git") / f"{mount}.git"
    git("init", "--bare", "-q", str(bare))
    git("config", "http.receivepack", "true", cwd=bare)
    url = web.nginx.url(f"/{mount}/{mount}.git")
    work = tmp_path / "work"
    git("clone", "-q", url, str(work))
    data = os.urandom(20 << 20)
    (work / "big.bin").write_bytes(data)
    git("add", "big.bin", cwd=work)
    git("commit", "-q", "-m", "20 MiB of random data", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    head = git("rev-parse", "HEAD", cwd=work).strip()
    assert git("rev-parse", "main", cwd=bare).strip() == head
    git("fsck", "--strict", cwd=bare)
    assert git("cat-file", "-s", "HEAD:big.bin", cwd=bare).strip() == str(len(data))
    again = tmp_path / "again"
    git("clone", "-q", url, str(again))
    assert (again / "big.bin").read_bytes() == data


@pytest.mark.parametrize("mount", ["cgi-bin", "upload-fixed", "upload-resident"])
def test_a_script_that_prints_its_header_first_gets_10_mib(web: Stack, mount):
    body = os.urandom(10 << 20)
    response = web.request(f"/{mount}/header-first-sum.sh", method="POST", body=body, timeout=60)
    assert response.status == 200
    assert response.text.strip() == hashlib.sha256(body).hexdigest()


def test_a_wsgi_app_that_yields_before_reading_gets_10_mib(web: Stack):
    body = os.urandom(10 << 20)
    response = web.request("/answer-first", method="POST", body=body, timeout=60)
    assert response.status == 200
    assert response.text.splitlines()[1] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("mount", ["cgi-bin", "upload-resident"])
def test_a_script_that_ignores_60_kb_bodies_under_load_loses_no_response(web: Stack, mount):
    """200 POSTs at concurrency 8: every response whole, no reset in nginx's log (web checks)."""
    before = set(web.inetd.children())
    failures: list[str] = []

    def post(count: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", web.nginx.port, timeout=60)
        try:
            for _ in range(count):
                connection.request("POST", f"/{mount}/ignores-body.sh", body=b"i" * 60_000)
                answer = connection.getresponse()
                body = answer.read()
                if answer.status != 200 or body != b"ignored\n":
                    failures.append(f"{answer.status} {body[:60]!r}")
        except Exception as error:  # every failure counts
            failures.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(25,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [], f"{len(failures)} failures, first: {failures[:5]}"
    assert not set(wait_no_children(web.inetd, exclude=before)) - before - resident_servers(web)


def test_a_chunked_upload_reaches_bottle_whole(web: Stack):
    """nginx de-chunks, sends the real CONTENT_LENGTH and still says chunked; the app must not see that."""
    pytest.importorskip("bottle")
    data = os.urandom(3 << 20)
    connection = http.client.HTTPConnection("127.0.0.1", web.nginx.port, timeout=60)
    try:
        connection.request("POST", "/bottle/upload", body=iter([data[:1 << 20], data[1 << 20:]]),
                           encode_chunked=True)
        answer = connection.getresponse()
        assert (answer.status, answer.read().decode()) == \
            (200, f"{len(data)} {hashlib.sha256(data).hexdigest()}\n")
    finally:
        connection.close()


def test_max_body_refuses_through_nginx(web: Stack):
    assert web.request("/small/ignores-body.sh", method="POST", body=b"s" * 1000).status == 200
    refused = web.request("/small/ignores-body.sh", method="POST", body=b"s" * 1001)
    assert refused.status == 413 and "over the limit of 1000" in refused.text
    log = web.path("/var/log/scgi/small.log").read_text()
    assert "413" in log and "1001 bytes" in log


def resident_servers(web: Stack) -> set[int]:
    """The inetd children that are resident (wait) servers: they stay up between requests."""
    return {pid for pid in web.inetd.children()
            if b"resident.log" in cmdline(pid) or b"-wait.log" in cmdline(pid)}


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read()
    except FileNotFoundError:
        return b""


def upload(web: Stack, path: str, size: int) -> tuple[int, str, str]:
    """POST ``size`` bytes of random-looking data; (status, response text, the data's sha256)."""
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    connection = http.client.HTTPConnection("127.0.0.1", web.nginx.port, timeout=300)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        for index in range(size // len(block)):
            chunk = bytes([index & 0xFF]) + block[1:]
            digest.update(chunk)
            connection.send(chunk)
        answer = connection.getresponse()
        return answer.status, answer.read().decode(), digest.hexdigest()
    finally:
        connection.close()


def test_a_1_gib_upload_is_spooled_to_disk_in_bounded_memory(web: Stack):
    """One-shot (under the peak-RSS probe) and resident: checksummed, our processes ≤ 40 MB."""
    reports = web.path("/var/log/scgi/")
    status, text, digest = upload(web, "/upload/header-first-sum.sh", 1 << 30)
    assert (status, text.strip()) == (200, digest)
    deadline = time.monotonic() + 20  # the probe reports once the shim has exited
    while not (peaks := [int(text) for path in reports.glob("rss.*") if (text := path.read_text())]):
        assert time.monotonic() < deadline, "no peak-RSS report from the one-shot upload"
        time.sleep(0.05)
    assert max(peaks) <= 40 * 1024, f"one-shot peak RSS {max(peaks)} KiB"
    status, text, digest = upload(web, "/upload-resident/header-first-sum.sh", 1 << 30)
    assert (status, text.strip()) == (200, digest)
    [server] = [pid for pid in web.inetd.children() if b"cgi-wait.log" in cmdline(pid)]
    with open(f"/proc/{server}/status") as status_file:
        peak = next(int(line.split()[1]) for line in status_file if line.startswith("VmHWM:"))
    assert peak <= 40 * 1024, f"resident peak RSS {peak} KiB"
    print(f"1 GiB upload: peak RSS one-shot {max(peaks)} KiB, resident {peak} KiB")
