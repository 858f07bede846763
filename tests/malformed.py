"""Malformed SCGI requests, each with the status and message fragment it must get.

One table for every reader: the parser (tests/test_protocol.py), the exact
reader on sockets and pipes (tests/test_reader.py) and the resident CGI loop
(tests/test_cgi_resident.py).
"""


def netstring(block: bytes) -> bytes:
    return b"%d:%s," % (len(block), block)


def headers(*pairs: str) -> bytes:
    return b"".join(p.encode("latin-1") + b"\0" for p in pairs)


GOOD = headers("CONTENT_LENGTH", "0", "SCGI", "1")


# Each row: raw bytes, expected status, a fragment of the message.
MALFORMED = [
    (b":", 400, "empty netstring length"),
    (b"-5:", 400, "illegal netstring length byte b'-'"),
    (b"+5:", 400, "illegal netstring length byte b'+'"),
    (b" 5:", 400, "illegal netstring length byte b' '"),
    (b"5 :", 400, "illegal netstring length byte b' '"),
    (b"0x10:", 400, "illegal netstring length byte b'x'"),
    (b"1e3:", 400, "illegal netstring length byte b'e'"),
    (b"\xd9\xa3:", 400, "illegal netstring length byte"),  # Arabic-Indic digit in UTF-8
    (b"GET / HTTP/1.1\r\n", 400, "illegal netstring length byte b'G'"),
    (b"007:", 400, "leading zero"),
    (b"00", 400, "leading zero"),
    (b"01:x,", 400, "leading zero"),
    (b"999999999999:", 413, "longer than 262144"),
    (b"262145:", 413, "longer than 262144"),
    (b"9999999", 413, "longer than 262144"),
    (b"0:,", 400, "does not end with NUL"),
    (netstring(GOOD)[:-1] + b";", 400, "not ','"),
    (netstring(b"CONTENT_LENGTH\x000"), 400, "does not end with NUL"),
    (netstring(b"\x00"), 400, "has no value"),
    (netstring(headers("CONTENT_LENGTH", "0", "SCGI")), 400, "'SCGI' has no value"),
    (netstring(headers("SCGI", "1", "CONTENT_LENGTH", "0")), 400, "first header is 'SCGI'"),
    (netstring(headers("REQUEST_METHOD", "GET")), 400, "not CONTENT_LENGTH"),
    (netstring(headers("CONTENT_LENGTH", "", "SCGI", "1")), 400, "illegal CONTENT_LENGTH ''"),
    (netstring(headers("CONTENT_LENGTH", "-1", "SCGI", "1")), 400, "illegal CONTENT_LENGTH '-1'"),
    (netstring(headers("CONTENT_LENGTH", " 1", "SCGI", "1")), 400, "illegal CONTENT_LENGTH"),
    (netstring(headers("CONTENT_LENGTH", "1.5", "SCGI", "1")), 400, "illegal CONTENT_LENGTH"),
    (netstring(headers("CONTENT_LENGTH", "0x10", "SCGI", "1")), 400, "illegal CONTENT_LENGTH"),
    (netstring(headers("CONTENT_LENGTH", "\xb2", "SCGI", "1")), 400, "illegal CONTENT_LENGTH"),  # superscript two: str.isdigit() says yes
    (netstring(headers("CONTENT_LENGTH", "9" * 19, "SCGI", "1")), 400, "illegal CONTENT_LENGTH"),
    (netstring(headers("CONTENT_LENGTH", "0")), 400, "SCGI header missing"),
    (netstring(headers("CONTENT_LENGTH", "0", "SCGI", "2")), 400, "SCGI header is '2'"),
    (netstring(headers("CONTENT_LENGTH", "0", "SCGI", "")), 400, "SCGI header is ''"),
    (netstring(headers("CONTENT_LENGTH", "0", "SCGI", "1", "", "x")), 400, "empty header name"),
    (netstring(headers("CONTENT_LENGTH", "0", "SCGI", "1", "X", "1", "", "")), 400, "empty header name"),
    (netstring(headers("CONTENT_LENGTH", "0", "CONTENT_LENGTH", "5", "SCGI", "1")), 400, "duplicate header 'CONTENT_LENGTH'"),
    (netstring(headers("CONTENT_LENGTH", "0", "SCGI", "1", "SCGI", "1")), 400, "duplicate header 'SCGI'"),
    (netstring(headers("CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET", "REQUEST_METHOD", "POST")), 400, "duplicate header 'REQUEST_METHOD'"),
    (netstring(headers("CONTENT_LENGTH", "0", "SCGI", "1", "SCRIPT_FILENAME", "/a", "SCRIPT_FILENAME", "/b")), 400, "duplicate header 'SCRIPT_FILENAME'"),
]
