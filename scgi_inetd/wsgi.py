"""Run a WSGI (PEP 3333) app on one SCGI connection: the inetd front-end.

Strategy: a super-server starts one process per connection with the
socket on fds 0, 1 and 2.  run_app points fd 2 and wsgi.errors at a log,
reads the SCGI header exactly (scgi_inetd.reader), builds the environ,
runs the app, and writes a CGI-style response beginning with
``Status: NNN reason``.  Everything the app hands over is checked before a
byte of it is sent: the status line, header names and values (no CR, LF,
NUL or other control characters, no hop-by-hop headers), bytes-only body
chunks, and never more body than a Content-Length the app declared.  Once
the response is out, the unread rest of the request body is drained so the
kernel does not reset the connection under nginx.

When fd 0 is a listening socket instead (inetd ``wait``, systemd
``Accept=no``, or ``--listen``), run_app hands the very same per-connection
function to scgi_inetd.resident, whose frame reads each header and passes
it on to a child forked for the connection (or, with
``--requests-per-child``, to a pre-forked worker).

This module sits on every request's path: it imports only modules that cost
next to nothing at start-up (posix, select, time: not even os, see paths);
the error answer, traceback and the resident loop are imported when needed.
"""

import posix

from .logsink import format_line, quote_names
from .options import ServeOptions, serve_options
from .paths import S_IFMT, S_IFREG
from .protocol import DEFAULT_MAX_HEADER, ProtocolError, hint_whole_path, sends_whole_path, split_mount
from .protocol import request_path as protocol_request_path
from .reader import (DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_SPOOL_DIR, check_body_size,
                     one_connection, read_request)
from .wsgi_input import BodyError, BodyInput

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds per request; annotations only
    from typing import Any, BinaryIO, Callable, Iterable, Iterator, NoReturn, TextIO

    WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

__all__ = ["APP_FAILURES", "BLOCK_SIZE", "CONTROL_BYTES", "DUPLICATE_CGI_NAMES", "HOP_BY_HOP",
           "SENDFILE_CHUNK", "TOKEN_CHARS", "WSGI_CONSTANTS", "ClientGone", "FileWrapper", "HeaderError",
           "Response", "build_environ", "checked_name", "checked_status", "handle_connection", "host_name",
           "listen_and_log", "printable", "render_head", "request_path", "run_app", "sendfile", "serve_app"]

# Response headers that describe one HTTP connection, not the response; an
# app must not set them (PEP 3333, "Other HTTP Features"; RFC 9110 7.6.1).
HOP_BY_HOP = frozenset((
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
))

# RFC 9110 5.6.2 token characters: what a header name may be made of.
TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789"
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

# Control characters that must not appear in a status reason or a header
# value (RFC 9110 5.5): CR and LF would split the response, NUL and the rest
# are refused by HTTP parsers downstream.  Horizontal tab is allowed.
CONTROL_BYTES = bytes(range(9)) + bytes(range(10, 32)) + b"\x7f"


# Request headers nginx copies from the client that duplicate CONTENT_TYPE
# and CONTENT_LENGTH (PEP 3333 and wsgiref.validate forbid them), and the
# client's Transfer-Encoding: the body arrives de-chunked with its real
# CONTENT_LENGTH (SCGI requires one), and an app that sees "chunked" de-chunks
# it again (Bottle answers 400).
DUPLICATE_CGI_NAMES = ("HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_TRANSFER_ENCODING")


# What an app may raise that the gateway answers with a 500: any Exception, and
# SystemExit and KeyboardInterrupt too (sys.exit() in an app, or ^C in a
# debugger session), which would otherwise end the process with no answer.
APP_FAILURES = (Exception, SystemExit, KeyboardInterrupt)


class HeaderError(ValueError):
    """The app passed start_response something that must not reach the client.

    No RequestError: it is raised into the app, from its own call of
    start_response, and the app may handle it. An app that lets it through
    has failed like any other, and gets the generic 500 (Response._app_error).
    """


class ClientGone(ConnectionError):
    """The client closed the connection while the response was being sent."""


def run_app(app: "WSGIApp", *, stdin: int = 0, stdout: int = 1, stderr: "str | TextIO | None" = None,
            script_name: str | None = None, **settings: "Any") -> int:
    """Serve ``app`` on the connection a super-server passed on ``stdin``/``stdout``.

    ``stderr`` (a path, a file object, "syslog", or None for /dev/null)
    receives fd 2 and wsgi.errors before the app runs: under inetd fd 2 is
    the client socket.  ``settings`` are the serving options by their names
    in options.OPTIONS (``max_body=1 << 20``, ``listen="unix:/run/app.sock"``,
    ``max_children=8``...), the command line's defaults otherwise.  When
    ``stdin`` is a listening socket (or ``listen`` names one) this serves
    until stopped, one forked child per connection; otherwise it serves
    exactly one request.  Returns the exit status.
    """
    from .logsink import open_log

    options = serve_options(**settings)
    try:
        errors = open_log(stderr)
    except OSError as error:
        from .answer import log_unavailable

        return log_unavailable(stderr, error, resident=bool(options.listen))
    return serve_app(app, errors, stdin=stdin, stdout=stdout,
                     script_name=script_name, options=options)


def listen_and_log(options: "ServeOptions", program: str) -> "tuple[int, TextIO] | int":
    """A front-end's start: bind --listen, then point fd 2 at the log; or the exit status why not.

    Binding comes first, so that a failure is told on the real stderr (one
    line, exit 1); a log that cannot be opened is answered by
    answer.log_unavailable. Returns the descriptor to serve on (the bound
    listener, or fd 0) and the log stream.
    """
    from .logsink import open_log

    listen_fd = 0
    if options.listen:
        from .listener import listen_first

        bound = listen_first(options, program)
        if bound is None:
            return 1
        listen_fd = bound
    try:
        return listen_fd, open_log(options.stderr)
    except OSError as error:
        from .answer import log_unavailable

        return log_unavailable(options.stderr, error, resident=listen_fd != 0)


def serve_app(app: "WSGIApp", errors: "TextIO", *, stdin: int = 0, stdout: int = 1,
              script_name: str | None = None, options: "ServeOptions | None" = None) -> int:
    """Like run_app, with the log already opened (a CLI opens it before importing the app).

    ``options`` (the defaults of options.OPTIONS when None) is passed whole:
    the reader's limits apply to every connection, the rest to resident mode.
    """
    options = ServeOptions() if options is None else options
    limits = {name: getattr(options, name)
              for name in ("max_header", "header_timeout", "max_body", "body_timeout", "spool_dir")}
    listener = None
    if options.listen or not one_connection(stdin):
        from .listener import find_listener

        listener = find_listener(options.listen, stdin, mode=options.socket_mode, owner=options.socket_owner)
    if listener is None:
        handle_connection(app, errors, stdin=stdin, stdout=stdout, script_name=script_name,
                          run_once=True, **limits)
        return 0
    from .resident import serve

    def handle(request: dict[str, str], fd: int, received: bytes) -> None:
        handle_connection(app, errors, stdin=fd, stdout=fd, script_name=script_name,
                          run_once=False, request=request, received=received, **limits)

    return serve(listener, handle, options)


def handle_connection(app: "WSGIApp", errors: "TextIO", *, stdin: int = 0, stdout: int = 1,
                      script_name: str | None = None, max_header: int = DEFAULT_MAX_HEADER,
                      header_timeout: float = DEFAULT_HEADER_TIMEOUT, run_once: bool = True,
                      max_body: int | None = None, body_timeout: float = DEFAULT_BODY_TIMEOUT,
                      spool_dir: str = DEFAULT_SPOOL_DIR, request: "dict[str, str] | None" = None,
                      received: bytes = b"") -> None:
    """Serve one SCGI request on ``stdin``/``stdout`` with ``app``; never raises for bad input.

    A malformed request gets the parser's status and one log line, and the
    app is not called; nor is it for a body over ``max_body`` (413, refused
    before a byte of it is read). ``request``, the header a resident loop
    has read already, is not read again; ``received``, the body bytes read
    with it, are the start of wsgi.input.
    """
    response = Response(stdout, errors)
    try:
        headers = read_request(stdin, max_header=max_header, timeout=header_timeout) if request is None else request
    except ProtocolError as error:
        response.fail(error.status, error.message, error.detail)
        errors.flush()
        from .answer import finish_connection

        finish_connection(stdin, stdout)
        return
    except OSError as error:
        response.log(f"reading the request failed: {error}")
        errors.flush()
        return
    length = int(headers.get("CONTENT_LENGTH") or 0)
    try:
        check_body_size(length, max_body)
    except BodyError as error:
        from .answer import DISCARD_LIMIT, finish_connection

        response.fail(error.status, error.message, error.detail)
        errors.flush()
        finish_connection(stdin, stdout, min(max(error.left - len(received), 0), DISCARD_LIMIT))
        return
    body = response.body = BodyInput(stdin, length, body_timeout, spool_dir, received)
    try:
        environ = build_environ(headers, body, errors, script_name=script_name, run_once=run_once)
    except ProtocolError as error:
        response.fail(error.status, error.message, error.detail)
    else:
        if script_name is None and sends_whole_path(headers):
            hint_whole_path(response.log)
        response.run(app, environ)
    if response.cut_off:
        from .answer import abort_connection

        abort_connection(stdout)
    elif not response.client_gone:
        body.drain()
    body.close()
    errors.flush()


def build_environ(headers: dict[str, str], body: BodyInput, errors: "TextIO", *,
                  script_name: str | None = None, run_once: bool = True) -> dict:
    """The PEP 3333 environ for one SCGI request; raises ProtocolError when it cannot be served.

    Names with a '.' are dropped: PEP 3333 reserves them for the server and
    middleware (``wsgi.input``, ``scgi_bootmenu.after``), and a client of the
    socket must not be able to set one.
    """
    environ: dict = dict(headers)
    if "." in "".join(headers):  # one search over all the names: a third of the cost of a test of each
        reserved = [name for name in headers if "." in name]
        for name in reserved:
            del environ[name]
        errors.write(format_line("dropped request variables with '.' "
                                 f"in the name (reserved by PEP 3333): {quote_names(reserved)}"))
    for name in DUPLICATE_CGI_NAMES:
        environ.pop(name, None)
    if not environ.get("REQUEST_METHOD"):
        raise ProtocolError(400, "missing REQUEST_METHOD")
    environ["SCRIPT_NAME"], environ["PATH_INFO"] = request_path(environ, script_name)
    https = environ.get("HTTPS", "").lower() in ("on", "1", "yes")
    scheme = "https" if https or environ.get("REQUEST_SCHEME") == "https" else "http"
    if not environ.get("SERVER_NAME"):
        environ["SERVER_NAME"] = host_name(environ.get("HTTP_HOST", "")) or "localhost"
    if not environ.get("SERVER_PORT"):
        environ["SERVER_PORT"] = "443" if scheme == "https" else "80"
    environ.setdefault("SERVER_PROTOCOL", "HTTP/1.0")
    environ.update(WSGI_CONSTANTS)
    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = body
    environ["wsgi.errors"] = errors
    environ["wsgi.run_once"] = run_once
    return environ


def host_name(host: str) -> str:
    """The name part of a Host header: "example.org:8080" -> "example.org", "[::1]:80" -> "[::1]"."""
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and not name.endswith(":"):
        return name
    return host


def request_path(environ: dict, script_name: str | None = None) -> tuple[str, str]:
    """SCRIPT_NAME and PATH_INFO for a request, as latin-1 str (PEP 3333).

    With a mount point (``script_name``: --script-name, or run_app's), the
    path is protocol.request_path's (nginx's DOCUMENT_URI, else REQUEST_URI
    decoded once and normalised) cut at the mount, whatever the server sent
    as SCRIPT_NAME and PATH_INFO: Apache sends the whole path as SCRIPT_NAME.
    Without one, the server's PATH_INFO stands when it sent one; otherwise
    (nginx's stock scgi_params) the path is cut at the server's SCRIPT_NAME.
    A request outside the mount gets a 404.
    """
    if script_name is None:
        script_name = environ.get("SCRIPT_NAME", "")
        path_info = environ.get("PATH_INFO")
        if path_info is not None:
            return script_name, path_info
    path = protocol_request_path(environ)
    if path is None:
        path = ""
    return script_name.rstrip("/"), split_mount(path, script_name)


def render_head(status: str, headers: list) -> tuple[bytes, int | None]:
    """Check a status and header list from start_response; return the response head and Content-Length.

    Raises HeaderError for anything that is not a well-formed CGI response
    head: the gateway then answers 500 instead of passing it on.
    """
    if type(status) is not str:
        raise HeaderError(f"status must be str, not {type(status).__name__}")
    if status not in _CHECKED_STATUSES:
        checked_status(status)
    lines = ["Status: ", status, "\r\n"]
    length: int | None = None
    if type(headers) is not list:
        raise HeaderError(f"headers must be a list, not {type(headers).__name__}")
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise HeaderError(f"each header must be a (name, value) tuple: {item!r}")
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise HeaderError(f"header name and value must be str: {item!r}")
        lower = _CHECKED_NAMES.get(name) or checked_name(name)
        if lower == "content-length":
            if not value.isascii() or not value.isdigit() or (length is not None and int(value) != length):
                raise HeaderError(f"invalid Content-Length: {value!r}")
            length = int(value)
        if not printable(value):
            raise HeaderError(f"control or non-latin-1 character in header {name!r}: {value!r}")
        lines += (name, ": ", value, "\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1"), length


#: Header names that passed checked_name, to their lower-case form, and
#: statuses that passed checked_status: an app sends the same few of each
#: with every response, and each is checked once per process (at most 256).
_CHECKED_NAMES: dict[str, str] = {}
_CHECKED_STATUSES: set[str] = set()


def checked_status(status: str) -> None:
    """Raise HeaderError unless ``status`` is 'NNN reason', NNN a final status (200 to 599)."""
    code, space, reason = status.partition(" ")
    if len(code) != 3 or not code.isascii() or not code.isdigit() or not "100" <= code <= "599" \
            or not space or not reason:
        raise HeaderError(f"status must be 'NNN reason' with NNN from 100 to 599: {status!r}")
    if code < "200":
        # A 1xx is never the final answer (RFC 9110 15.2); nginx would pass it on
        # and then relay the body raw on the client's connection as a response.
        raise HeaderError(f"1xx is not a final status: {status!r}")
    if not printable(reason):
        raise HeaderError(f"control or non-latin-1 character in status: {status!r}")
    if len(_CHECKED_STATUSES) < 256:
        _CHECKED_STATUSES.add(status)


def checked_name(name: str) -> str:
    """A header name an app may send, lower-cased; raises HeaderError for any other."""
    if not name or not TOKEN_CHARS.issuperset(name) or name[-1] in "-_":
        raise HeaderError(f"invalid header name: {name!r}")
    lower = name.lower()
    if lower in HOP_BY_HOP:
        raise HeaderError(f"hop-by-hop header not allowed from an app: {name!r}")
    if lower == "status":
        raise HeaderError("the status goes to start_response, not in a Status header")
    if len(_CHECKED_NAMES) < 256:
        _CHECKED_NAMES[name] = lower
    return lower


def printable(text: str) -> bool:
    """True when ``text`` is latin-1 without control characters (CR, LF, NUL, ...); tab is allowed."""
    if text.isascii() and text.isprintable():  # most are: no encoding needed
        return True
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return len(raw.translate(None, CONTROL_BYTES)) == len(raw)


# Bytes per read on the fallback path (the PEP's example default).
BLOCK_SIZE = 8192

# Bytes per posix.sendfile call: one call could move up to 2 GiB, but capping it
# keeps each call short so Content-Length bookkeeping stays simple.
SENDFILE_CHUNK = 1 << 24


class FileWrapper:
    """wsgi.file_wrapper: iterable over a file-like object's blocks.

    Response recognises it (exact type, so a middleware that wraps it in
    another iterable gets plain iteration) and, when the file has a real
    descriptor on a regular file, lets the kernel copy from the file's
    current position to the socket with os.sendfile (PEP 3333, "Optional
    Platform-Specific File Handling").  Anything else (BytesIO, a pipe) is
    read in blocks.
    """

    def __init__(self, filelike: "BinaryIO", blksize: int = BLOCK_SIZE) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> "Iterator[bytes]":
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data

    def sendable(self) -> tuple[int, int, int] | None:
        """(descriptor, current offset, bytes to its end) when sendfile can be used, else None."""
        try:
            fd = self.filelike.fileno()
            offset = self.filelike.tell()
            info = posix.fstat(fd)
        except (AttributeError, OSError, ValueError):
            return None
        if info.st_mode & S_IFMT != S_IFREG:
            return None
        return fd, offset, max(info.st_size - offset, 0)


#: The wsgi.* keys that are the same in every environ, set with one update.
WSGI_CONSTANTS = {
    "wsgi.version": (1, 0),
    "wsgi.input_terminated": True,
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.file_wrapper": FileWrapper,
}


def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    """Copy ``count`` bytes from ``in_fd`` at ``offset`` to ``out_fd``; return bytes sent.

    Returns less than ``count`` only when the file turned out shorter.
    """
    sent = 0
    while sent < count:
        n = posix.sendfile(out_fd, in_fd, offset + sent, min(count - sent, SENDFILE_CHUNK))
        if n == 0:
            break
        sent += n
    return sent


class Response:
    """One response on ``fd``: start_response, write, and sending the app's iterable.

    The method names follow PEP 3333 and wsgiref.handlers.BaseHandler.
    """

    def __init__(self, fd: int, errors: "TextIO") -> None:
        self.fd = fd
        self.errors = errors
        self.head: bytes | None = None  # the checked status and headers, once start_response ran
        self.headers_sent = False
        self.remaining: int | None = None  # body bytes Content-Length still allows
        self.sent = 0  # body bytes sent
        self.client_gone = False
        self.head_only = False  # a HEAD request: headers go out, body bytes do not
        self.no_body = False  # head_only, or a 204 or 304 answer, which has no body (RFC 9110 6.4.1)
        self.dropped_body = False  # body bytes of such an answer were dropped (logged once)
        self.overflowed = False  # the app went past Content-Length (logged once)
        self.cut_off = False  # the response failed after its head went out: end it with a reset
        self.body: BodyInput | None = None  # the request body, taken off the wire before we answer

    def log(self, message: str) -> None:
        """One line in the log, in the form of every program's (logsink.format_line)."""
        self.errors.write(format_line(message))

    def start_response(self, status: str, headers: list, exc_info: "Any" = None) -> "Callable[[bytes], None]":
        """PEP 3333 start_response: check and keep the head; send nothing yet."""
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.head is not None:
            raise AssertionError("start_response called a second time without exc_info")
        self.head, self.remaining = render_head(status, headers)
        self.no_body = self.head_only or status[:3] in ("204", "304")
        return self.write

    def write(self, data: bytes) -> None:
        """The PEP's write() callable, also used for every chunk of the iterable."""
        if self.head is None:
            raise AssertionError("write() before start_response")
        if type(data) is not bytes:
            raise TypeError(f"response body chunks must be bytes, not {type(data).__name__}")
        if self.no_body:
            if data and not self.head_only and not self.dropped_body:
                self.log(f"app sent a body with a {self.head[8:11].decode()} answer; dropped")
                self.dropped_body = True
            data = b""
        elif self.remaining is not None and len(data) > self.remaining:
            if not self.overflowed:
                self.log(f"app sent more than Content-Length ({self.sent + self.remaining}); "
                         "extra bytes dropped")
                self.overflowed = True
            data = data[:self.remaining]
        if not self.headers_sent:
            if not data:
                return
            self._begin()
            if len(data) <= 65536:  # one system call for head and a small body
                self._send(self.head + data)
            else:
                self._send(self.head)
                self._send(data)
        elif data:
            self._send(data)
        self.sent += len(data)
        if self.remaining is not None:
            self.remaining -= len(data)

    def _send(self, data: bytes) -> None:
        if self.client_gone:
            raise ClientGone("client went away")
        try:
            while data:
                data = data[posix.write(self.fd, data):]
        except (BrokenPipeError, ConnectionResetError) as error:
            self.gone(error)

    def gone(self, error: OSError) -> "NoReturn":
        """The client closed the connection: log it once and stop the response."""
        self.client_gone = True
        self.log(f"client went away after {self.sent} body bytes ({error.strerror})")
        raise ClientGone(error.errno, error.strerror) from None

    def finish(self) -> None:
        """Send the head if no body chunk carried it (an empty body)."""
        if not self.headers_sent:
            if self.head is None:
                raise AssertionError("app returned without calling start_response")
            self._begin()
            self._send(self.head)

    def _begin(self, error: bool = False) -> None:
        """Before the first response byte: take the request body off the connection.

        nginx sends no more of the request body once the response has begun,
        so an app that answers first has the rest spooled for it to read on
        (BodyError, 400/408/503, when that fails: nothing has been sent yet);
        before an error of ours the body is read and dropped, so that closing
        leaves nothing unread on the socket, which the kernel would answer
        with a reset.
        """
        if self.body is not None and self.body.on_connection:
            if error:
                self.body.drain()
            else:
                self.body.spool()
        self.headers_sent = True

    def fail(self, status: int, message: str, detail: str = "") -> None:
        """Answer with an error of our own, when no header has gone out yet; one log line.

        ``detail`` (a path, an errno text) goes to the log only. Error
        paths only import answer: it is no part of a served request.
        """
        from .answer import error_line

        self.log(error_line(status, message, detail))
        self._send_error(status, message)

    def _send_error(self, status: int, message: str) -> None:
        """Send our own error response unless headers went out; only error paths import answer."""
        from .answer import error_response

        if not self.headers_sent:
            self._begin(error=True)
            try:
                self._send(error_response(status, message))
            except ClientGone:
                pass

    def run(self, app: "WSGIApp", environ: dict) -> None:
        """Call the app, send its response, and call the iterable's close() whatever happens."""
        self.head_only = environ["REQUEST_METHOD"] == "HEAD"
        result = None
        try:
            result = app(environ, self.start_response)
            if type(result) is FileWrapper:
                self._send_file(result)
            else:
                self._send_iterable(result)
            self.finish()
            if self.remaining and not self.no_body:
                self.log(f"response cut short: Content-Length said {self.remaining} more bytes")
                self.cut_off = True
        except ClientGone:
            pass  # logged where it was noticed
        except BodyError as error:
            if self.headers_sent:
                self.log(f"response cut off after {self.sent} body bytes: {error}")
                self.cut_off = True
            else:
                self.fail(error.status, error.message, error.detail)
        except APP_FAILURES:
            self._app_error()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except APP_FAILURES:
                    self._app_error("close() of the response iterable failed")

    def _send_iterable(self, result: "Iterable[bytes]") -> None:
        if isinstance(result, (list, tuple)) and len(result) == 1 and type(result[0]) is bytes \
                and not self.head_only:
            # A one-chunk body has a known length: say so (PEP 3333, "Handling the
            # Content-Length Header"), so nginx need not chunk it for the client.
            self.declare_length(len(result[0]))
        write = self.write
        for chunk in result:
            write(chunk)
            if self.remaining == 0 and self.headers_sent:
                break

    def declare_length(self, size: int) -> None:
        """Add Content-Length to a head not yet sent that lacks one (not for 204, 304)."""
        if self.head is None or self.headers_sent or self.remaining is not None \
                or self.head.startswith((b"Status: 204", b"Status: 304")):
            return
        self.head = self.head[:-2] + b"Content-Length: %d\r\n\r\n" % size
        self.remaining = size

    def _send_file(self, wrapper: FileWrapper) -> None:
        where = wrapper.sendable() if self.head is not None else None
        if where is None:
            self._send_iterable(wrapper)
            return
        in_fd, offset, size = where
        self.declare_length(size)
        self.finish()
        count = size if self.remaining is None else min(size, self.remaining)
        if self.no_body or not count:
            return
        try:
            sent = sendfile(self.fd, in_fd, offset, count)
        except (BrokenPipeError, ConnectionResetError) as error:
            self.gone(error)
        self.sent += sent
        if self.remaining is not None:
            self.remaining -= sent

    def _app_error(self, what: str = "app raised an exception") -> None:
        """Log the traceback; answer 500 if nothing has been sent, else say the response was cut off."""
        import traceback

        if self.client_gone:
            return  # logged where it was noticed; the app only reacted to it
        if self.headers_sent:
            what += f"; response cut off after {self.sent} body bytes"
            self.cut_off = True
        self.log(what + ":\n" + traceback.format_exc().rstrip("\n"))
        self._send_error(500, "Internal Server Error")

