"""SCGI protocol, sans I/O: bytes in, environ out; encoding for clients; CGI responses.

Strategy: one function, `netstring_extent`, decides from the length prefix how
many bytes the header netstring occupies (or that more bytes are needed, or
that the prefix is bad); `parse_request` builds on it, and `RequestParser`
(incremental feeding, with the size of the next read) is the one loop every
reader drives: the exact-read I/O layer and the resident CGI loop alike.
There is no second copy of the rules anywhere. For responses,
`response_header_end` is the one rule for where a CGI header block ends.

The request is the SCGI spec's netstring of NUL-terminated name/value pairs
followed by the body. Names and values are decoded as latin-1, PEP 3333's
"bytes as str", which cannot fail and round-trips every byte.

Duplicate names. The SCGI spec forbids them, but nginx 1.22 (Debian 12) sends
one ``HTTP_*`` pair per request header line, so a client repeating ``Cookie:``
arrives with HTTP_COOKIE twice. Duplicate ``HTTP_*`` names are combined as
RFC 3875 4.1.18 says (joined with ", ", and "; " for HTTP_COOKIE). Any other
duplicate (CONTENT_LENGTH, SCGI, REQUEST_METHOD, SCRIPT_FILENAME, ...) is a
400: two meanings for one CGI variable is how requests get smuggled.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing pulls in re, enum, functools: ~10 ms on every one-shot request
    from typing import Callable, Iterable, Mapping

__all__ = [
    "DEFAULT_MAX_HEADER",
    "IncompleteRequest",
    "MIN_HEADER_SIZE",
    "ProtocolError",
    "REASONS",
    "RequestError",
    "RequestParser",
    "Response",
    "encode_request",
    "hint_whole_path",
    "netstring_extent",
    "parse_request",
    "parse_response",
    "percent_decode",
    "request_path",
    "response_header_end",
    "sends_whole_path",
    "split_mount",
    "status_line",
]

# The 2011 C shim's limit, and twice what nginx's largest sane header block
# needs (large_client_header_buffers defaults to 4 x 8 KiB of request headers).
DEFAULT_MAX_HEADER = 262144

# The smallest header netstring a valid request can have: CONTENT_LENGTH must
# come first and SCGI=1 must be present. A reader may take this many bytes
# before it knows the header's size without ever reaching a valid request's body.
MIN_HEADER_SIZE = len(b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,")

# CONTENT_LENGTH has at most this many digits: 10**18 bytes is beyond any body,
# and int() of a long digit string is slow (and limited since Python 3.11).
MAX_CONTENT_LENGTH_DIGITS = 18


# Reason phrases for the statuses the gateway and its apps answer with (RFC 9110
# 15). A table instead of http.HTTPStatus: importing `http` pulls in `enum`,
# about 5 ms on every one-shot request (measured with -X importtime).
REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def status_line(status: int) -> str:
    """`NNN Reason`, as a Status header and a WSGI status say it."""
    return f"{status} {REASONS.get(status, 'Error')}"


class RequestError(Exception):
    """A request answered with an error: the base of every error that carries an HTTP status.

    `status` is the HTTP status to answer with; `message` goes to the client
    and the log, `detail` (a path, an errno text) to the log only. Turned
    into a response at the boundary only: answer.error_response renders it,
    answer.error_line is its one log line.
    """

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


class ProtocolError(RequestError):
    """A request or response that breaks the protocol.

    400 malformed, 408 header timeout, 413 header too large; 502 for a bad
    CGI response.
    """


class IncompleteRequest(Exception):
    """More bytes are needed before the header block can be parsed."""


def _error(message: str, offset: int, status: int = 400) -> ProtocolError:
    return ProtocolError(status, f"{message} at byte {offset}")


def netstring_extent(data: bytes, max_header: int = DEFAULT_MAX_HEADER) -> int:
    """Return the size of the header netstring at the start of `data`, comma included.

    Needs only the length prefix: raises IncompleteRequest while the digits
    and ':' have not all arrived, ProtocolError(413) as soon as the digits
    exceed `max_header`, and ProtocolError(400) for anything but a DJB
    netstring length (ASCII digits, no sign or space, no leading zero but "0").
    """
    return _prefix(data, max_header)[1]


def _prefix(data: bytes, max_header: int) -> tuple[int, int]:
    """netstring_extent's work: the offset of the length's ':', and the netstring's size."""
    max_digits = 6 if max_header == DEFAULT_MAX_HEADER else len(str(max_header))
    colon = data.find(b":", 0, max_digits + 1)
    if colon > 0 and (colon == 1 or data[0] != 0x30):
        digits = data[:colon]
        if digits.isdigit():
            length = int(digits)
            if length <= max_header:
                return colon, colon + length + 2
    _refuse_prefix(data[: colon if colon >= 0 else max_digits + 1], colon, max_header)
    raise IncompleteRequest


def _refuse_prefix(digits: bytes, colon: int, max_header: int) -> None:
    """Raise the ProtocolError a bad length prefix deserves; return if it is only incomplete."""
    if digits[:1] == b"0" and digits[1:2].isdigit():
        raise _error("leading zero in netstring length", 0)
    if colon == 0:
        raise _error("empty netstring length", 0)
    for index, byte in enumerate(digits):
        if not 0x30 <= byte <= 0x39:
            raise _error(f"illegal netstring length byte {bytes([byte])!r}", index)
    if digits and (int(digits) > max_header or len(digits) > len(str(max_header))):
        raise _error(f"header netstring longer than {max_header} bytes", 0, 413)


def parse_request(
    data: bytes, max_header: int = DEFAULT_MAX_HEADER
) -> tuple[dict[str, str], int]:
    """Parse the SCGI header block at the start of `data`.

    Returns the environ (latin-1 str names and values) and the offset at which
    the body starts. Raises IncompleteRequest or ProtocolError.

    Every check here is one C-level operation on the good path; a failed
    check hands over to `_refuse_block` or `_refuse_items`, which find and
    name the fault. The speed of this function is the per-item work it does
    not do.
    """
    # _prefix's rule for a length of up to 6 digits, inline (a call and a
    # tuple less); anything else, 7 digits included, goes through _prefix.
    colon = data.find(b":", 0, 7)
    if colon > 0 and (colon == 1 or data[0] != 0x30) and (digits := data[:colon]).isdigit() \
            and (size := int(digits)) <= max_header:
        end = colon + size + 2
    else:
        colon, end = _prefix(data, max_header)
    base = colon + 1
    if data[end - 2 : end] != b"\0," or end - 2 < base:
        _refuse_block(data, base, end)
    # One decode and one split for the whole block.
    items = data[base : end - 2].decode("latin-1").split("\0")
    length = items[1] if len(items) > 1 else ""
    if len(items) % 2 or items[0] != "CONTENT_LENGTH" or length != "0" and not (
            length.isdigit() and length.isascii() and len(length) <= MAX_CONTENT_LENGTH_DIGITS):
        _refuse_items(items, base)
    pairs = iter(items)
    environ = dict(zip(pairs, pairs))
    if len(environ) * 2 != len(items):
        environ = _combine_duplicates(items, base)
    if "" in environ or environ.get("SCGI") != "1":
        _refuse_items(items, base)
    return environ, end


def _refuse_block(data: bytes, base: int, end: int) -> None:
    """Raise IncompleteRequest, or the ProtocolError for a netstring that does not end in NUL and ','."""
    if len(data) < end:
        raise IncompleteRequest
    if data[end - 1] != 0x2C:
        raise _error(f"netstring ends with {data[end - 1:end]!r}, not ','", end - 1)
    raise _error("header block does not end with NUL", end - 2)


def _refuse_items(items: list[str], base: int) -> None:
    """Raise the ProtocolError for the first rule the split header block breaks."""
    if len(items) % 2:
        raise _error(f"header {items[-1][:40]!r} has no value", _offset(items, len(items) - 1, base))
    if items[0] != "CONTENT_LENGTH":
        raise _error(f"first header is {items[0][:40]!r}, not CONTENT_LENGTH", base)
    length = items[1]
    if not (length.isdigit() and length.isascii()) or len(length) > MAX_CONTENT_LENGTH_DIGITS:
        raise _error(f"illegal CONTENT_LENGTH {length[:40]!r}", _offset(items, 1, base))
    names = items[::2]
    if "" in names:
        raise _error("empty header name", _offset(items, names.index("") * 2, base))
    scgi = _combine_duplicates(items, base).get("SCGI")
    raise _error("SCGI header missing" if scgi is None else f"SCGI header is {scgi[:40]!r}, not '1'", base)


def _combine_duplicates(items: list[str], base: int) -> dict[str, str]:
    """Join repeated HTTP_* values per RFC 3875 4.1.18; any other repeat is an error."""
    environ: dict[str, str] = {}
    for index in range(0, len(items), 2):
        name, value = items[index], items[index + 1]
        if name not in environ:
            environ[name] = value
        elif name.startswith("HTTP_"):
            separator = "; " if name == "HTTP_COOKIE" else ", "
            environ[name] = environ[name] + separator + value
        else:
            raise _error(f"duplicate header {name[:40]!r}", _offset(items, index, base))
    return environ


def _offset(items: list[str], index: int, base: int) -> int:
    """Byte offset of items[index] in the request (only computed for error messages)."""
    return base + sum(len(item) + 1 for item in items[:index])


class RequestParser:
    """Incremental front of `parse_request`, for a reader fed arbitrary pieces.

    `feed()` returns None until the header block is complete, then the environ;
    bytes after the header (the start of the body) are kept in `.rest`.
    `needed()` is how much a reader that must never take a body byte may read
    next: until the length prefix is in, no more than the smallest valid
    header (MIN_HEADER_SIZE bytes always hold the whole prefix of a valid
    request); then exactly what is left of the header. Fed that way, the
    header arrives in two reads when it is sent whole, and `.rest` stays
    empty for every request that can be valid.
    """

    def __init__(self, max_header: int = DEFAULT_MAX_HEADER) -> None:
        self.max_header = max_header
        self.buffer = b""
        self.rest = b""
        self.size: int | None = None  # the header netstring's size, once its prefix is in
        self.environ: dict[str, str] | None = None

    def feed(self, data: bytes) -> dict[str, str] | None:
        """Take the next bytes; the environ once the header is complete. Raises ProtocolError."""
        if self.environ is not None:
            self.rest += data
            return self.environ
        self.buffer += data
        if self.size is None:
            try:
                self.size = netstring_extent(self.buffer, self.max_header)
            except IncompleteRequest:
                return None
        if len(self.buffer) < self.size:
            return None
        self.environ, offset = parse_request(self.buffer, self.max_header)
        self.rest = self.buffer[offset:]
        self.buffer = self.buffer[:offset]
        return self.environ

    def needed(self) -> int:
        """Bytes to read next without passing the header's end (0 once it is complete)."""
        if self.size is None:
            return max(MIN_HEADER_SIZE - len(self.buffer), 1)
        return max(self.size - len(self.buffer), 0)


def request_path(environ: "Mapping[str, str]") -> str | None:
    """The path the client asked for, decoded once and normalised; None when the server sent none.

    nginx's DOCUMENT_URI is taken as sent: nginx has percent-decoded and
    normalised it already, and decoding it again would turn "%2520" into a
    space. Otherwise REQUEST_URI up to its query is percent-decoded once
    (bytewise, PEP 3333's bytes as latin-1 str), its dot segments removed
    (RFC 3986 5.2.4) and repeated slashes merged, as nginx does to its own.
    A path that climbs above the root is a ProtocolError (400).
    """
    path = environ.get("DOCUMENT_URI")
    if path is not None:
        return path
    uri = environ.get("REQUEST_URI")
    if uri is None:
        return None
    decoded = percent_decode(uri.partition("?")[0])
    if not decoded.startswith("/"):
        raise ProtocolError(400, f"path does not start with '/': {decoded[:80]!r}")
    segments: list[str] = []
    for segment in decoded.split("/")[1:]:
        if segment == "..":
            if not segments:
                raise ProtocolError(400, f"path climbs above the root: {decoded[:80]!r}")
            segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    trailing = decoded.endswith("/") or decoded.endswith("/.") or decoded.endswith("/..")
    return "/" + "/".join(segments) + ("/" if trailing and segments else "")


#: Said once per process when a request comes from Apache's mod_proxy_scgi and
#: the front-end was given no mount point to split its path with.
WHOLE_PATH_HINT = ("the server sent the whole path as SCRIPT_NAME and no PATH_INFO "
                   "(Apache's mod_proxy_scgi does): give --script-name with the mount point")


_hinted: list[bool] = []  # whether this process said WHOLE_PATH_HINT already


def hint_whole_path(log: "Callable[[str], None]") -> None:
    """Say once per process, through ``log``, that SCRIPT_NAME needs --script-name to be split."""
    if not _hinted:
        _hinted.append(True)
        log(WHOLE_PATH_HINT)


def sends_whole_path(environ: "Mapping[str, str]") -> bool:
    """True for Apache's mod_proxy_scgi, whose SCRIPT_NAME is the whole decoded path.

    Its SCRIPT_FILENAME is a proxy: URL ("proxy:scgi://HOST:PORT/rest"), and
    it cannot be told to send anything else.
    """
    return environ.get("SCRIPT_FILENAME", "").startswith("proxy:")


def split_mount(path: str, mount: str) -> str:
    """The part of ``path`` below the mount point ``mount`` ("" or "/..."); ProtocolError(404) outside it.

    The mount matches whole segments only: /app does not contain /application.
    """
    mount = mount.rstrip("/")
    if not path.startswith(mount) or path[len(mount):len(mount) + 1] not in ("", "/"):
        raise ProtocolError(404, f"path {path[:80]!r} is not under {mount!r}")
    return path[len(mount):]


_HEX = b"0123456789abcdefABCDEF"


def percent_decode(text: str) -> str:
    """Percent-decode a latin-1 str once, bytewise; malformed escapes stay as they are.

    urllib.parse.unquote would do, but importing it costs about 6 ms per request.
    """
    if "%" not in text:
        return text
    pieces = text.encode("latin-1").split(b"%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        if len(piece) >= 2 and piece[0] in _HEX and piece[1] in _HEX:
            out.append(bytes((int(piece[:2], 16),)))
            out.append(piece[2:])
        else:
            out.append(b"%")
            out.append(piece)
    return b"".join(out).decode("latin-1")


def encode_request(
    headers: "Mapping[str, str] | Iterable[tuple[str, str]]", body: bytes = b""
) -> bytes:
    """Encode an SCGI request: CONTENT_LENGTH first (from `body`), SCGI=1, then `headers`.

    CONTENT_LENGTH and SCGI given in `headers` are replaced. Values are encoded
    as latin-1, the inverse of `parse_request`.
    """
    pairs = headers.items() if hasattr(headers, "items") else headers
    parts = [f"CONTENT_LENGTH\0{len(body)}\0SCGI\x001\0"]
    for name, value in pairs:
        if name not in ("CONTENT_LENGTH", "SCGI"):
            parts.append(f"{name}\0{value}\0")
    block = "".join(parts).encode("latin-1")
    return b"%d:%s,%s" % (len(block), block, body)


class Response(tuple):  # type: ignore[type-arg]  # a 4-tuple of mixed types
    """A CGI response as the client sees it: (status, reason, headers, body).

    typing.NamedTuple written out by hand: this module is imported on every
    one-shot request, and importing typing costs about 10 ms there.
    """

    __slots__ = ()

    def __new__(cls, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> "Response":
        return tuple.__new__(cls, (status, reason, headers, body))

    status: int = property(lambda self: self[0])  # type: ignore[assignment]
    reason: str = property(lambda self: self[1])  # type: ignore[assignment]
    headers: list[tuple[str, str]] = property(lambda self: self[2])  # type: ignore[assignment]
    body: bytes = property(lambda self: self[3])  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Response(status=%r, reason=%r, headers=%r, body=%r)" % self

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header called `name` (any case), or `default`."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), default)


def response_header_end(data: bytes) -> int:
    """Offset just past the blank line that ends a CGI response's header block, or -1.

    Lines end with LF, a CR before it optional, as nginx reads them (a mix
    of both included): the block ends at the first empty line.
    """
    if data.startswith(b"\r\n"):
        return 2
    if data.startswith(b"\n"):
        return 1
    ends = [index + 2 for index in (data.find(b"\n\n"),) if index >= 0]
    ends += [index + 3 for index in (data.find(b"\n\r\n"),) if index >= 0]
    return min(ends) if ends else -1


def parse_response(data: bytes) -> Response:
    """Parse a CGI response (RFC 3875 6): a header block, a blank line, the body.

    The status comes from `Status: NNN reason`, or an `HTTP/1.x NNN reason`
    first line (nph style), or else is 200, or 302 when the only header is a
    Location (as nginx answers). LF-only line ends are accepted, as nginx does.
    """
    end = response_header_end(data)
    if end < 0:
        raise ProtocolError(502, "response has no header block")
    head, body = data[:end], data[end:]
    lines = [line[:-1] if line.endswith("\r") else line
             for line in head.decode("latin-1").split("\n")[:-2]]
    status_text = None
    if lines and lines[0].startswith("HTTP/"):
        status_text = lines.pop(0).partition(" ")[2]
    headers = []
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(502, f"malformed response header line {line[:60]!r}")
        headers.append((name, value.strip()))
    for name, value in headers:
        if name.lower() == "status":
            status_text = value
    headers = [(name, value) for name, value in headers if name.lower() != "status"]
    if status_text is None:
        only_location = len(headers) == 1 and headers[0][0].lower() == "location"
        return Response(302, "Found", headers, body) if only_location else Response(200, "OK", headers, body)
    code, _, reason = status_text.strip().partition(" ")
    if len(code) != 3 or not code.isdigit() or not code.isascii():
        raise ProtocolError(502, f"malformed status {status_text[:60]!r}")
    return Response(int(code), reason.strip(), headers, body)
