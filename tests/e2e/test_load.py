"""2,000 requests at concurrency 16 through nginx and inetd: no error, no leftovers."""

from __future__ import annotations

import http.client
import threading
import time

from tests.e2e.conftest import Stack, require_frontend, wait_no_children

REQUESTS = 2000
CONCURRENCY = 16


def hammer(port: int, path: str, count: int, failures: list[str], expect: bytes = b"hello") -> None:
    """`count` GETs on one keep-alive connection; nginx still opens one upstream per request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(count):
            connection.request("GET", path)
            answer = connection.getresponse()
            body = answer.read()
            if answer.status != 200 or expect not in body.lower():
                failures.append(f"{answer.status} {body[:80]!r}")
    except Exception as error:  # any failure counts; the test reports them all
        failures.append(repr(error))
    finally:
        connection.close()


def test_two_thousand_requests_at_concurrency_sixteen(web: Stack) -> None:
    require_frontend("scgi-wsgi")
    before = set(web.inetd.children())  # a resident `wait` server may be up already
    is_hello = lambda entry: entry["uri"] == "/hello"  # noqa: E731
    already = len(web.nginx.wait_access(is_hello, count=0))
    failures: list[str] = []
    threads = [threading.Thread(target=hammer, args=(web.nginx.port, "/hello",
                                                     REQUESTS // CONCURRENCY, failures))
               for _ in range(CONCURRENCY)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert failures == [], f"{len(failures)} failures, first: {failures[:5]}"
    served = web.nginx.wait_access(is_hello, count=already + REQUESTS)[already:]
    assert len(served) == REQUESTS and {entry["status"] for entry in served} == {"200"}
    leftovers = set(wait_no_children(web.inetd, exclude=before)) - before
    assert not leftovers, f"handlers still running after the load: {sorted(leftovers)}"
    print(f"{REQUESTS} requests at concurrency {CONCURRENCY}: {elapsed:.1f} s, "
          f"{REQUESTS / elapsed:.0f} requests/s")
