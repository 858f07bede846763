"""The SCGI parser as a specification: tables of bytes in, environ or error out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scgi_inetd import ProtocolError as TopLevelProtocolError
from scgi_inetd.protocol import (
    IncompleteRequest,
    ProtocolError,
    RequestParser,
    encode_request,
    netstring_extent,
    parse_request,
    parse_response,
    request_path,
    response_header_end,
    split_mount,
)

from .malformed import GOOD, MALFORMED, headers, netstring


def parse_three_ways(data: bytes, max_header: int = 262144):
    """Parse `data` whole, one byte at a time, and with trailing bytes; all must agree."""
    whole = _outcome(lambda: parse_request(data, max_header))
    parser = RequestParser(max_header)
    stepwise = None
    for index in range(len(data)):
        try:
            result = parser.feed(data[index : index + 1])
        except ProtocolError as error:
            stepwise = ("error", error.status, str(error))
            break
        if result is not None:
            stepwise = ("ok", result, len(parser.buffer))
            break
    if stepwise is None:
        stepwise = ("incomplete",)
    trailing = _outcome(lambda: parse_request(data + b"BODYBYTES", max_header))
    if whole[0] == "incomplete":
        assert stepwise == whole
    else:
        assert stepwise == whole == trailing, (whole, stepwise, trailing)
    return whole


def _outcome(parse):
    try:
        environ, offset = parse()
    except IncompleteRequest:
        return ("incomplete",)
    except ProtocolError as error:
        return ("error", error.status, str(error))
    return ("ok", environ, offset)


def test_nginx_request_parses_with_body_offset():
    block = headers(
        "CONTENT_LENGTH", "7", "REQUEST_METHOD", "POST", "REQUEST_URI", "/cgi/x.sh/extra?a=1&b=%20",
        "QUERY_STRING", "a=1&b=%20", "DOCUMENT_URI", "/cgi/x.sh/extra", "SCGI", "1",
        "HTTP_COOKIE", "c=1", "SERVER_NAME", "",
    )
    data = netstring(block) + b"BODY123"
    outcome = parse_three_ways(netstring(block))
    environ, offset = parse_request(data)
    assert outcome == ("ok", environ, offset)
    assert data[offset:] == b"BODY123"
    assert environ["REQUEST_URI"] == "/cgi/x.sh/extra?a=1&b=%20"
    assert environ["SERVER_NAME"] == ""
    assert list(environ)[0] == "CONTENT_LENGTH"


def test_values_are_latin1_strings_of_the_raw_bytes():
    block = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00HTTP_X\x00caf\xc3\xa9 \xff\x00"
    environ, _ = parse_request(netstring(block))
    assert environ["HTTP_X"] == "caf\xc3\xa9 \xff"
    assert environ["HTTP_X"].encode("latin-1") == b"caf\xc3\xa9 \xff"


@pytest.mark.parametrize("data, status, fragment", MALFORMED)
def test_malformed_requests_are_refused_with_status_and_reason(data, status, fragment):
    outcome = parse_three_ways(data)
    assert outcome[0] == "error", outcome
    assert outcome[1] == status
    assert fragment in outcome[2]
    assert " at byte " in outcome[2]


def test_error_offsets_point_at_the_culprit():
    data = netstring(headers("CONTENT_LENGTH", "0", "SCGI", "1", "X", "1", "X", "2"))
    with pytest.raises(ProtocolError) as caught:
        parse_request(data)
    offset = int(str(caught.value).rsplit(" ", 1)[1])
    assert data[offset:].startswith(b"X\x002\x00")


def test_oversized_length_is_refused_before_the_rest_arrives():
    with pytest.raises(ProtocolError) as caught:
        parse_request(b"300000", max_header=262144)
    assert caught.value.status == 413
    with pytest.raises(ProtocolError):
        parse_request(b"1000", max_header=100)
    with pytest.raises(IncompleteRequest):
        parse_request(b"100", max_header=100)


def _block_of(size: int) -> bytes:
    """A valid header block of exactly `size` bytes (the netstring's content), padded in one header."""
    base = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00HTTP_X\x00\x00"  # 32 bytes, the smallest
    assert size >= len(base)
    return base[:-1] + b"x" * (size - len(base)) + b"\x00"


@pytest.mark.parametrize("size", [32, 99_999, 999_999, 1_000_000, 1_000_001])
@pytest.mark.parametrize("max_header", [60, 999_999, 1_000_000, 262144, 10_000_000])
@pytest.mark.parametrize("zero", [b"", b"0"])
def test_length_prefix_rule_is_netstring_extents_at_every_digit_count(size, max_header, zero):
    """parse_request reads a short prefix inline: it must accept and refuse exactly as netstring_extent."""
    block = _block_of(size)
    data = zero + b"%d:" % size + block + b","
    outcome = _outcome(lambda: parse_request(data, max_header))
    try:
        extent = netstring_extent(data, max_header)
    except ProtocolError as error:
        assert outcome == ("error", error.status, str(error))
    else:
        value = block[len(b"CONTENT_LENGTH\x000\x00SCGI\x001\x00HTTP_X\x00"):-1].decode("latin-1")
        assert outcome == ("ok", {"CONTENT_LENGTH": "0", "SCGI": "1", "HTTP_X": value}, extent)
        assert extent == len(data)


@pytest.mark.parametrize("prefix", [b"", b"1", b"12", b"12:", netstring(GOOD)[:-1], b"0"])
def test_incomplete_prefixes_ask_for_more(prefix):
    with pytest.raises(IncompleteRequest):
        parse_request(prefix)


def test_protocol_error_is_exported_at_the_top():
    assert TopLevelProtocolError is ProtocolError


def test_duplicate_http_headers_are_combined_per_rfc3875():
    data = netstring(headers(
        "CONTENT_LENGTH", "0", "SCGI", "1",
        "HTTP_COOKIE", "_Syslinux_BOOTIF=01-52-54-00-12-34-57", "HTTP_X_DUP", "1",
        "HTTP_COOKIE", "_Syslinux_SYSUUID=78563412", "HTTP_X_DUP", "2", "HTTP_X_DUP", "3",
    ))
    environ, _ = parse_three_ways(data)[1:]
    assert environ["HTTP_COOKIE"] == "_Syslinux_BOOTIF=01-52-54-00-12-34-57; _Syslinux_SYSUUID=78563412"
    assert environ["HTTP_X_DUP"] == "1, 2, 3"


def test_netstring_extent_needs_only_the_prefix():
    assert netstring_extent(b"5:") == 8
    assert netstring_extent(b"0:") == 3
    with pytest.raises(IncompleteRequest):
        netstring_extent(b"5")


def test_encode_puts_content_length_first_and_scgi():
    data = encode_request([("REQUEST_METHOD", "POST"), ("SCGI", "7"), ("CONTENT_LENGTH", "99")], b"abc")
    environ, offset = parse_request(data)
    assert list(environ.items())[:2] == [("CONTENT_LENGTH", "3"), ("SCGI", "1")]
    assert environ["REQUEST_METHOD"] == "POST"
    assert data[offset:] == b"abc"


header_names = st.text(
    alphabet=st.characters(min_codepoint=1, max_codepoint=255, blacklist_characters="="), min_size=1, max_size=20
).filter(lambda name: name not in ("CONTENT_LENGTH", "SCGI"))
header_values = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=60)


@given(st.dictionaries(header_names, header_values, max_size=12), st.binary(max_size=200))
def test_encode_then_parse_is_the_identity(pairs, body):
    data = encode_request(pairs, body)
    environ, offset = parse_request(data)
    assert environ == {"CONTENT_LENGTH": str(len(body)), "SCGI": "1", **pairs}
    assert data[offset:] == body


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_arbitrary_bytes_give_a_request_more_please_or_protocol_error(data):
    try:
        environ, offset = parse_request(data)
    except (IncompleteRequest, ProtocolError):
        return
    assert 0 < offset <= len(data)
    assert environ["SCGI"] == "1"


@given(st.binary(max_size=120).map(lambda b: b"%d:" % len(b) + b))
@settings(max_examples=300)
def test_arbitrary_header_blocks_never_raise_anything_else(data):
    for candidate in (data, data + b",", data + b",body"):
        try:
            parse_request(candidate)
        except (IncompleteRequest, ProtocolError):
            pass


@given(
    st.dictionaries(header_names, header_values, max_size=8),
    st.binary(max_size=50),
    st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_any_split_fed_incrementally_equals_whole(pairs, body, cuts):
    data = encode_request(pairs, body)
    whole = parse_request(data)
    parser = RequestParser()
    points = sorted({min(c, len(data)) for c in cuts}) + [len(data)]
    result, start = None, 0
    for point in points:
        result = parser.feed(data[start:point])
        start = point
    assert result == whole[0]
    assert parser.buffer == data[: whole[1]]
    assert parser.rest == body


@given(st.dictionaries(header_names, header_values, min_size=1, max_size=8), st.data())
def test_valid_encodings_cut_short_are_incomplete(pairs, data):
    encoded = encode_request(pairs)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(IncompleteRequest):
        parse_request(encoded[:cut])


RESPONSES = [
    (b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope", 404, "Not Found", b"nope"),
    (b"Content-Type: text/plain\n\nhello", 200, "OK", b"hello"),
    (b"Location: /elsewhere\r\n\r\n", 302, "Found", b""),
    (b"Location: /x\r\nContent-Type: text/html\r\n\r\n", 200, "OK", b""),
    (b"HTTP/1.1 201 Created\r\nX: y\r\n\r\nmade", 201, "Created", b"made"),
    (b"Status: 503\r\n\r\n", 503, "", b""),
    (b"Status: 200 OK\r\n\r\nbody\r\n\r\nmore", 200, "OK", b"body\r\n\r\nmore"),
]


@pytest.mark.parametrize("data, status, reason, body", RESPONSES)
def test_cgi_responses_parse(data, status, reason, body):
    response = parse_response(data)
    assert (response.status, response.reason, response.body) == (status, reason, body)
    assert response.header("status") is None


@pytest.mark.parametrize("data", [b"", b"Status: 200 OK\r\n", b"Status: abc\r\n\r\n", b"no colon here\r\n\r\n"])
def test_bad_cgi_responses_are_502(data):
    with pytest.raises(ProtocolError) as caught:
        parse_response(data)
    assert caught.value.status == 502


@pytest.mark.parametrize("data, end", [
    (b"A: b\r\n\r\nbody", 8), (b"A: b\n\nbody\n\n", 6), (b"A: b\n\r\nx", 7),
    (b"\r\nbody", 2), (b"A: b\r\n", -1), (b"", -1),
])
def test_response_header_end_is_the_one_rule_for_parse_response_too(data, end):
    """--fix-status (status_fixup) and parse_response find the header block's end alike."""
    assert response_header_end(data) == end
    if end < 0:
        with pytest.raises(ProtocolError) as caught:
            parse_response(data)
        assert caught.value.status == 502
    else:
        assert parse_response(data).body == data[end:]


@pytest.mark.parametrize("uri, path", [
    ("/a/b?q=1", "/a/b"),
    ("/sapp/../sapp/x", "/sapp/x"),          # what curl --path-as-is sends
    ("/sapp//x", "/sapp/x"),
    ("/a/./b/", "/a/b/"),
    ("/a/b/..", "/a/"),
    ("/x/%2e%2e/y", "/y"),                   # dot segments spelled with escapes count too
    ("/a%2Fb", "/a/b"),                      # decoded once, as nginx does
    ("/c%2520d", "/c%20d"),                  # and only once
    ("/caf%C3%A9", "/caf\u00c3\u00a9"),      # bytes as latin-1 str (PEP 3333)
    ("/100%", "/100%"),                      # a malformed escape stays
    ("/", "/"),
])
def test_request_path_from_request_uri_is_decoded_once_and_normalised(uri, path):
    assert request_path({"REQUEST_URI": uri}) == path


@pytest.mark.parametrize("uri", ["/..", "/a/../..", "/%2e%2e/etc/passwd", "/a/..%2f..", "*", "a/b"])
def test_request_path_refuses_a_path_above_the_root(uri):
    with pytest.raises(ProtocolError) as caught:
        request_path({"REQUEST_URI": uri})
    assert caught.value.status == 400


def test_request_path_takes_nginx_document_uri_as_sent():
    assert request_path({"DOCUMENT_URI": "/c%20d", "REQUEST_URI": "/c%2520d"}) == "/c%20d"
    assert request_path({}) is None


@pytest.mark.parametrize("path, mount, rest", [
    ("/app/x", "/app", "/x"), ("/app", "/app", ""), ("/app/", "/app/", "/"), ("/x", "", "/x"),
])
def test_split_mount(path, mount, rest):
    assert split_mount(path, mount) == rest


@pytest.mark.parametrize("path, mount", [("/application", "/app"), ("/other/app", "/app"), ("/", "/app")])
def test_split_mount_refuses_a_path_outside_with_404(path, mount):
    with pytest.raises(ProtocolError) as caught:
        split_mount(path, mount)
    assert caught.value.status == 404
