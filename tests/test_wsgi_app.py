"""PEP 3333 behaviour of scgi_inetd.wsgi over a real socketpair.

Well-behaved apps are wrapped in wsgiref.validate.validator, which fails the
exchange (500 and a traceback in the log) if the gateway breaks the PEP.
The misbehaving apps are deliberately not wrapped: the validator would
refuse their mistakes itself, and the point is that the gateway does.
"""

from __future__ import annotations

import io
import json
import os
import sys
from wsgiref.validate import validator

import pytest

from scgi_inetd import protocol
from tests.wsgi_support import exchange, request_bytes

NOT_OURS = b"NOT OURS"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"hello\n"]


def environ_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    data = {key: value for key, value in environ.items() if isinstance(value, (str, bool, int, tuple))}
    data["input_type"] = type(environ["wsgi.input"]).__name__
    return [json.dumps(data).encode()]


def environ_of(uri="/", **options):
    result = exchange(validator(environ_app), request_bytes("GET", uri, params=options.pop("params", None)),
                      **options)
    assert result.response.status == 200, result.log
    return json.loads(result.response.body)


def test_hello():
    result = exchange(validator(hello), request_bytes(), trailing=NOT_OURS)
    assert result.raw == b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n"
    assert result.log == ""
    assert result.unread == NOT_OURS


def test_environ_per_pep_3333():
    environ = environ_of("/path?a=1")
    assert environ["wsgi.version"] == [1, 0]
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.multithread"] is False
    assert environ["wsgi.multiprocess"] is True
    assert environ["wsgi.run_once"] is True
    assert environ["REQUEST_METHOD"] == "GET" and environ["QUERY_STRING"] == "a=1"
    assert environ["CONTENT_LENGTH"] == "0" and environ["SCGI"] == "1"
    assert environ["SCRIPT_NAME"] == "" and environ["PATH_INFO"] == "/path"
    assert "HTTP_CONTENT_LENGTH" not in environ and "HTTP_CONTENT_TYPE" not in environ


def test_transfer_encoding_of_the_http_hop_is_not_passed_on():
    # nginx de-chunks an upload, sends its real CONTENT_LENGTH and still passes
    # HTTP_TRANSFER_ENCODING=chunked; an app that believes it de-chunks again.
    environ = environ_of(params={"HTTP_TRANSFER_ENCODING": "chunked"})
    assert "HTTP_TRANSFER_ENCODING" not in environ
    assert environ["CONTENT_LENGTH"] == "0"


APACHE = {"DOCUMENT_URI": "", "SCRIPT_NAME": "/app/sub/x y", "SCRIPT_FILENAME": "proxy:scgi://app/sub/x%20y"}


def test_apache_whole_path_script_name_is_split_at_the_mount_point():
    environ = environ_of("/app/sub/x%20y", params=APACHE, script_name="/app")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/app", "/sub/x y")


def test_apache_without_a_mount_point_is_said_once_per_process():
    protocol._hinted.clear()
    logs = [exchange(validator(environ_app), request_bytes("GET", "/app/sub/x%20y", params=APACHE)).log
            for _ in range(2)]
    assert logs[0].count("give --script-name") == 1 and "give --script-name" not in logs[1]


@pytest.mark.parametrize("uri, path_info", [("/app/../app/x", "/x"), ("/app//x/./y", "/x/y")])
def test_path_info_from_request_uri_is_normalised(uri, path_info):
    environ = environ_of(uri, params={"DOCUMENT_URI": ""}, script_name="/app")
    assert environ["PATH_INFO"] == path_info


def test_a_path_climbing_above_the_root_is_400():
    result = exchange(environ_app, request_bytes("GET", "/app/../../x", params={"DOCUMENT_URI": ""}),
                      script_name="/app")
    assert result.response.status == 400 and "climbs above the root" in result.log


def test_run_once_false_in_resident_mode():
    assert environ_of(run_once=False)["wsgi.run_once"] is False


@pytest.mark.parametrize("params, scheme", [
    ({}, "http"),
    ({"HTTPS": "on"}, "https"),
    ({"REQUEST_SCHEME": "https"}, "https"),
    ({"HTTPS": "off", "REQUEST_SCHEME": "http"}, "http"),
])
def test_url_scheme(params, scheme):
    assert environ_of(params=params)["wsgi.url_scheme"] == scheme


@pytest.mark.parametrize("params, name, port", [
    ({"SERVER_NAME": "", "HTTP_HOST": "example.org:8080"}, "example.org", "80"),
    ({"SERVER_NAME": "", "HTTP_HOST": "[::1]:8080", "SERVER_PORT": "8080"}, "[::1]", "8080"),
    ({"SERVER_NAME": "", "HTTP_HOST": "", "SERVER_PORT": ""}, "localhost", "80"),
    ({"SERVER_NAME": "a.example", "SERVER_PORT": "", "HTTPS": "on"}, "a.example", "443"),
])
def test_server_name_and_port_are_never_empty(params, name, port):
    environ = environ_of(params=params)
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == (name, port)


# (request URI, SCGI variables set (""=removed), script_name=, SCRIPT_NAME, PATH_INFO)
PATHS = [
    # nginx decodes and normalises DOCUMENT_URI: it must not be decoded again
    ("/cgi-bin/a%20b/c%2520d%2Fe?q=%20", {"DOCUMENT_URI": "/cgi-bin/a b/c%20d/e"}, None,
     "", "/cgi-bin/a b/c%20d/e"),
    # without DOCUMENT_URI, REQUEST_URI is decoded once
    ("/cgi-bin/a%20b/c%2520d%2Fe?q=%20", {"DOCUMENT_URI": ""}, None, "", "/cgi-bin/a b/c%20d/e"),
    ("/cgi-bin/a%20b/c%2520d%2Fe?q=%20", {"DOCUMENT_URI": ""}, "/cgi-bin", "/cgi-bin", "/a b/c%20d/e"),
    ("/caf%C3%A9", {"DOCUMENT_URI": ""}, None, "", "/caf\xc3\xa9"),
    ("/caf%C3%A9", {}, None, "", "/caf\xc3\xa9"),
    ("/a%zz%4/%", {"DOCUMENT_URI": ""}, None, "", "/a%zz%4/%"),
    ("/a+b", {"DOCUMENT_URI": ""}, None, "", "/a+b"),
    ("/app/x/y", {}, "/app", "/app", "/x/y"),
    ("/app/x/y", {}, "/app/", "/app", "/x/y"),
    ("/app", {}, "/app", "/app", ""),
    ("/app/", {}, "/app", "/app", "/"),
    ("/", {}, "/", "", "/"),
    ("/app/x", {"SCRIPT_NAME": "/app"}, None, "/app", "/x"),
    ("/app/x", {"SCRIPT_NAME": "/app"}, "", "", "/app/x"),
    ("/app/x", {"SCRIPT_NAME": "/app", "PATH_INFO": "/given"}, None, "/app", "/given"),
]


@pytest.mark.parametrize("uri, params, script_name, want_script, want_path", PATHS)
def test_script_name_and_path_info(uri, params, script_name, want_script, want_path):
    environ = environ_of(uri, params=params, script_name=script_name)
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (want_script, want_path)


@pytest.mark.parametrize("uri, script_name", [("/application/x", "/app"), ("/other", "/app"), ("/", "/app")])
def test_request_outside_the_mount_point_is_404(uri, script_name):
    called = []
    result = exchange(lambda e, s: called.append(1), request_bytes("POST", uri, body=b"abc"),
                      trailing=NOT_OURS, script_name=script_name)
    assert result.response.status == 404
    assert not called and len(result.log_lines) == 1
    assert result.unread == NOT_OURS


MALFORMED = [
    b"garbage",
    b"5:abc,",
    b"01:x,",
    b"20:REQUEST_METHOD\0GET\0,",
    request_bytes()[:-1] + b";",
    encode_missing_method := b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,",
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_request_gets_400_and_one_log_line(raw):
    called = []
    result = exchange(lambda e, s: called.append(1), raw, close_after_send=True)
    assert result.response.status == 400
    assert not called
    assert len(result.log_lines) == 1 and "400" in result.log


def test_truncated_header_gets_400():
    result = exchange(hello, request_bytes()[:30], close_after_send=True)
    assert result.response.status == 400 and len(result.log_lines) == 1


def test_header_over_the_limit_gets_413():
    result = exchange(hello, b"999999:", close_after_send=True)
    assert result.response.status == 413 and len(result.log_lines) == 1


def test_stalled_header_gets_408():
    result = exchange(hello, b"100:CONTENT", header_timeout=0.2)
    assert result.response.status == 408 and len(result.log_lines) == 1


class Closing:
    """An iterable that records whether close() was called."""

    def __init__(self, chunks, fail_at=None):
        self.chunks = list(chunks)
        self.fail_at = fail_at
        self.closed = False

    def __iter__(self):
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise RuntimeError("generator failed")
            yield chunk
        if self.fail_at == len(self.chunks):
            raise RuntimeError("generator failed")

    def close(self):
        self.closed = True


def app_with(status="200 OK", headers=(("Content-Type", "text/plain"),), chunks=(b"body",), fail_at=None,
             holder=None):
    def app(environ, start_response):
        start_response(status, list(headers) if isinstance(headers, tuple) else headers)
        result = Closing(chunks, fail_at)
        if holder is not None:
            holder.append(result)
        return result
    return app


BAD_HEADS = [
    ("200", [], "status"),
    ("OK", [], "status"),
    ("2000 Big", [], "status"),
    ("099 Low", [], "status"),
    ("100 Continue", [], "1xx is not a final status"),    # nginx would relay the body as a response
    ("101 Switching Protocols", [("X-A", "1")], "1xx is not a final status"),
    ("199 Odd", [], "1xx is not a final status"),
    ("600 High", [], "status"),
    ("20x OK", [], "status"),
    ("２００ OK", [], "status"),
    ("200 ", [], "status"),
    (b"200 OK", [], "status must be str"),
    ("200 OK\r\nSet-Cookie: a=1", [], "control"),
    ("200 OK\n", [], "control"),
    ("200 OK\0", [], "control"),
    ("200 OK", [("X-A", "a\r\nSet-Cookie: a=1")], "control"),
    ("200 OK", [("X-A", "a\nSet-Cookie: a=1")], "control"),
    ("200 OK", [("X-A", "a\rb")], "control"),
    ("200 OK", [("X-A", "a\0b")], "control"),
    ("200 OK", [("X-A", "a\x7fb")], "control"),
    ("200 OK", [("X-A", "euro \u20ac")], "latin-1"),
    ("200 OK", [("X-A\r\nSet-Cookie", "a=1")], "header name"),
    ("200 OK", [("X:A", "1")], "header name"),
    ("200 OK", [("X A", "1")], "header name"),
    ("200 OK", [("", "1")], "header name"),
    ("200 OK", [("X-A-", "1")], "header name"),
    ("200 OK", [(b"X-A", "1")], "must be str"),
    ("200 OK", [("X-A", 1)], "must be str"),
    ("200 OK", [("X-A", b"1")], "must be str"),
    ("200 OK", [["X-A", "1"]], "tuple"),
    ("200 OK", [("X-A", "1", "2")], "tuple"),
    ("200 OK", (("X-A", "1"),), "list"),
    ("200 OK", [("Connection", "close")], "hop-by-hop"),
    ("200 OK", [("keep-alive", "timeout=5")], "hop-by-hop"),
    ("200 OK", [("Transfer-Encoding", "chunked")], "hop-by-hop"),
    ("200 OK", [("Upgrade", "websocket")], "hop-by-hop"),
    ("200 OK", [("TE", "trailers")], "hop-by-hop"),
    ("200 OK", [("Trailer", "X")], "hop-by-hop"),
    ("200 OK", [("Proxy-Authenticate", "Basic")], "hop-by-hop"),
    ("200 OK", [("Status", "302 Found")], "Status header"),
    ("200 OK", [("Content-Length", "abc")], "Content-Length"),
    ("200 OK", [("Content-Length", "-1")], "Content-Length"),
    ("200 OK", [("Content-Length", "4"), ("Content-Length", "5")], "Content-Length"),
]


@pytest.mark.parametrize("status, headers, why", BAD_HEADS)
def test_bad_status_or_headers_are_refused_with_500(status, headers, why):
    def app(environ, start_response):
        start_response(status, headers)
        return [b"app body"]

    result = exchange(app, request_bytes(), trailing=NOT_OURS)
    assert result.response.status == 500
    assert b"Set-Cookie" not in result.raw and b"app body" not in result.raw
    assert b"Internal Server Error" in result.response.body and b"Traceback" not in result.raw
    assert why in result.log
    assert result.unread == NOT_OURS


def test_statuses_that_passed_are_kept_within_a_bound_and_a_bad_one_is_refused_every_time():
    """render_head keeps the statuses that passed (at most 256): a bad one is refused every time it comes,
    and a flood of distinct good ones does not grow the set past its bound."""
    from scgi_inetd import wsgi

    for _ in range(2):
        with pytest.raises(wsgi.HeaderError, match="control"):
            wsgi.render_head("200 OK\r\nSet-Cookie: a=1", [])
    assert "200 OK\r\nSet-Cookie: a=1" not in wsgi._CHECKED_STATUSES
    for number in range(300):
        assert wsgi.render_head(f"299 Reason {number}", [])[0] == f"Status: 299 Reason {number}\r\n\r\n".encode()
    assert len(wsgi._CHECKED_STATUSES) <= 256
    assert wsgi.render_head("299 Reason 1", []) == (b"Status: 299 Reason 1\r\n\r\n", None)


def raises_before_start_response(environ, start_response):
    raise ValueError("secret detail")


def raises_after_start_response(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    raise ValueError("secret detail")


def returns_str_chunks(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["text, not bytes"]


def never_calls_start_response(environ, start_response):
    return [b"body"]


def calls_start_response_twice(environ, start_response):
    start_response("200 OK", [])
    start_response("200 OK", [])
    return [b"body"]


def writes_before_start_response(environ, start_response):
    start_response.__self__.write(b"early")
    return []


def empty_chunk_then_raises(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b""
    raise ValueError("secret detail")


def returns_none(environ, start_response):
    start_response("200 OK", [])


@pytest.mark.parametrize("app", [raises_before_start_response, raises_after_start_response, returns_str_chunks,
                                 never_calls_start_response, calls_start_response_twice,
                                 writes_before_start_response, empty_chunk_then_raises, returns_none])
def test_app_errors_before_the_headers_go_out_give_a_generic_500(app):
    result = exchange(app, request_bytes("POST", body=b"unread body"), trailing=NOT_OURS)
    assert result.response.status == 500
    assert result.response.body == b"500 Internal Server Error: Internal Server Error\n"
    assert b"secret" not in result.raw
    assert "Traceback" in result.log
    assert result.unread == NOT_OURS


@pytest.mark.parametrize("fail_at", [0, 1, 3])
def test_generator_failing_is_500_before_body_and_cut_off_after(fail_at):
    holder = []
    result = exchange(app_with(chunks=[b"one", b"two", b"three"], fail_at=fail_at, holder=holder), request_bytes())
    assert holder[0].closed
    if fail_at == 0:
        assert result.response.status == 500
    else:
        assert result.response.status == 200
        assert result.response.body == b"onetwothree"[:{1: 3, 3: 11}[fail_at]]
        assert "cut off" in result.log and "Traceback" in result.log


@pytest.mark.parametrize("app, status", [
    (app_with(), 200),
    (app_with(chunks=[b"a"], fail_at=0), 500),
    (app_with(chunks=["str"]), 500),
    (app_with(chunks=[b"a", b"b"], fail_at=1), 200),
    (app_with(chunks=[b"a"], headers=(("Content-Length", "0"),)), 200),
])
def test_close_is_called_on_every_path(app, status):
    holder = []
    app = app.__wrapped__ if hasattr(app, "__wrapped__") else app

    def recording(environ, start_response):
        result = app(environ, start_response)
        holder.append(result)
        return result

    result = exchange(recording, request_bytes())
    assert result.response.status == status
    assert holder[0].closed


def test_close_failing_is_logged():
    class BadClose(Closing):
        def close(self):
            raise OSError("close failed")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return BadClose([b"fine"])

    result = exchange(app, request_bytes())
    assert result.response.status == 200 and result.response.body == b"fine"
    assert "close() of the response iterable failed" in result.log


def test_write_mixed_with_iterable():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")
        write(b"")
        write(b"b")
        return [b"c", b"", b"d"]

    result = exchange(validator(app), request_bytes())
    assert result.response.status == 200 and result.response.body == b"abcd"
    assert result.log == ""


def test_exc_info_replaces_headers_not_yet_sent():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Old", "1")])
        try:
            raise KeyError("oops")
        except KeyError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"try later"]

    result = exchange(validator(app), request_bytes())
    assert result.response.status == 503 and result.response.body == b"try later"
    assert result.response.header("X-Old") is None


def test_exc_info_is_re_raised_once_headers_are_sent():
    raised = []

    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial")
        try:
            raise KeyError("oops")
        except KeyError:
            try:
                start_response("500 Error", [("Content-Type", "text/plain")], sys.exc_info())
            except KeyError as error:
                raised.append(error)
                raise
        return [b"never"]

    result = exchange(validator(app), request_bytes())
    assert raised and result.response.status == 200 and result.response.body == b"partial"
    assert "cut off after 7 body bytes" in result.log


def test_never_more_than_content_length():
    holder = []
    app = app_with(headers=(("Content-Type", "text/plain"), ("Content-Length", "5")),
                   chunks=[b"0123", b"456789", b"more"], holder=holder)
    result = exchange(app, request_bytes())
    assert result.response.body == b"01234"
    assert result.log.count("more than Content-Length") == 1
    assert holder[0].closed


def test_short_of_content_length_is_logged():
    result = exchange(validator(app_with(headers=(("Content-Type", "text/plain"), ("Content-Length", "10")),
                                         chunks=[b"abc"])), request_bytes())
    assert result.response.body == b"abc"
    assert "cut short" in result.log


def test_one_chunk_list_gets_a_content_length():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"abc"]

    # Not under the validator: it hides the list behind its own iterator.
    result = exchange(app, request_bytes())
    assert result.response.header("Content-Length") == "3"
    assert exchange(app, request_bytes("HEAD")).response.header("Content-Length") is None


def test_many_chunks_get_no_content_length():
    result = exchange(validator(app_with(chunks=[b"abc", b"def"])), request_bytes())
    assert result.response.header("Content-Length") is None and result.response.body == b"abcdef"


def test_empty_body_sends_headers_at_the_end():
    result = exchange(validator(app_with(status="204 No Content", headers=(), chunks=[])), request_bytes())
    assert result.raw == b"Status: 204 No Content\r\n\r\n"


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
@pytest.mark.parametrize("chunks", [[b"smuggled"], [b"a", b"HTTP/1.1 200 OK\r\n"], [b""]])
def test_204_and_304_answers_send_no_body(status, chunks):
    headers = (("ETag", '"1"'), ("Content-Length", "8")) if status.startswith("304") else ()
    result = exchange(app_with(status=status, headers=headers, chunks=chunks), request_bytes(), trailing=NOT_OURS)
    assert result.raw == f"Status: {status}\r\n".encode() + b"".join(
        b"%s: %s\r\n" % (name.encode(), value.encode()) for name, value in headers) + b"\r\n"
    assert result.unread == NOT_OURS
    if any(chunks):
        [line] = result.log_lines
        assert f"body with a {status[:3]} answer; dropped" in line
    else:
        assert result.log == ""


def test_head_sends_no_body():
    result = exchange(validator(hello), request_bytes("HEAD"))
    assert result.raw == b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\n"
    assert result.log == ""


def test_large_streamed_response():
    chunk = os.urandom(65536)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (chunk for _ in range(200))

    result = exchange(validator(app), request_bytes())
    assert result.response.body == chunk * 200


def test_client_going_away_ends_the_request_quietly():
    holder = []
    app = app_with(chunks=[b"x" * 65536] * 2000, holder=holder)
    result = exchange(app, request_bytes(), read_limit=100000)
    assert holder[0].closed
    assert len(result.log_lines) == 1 and "client went away" in result.log
    assert "Traceback" not in result.log


def test_client_going_away_while_app_catches_it():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        for _ in range(2000):
            try:
                write(b"x" * 65536)
            except Exception:
                pass
        return []

    result = exchange(app, request_bytes(), read_limit=100000)
    assert len(result.log_lines) == 1 and "client went away" in result.log


def echo(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


def test_body_is_given_to_the_app_and_nothing_more():
    body = os.urandom(500000)
    result = exchange(validator(echo), request_bytes("POST", body=body), trailing=NOT_OURS)
    assert result.response.body == body
    assert result.unread == NOT_OURS


@pytest.mark.parametrize("app", [validator(hello), raises_before_start_response, app_with(chunks=["str"])])
def test_unread_body_is_drained_on_every_path(app):
    body = b"b" * 400000
    result = exchange(app, request_bytes("POST", body=body), trailing=NOT_OURS)
    assert result.unread == NOT_OURS


def test_body_shorter_than_content_length_gets_400():
    def reads_all(environ, start_response):
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"complete?"]

    request = request_bytes("POST", body=b"x" * 1000)[:-500]
    result = exchange(reads_all, request, close_after_send=True)
    assert result.response.status == 400
    assert len(result.log_lines) == 1 and "500 bytes short" in result.log


class ReadRecorder:
    """A real file that counts read() calls: sendfile must not need any."""

    def __init__(self, path):
        self.file = open(path, "rb")
        self.reads = 0
        self.closed = False

    def read(self, size=-1):
        self.reads += 1
        return self.file.read(size)

    def fileno(self):
        return self.file.fileno()

    def tell(self):
        return self.file.tell()

    def seek(self, offset):
        return self.file.seek(offset)

    def close(self):
        self.closed = True
        self.file.close()


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 * 1000 * 1000 + 7))
    return path


def file_app(filelike, headers=(("Content-Type", "application/octet-stream"),)):
    def app(environ, start_response):
        start_response("200 OK", list(headers))
        return environ["wsgi.file_wrapper"](filelike, 4096)
    return app


def test_file_wrapper_sends_a_real_file_with_sendfile(data_file):
    recorder = ReadRecorder(data_file)
    result = exchange(file_app(recorder), request_bytes())
    assert result.response.body == data_file.read_bytes()
    assert result.response.header("Content-Length") == str(data_file.stat().st_size)
    assert recorder.reads == 0 and recorder.closed
    assert result.log == ""


def test_file_wrapper_starts_at_the_current_position(data_file):
    recorder = ReadRecorder(data_file)
    recorder.seek(1000)
    result = exchange(file_app(recorder), request_bytes())
    assert result.response.body == data_file.read_bytes()[1000:]
    assert recorder.reads == 0


def test_file_wrapper_stops_at_content_length(data_file):
    recorder = ReadRecorder(data_file)
    headers = (("Content-Type", "application/octet-stream"), ("Content-Length", "12345"))
    result = exchange(file_app(recorder, headers), request_bytes())
    assert result.response.body == data_file.read_bytes()[:12345]
    assert recorder.closed and result.log == ""


def test_file_wrapper_for_head_sends_headers_only(data_file):
    result = exchange(file_app(ReadRecorder(data_file)), request_bytes("HEAD"))
    assert result.response.body == b""
    assert result.response.header("Content-Length") == str(data_file.stat().st_size)


def test_file_wrapper_over_a_file_like_object_reads_it():
    data = os.urandom(100000)
    stream = io.BytesIO(data)
    result = exchange(validator(file_app(stream)), request_bytes())
    assert result.response.body == data and stream.closed


def test_file_wrapper_over_a_pipe_reads_it():
    read_end, write_end = os.pipe()
    os.write(write_end, b"from a pipe")
    os.close(write_end)
    result = exchange(file_app(open(read_end, "rb")), request_bytes())
    assert result.response.body == b"from a pipe"


def test_file_wrapper_under_validator_still_sends_the_file(data_file):
    recorder = ReadRecorder(data_file)
    result = exchange(validator(file_app(recorder)), request_bytes())
    assert result.response.body == data_file.read_bytes()
    assert recorder.closed


def test_client_sent_names_with_a_dot_are_dropped():
    """PEP 3333 reserves dotted names for the server and middleware; a client must not set them."""
    environ = environ_of(params={"wsgi.url_scheme": "gopher", "x.y": "1", "HTTP_X_OK": "ok"}, run_once=True)
    assert environ["wsgi.url_scheme"] == "http" and "x.y" not in environ
    assert environ["HTTP_X_OK"] == "ok"


def test_a_client_cannot_reach_the_boot_menu_app_private_key(tmp_path):
    from scgi_inetd.bootmenu.app import make_app

    from tests.bootmenu_helpers import write_config

    app = make_app(str(write_config(tmp_path)))
    result = exchange(app, request_bytes("GET", "/boot.ipxe", params={"scgi_bootmenu.after": "boom"}))
    assert result.response.status == 200 and result.response.body.startswith(b"#!ipxe")
    [line] = result.log_lines
    assert "dropped" in line and "'scgi_bootmenu.after'" in line and "Traceback" not in result.log


def test_run_app_takes_plain_settings():
    """The library's run_app takes the serving options by name, as keyword arguments, not a parsed command line."""
    import inspect

    from scgi_inetd.options import serve_options
    from scgi_inetd.wsgi import run_app

    assert "options" not in inspect.signature(run_app).parameters
    assert serve_options(max_body=5, listen="unix:/x").max_body == 5
    assert serve_options().max_body is None
    with pytest.raises(TypeError, match="max_bdy"):
        serve_options(max_bdy=5)
