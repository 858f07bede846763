"""The CGI/1.1 environment (RFC 3875 section 4) a script is exec'd with.

Strategy: start from nothing. The shim's own environment (whatever inetd,
systemd or a shell left in it) never reaches the script; only PATH, the
operator's ``--env`` / ``--pass-env`` variables, the request variables on an
allow-list and the variables we compute go in. The request cannot override
what the operator set, nor the script variables, which must describe the
script that is actually run.

Why an allow-list: whoever can connect to the socket chooses every name in
the request (openbsd-inetd creates unix sockets 0666), and LD_PRELOAD,
BASH_ENV, ``BASH_FUNC_name%%`` or PERL5OPT in a script's environment run
their code. So a request variable reaches the script only when it is one of
the CGI/1.1 meta-variables and the names web servers send (REQUEST_VARIABLES,
after Apache suEXEC's safe list), an ``HTTP_*`` name made of letters, digits
and '_', or a name the operator allowed with ``--pass-var``. The rest is
dropped, and named in one log line.

Values are PEP 3333 "bytes as str": the request's are latin-1 decoded by
the protocol layer, and paths and the operator's variables are brought to
the same form here, so that ``exec_environ`` hands execve the exact bytes
the web server sent.
"""

import posix
import sys

from .logsink import log_line, quote_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DEFAULT_PATH", "DROPPED", "REQUEST_VARIABLES", "SCRIPT_VARIABLES", "SERVER_SOFTWARE", "Script",
           "build_environ", "exec_environ", "is_variable_name", "operator_environ", "script_variables"]

#: PATH when the operator gives none: the shim's own PATH is not inherited,
#: so a script sees the same PATH under inetd, systemd and a shell.
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SERVER_SOFTWARE = "scgi-inetd"

#: Request variables that never reach the script: SCGI is the protocol's
#: own marker; HTTP_PROXY is any client's "Proxy:" header, which CGI
#: programs may take for their proxy setting (httpoxy, CVE-2016-5385);
#: HTTP_TRANSFER_ENCODING describes a framing the web server has already
#: undone (nginx de-chunks the body, sends its real CONTENT_LENGTH, and
#: still passes "chunked" on: a script that believes it de-chunks twice).
DROPPED = frozenset({"SCGI", "HTTP_PROXY", "HTTP_TRANSFER_ENCODING"})

#: Request variables a script may see: the RFC 3875 4.1 meta-variables and the
#: names nginx (scgi_params), lighttpd and Apache send, as Apache suEXEC's safe
#: list has them, less: AUTH_TYPE, REMOTE_USER, REMOTE_IDENT and
#: REDIRECT_REMOTE_USER, claims of identity that any client of the socket can
#: make (pass them with --pass-var when only the web server can connect);
#: SSL_* (OpenSSL reads SSL_CERT_FILE and SSL_CERT_DIR as its trust store);
#: TZ (the operator sets it with --env); and the names only Apache's
#: server-side includes set (DATE_GMT, DOCUMENT_NAME, LAST_MODIFIED, ...).
REQUEST_VARIABLES = frozenset({
    "CONTENT_LENGTH", "CONTENT_TYPE", "GATEWAY_INTERFACE", "PATH_INFO", "PATH_TRANSLATED",
    "QUERY_STRING", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_PORT", "REQUEST_METHOD",
    "REQUEST_SCHEME", "REQUEST_URI", "SCRIPT_FILENAME", "SCRIPT_NAME", "SCRIPT_URI", "SCRIPT_URL",
    "SERVER_ADDR", "SERVER_ADMIN", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
    "SERVER_SIGNATURE", "SERVER_SOFTWARE", "DOCUMENT_ROOT", "DOCUMENT_URI",
    "CONTEXT_DOCUMENT_ROOT", "CONTEXT_PREFIX", "HTTPS", "REDIRECT_STATUS", "REDIRECT_URL",
    "REDIRECT_QUERY_STRING", "UNIQUE_ID",
})

#: Variables computed from the script that runs (RFC 3875 4.1.5, 4.1.6, 4.1.13).
SCRIPT_VARIABLES = ("SCRIPT_NAME", "PATH_INFO", "PATH_TRANSLATED", "SCRIPT_FILENAME")


class Script:
    """The file to execute, the PATH_INFO left over, and SCRIPT_NAME when it came from the URL.

    ``script_name`` is None when the web server's SCRIPT_NAME stands (it named
    the script by SCRIPT_FILENAME); it is set when the script was found from
    the URL below a --script-name mount point, as request strings (latin-1).
    """

    __slots__ = ("path", "path_info", "script_name")

    def __init__(self, path: str, path_info: str = "", script_name: str | None = None) -> None:
        self.path = path
        self.path_info = path_info
        self.script_name = script_name

    def __repr__(self) -> str:
        return f"Script({self.path!r}, {self.path_info!r}, {self.script_name!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Script)
            and (self.path, self.path_info, self.script_name)
            == (other.path, other.path_info, other.script_name)
        )


def operator_environ(
    env: dict[str, str] | None = None,
    pass_env: tuple[str, ...] = (),
    inherited: "Mapping[bytes, bytes] | None" = None,
) -> dict[str, str]:
    """PATH plus ``--pass-env`` names (from the shim's environment, posix.environ) plus ``--env`` pairs."""
    inherited = posix.environ if inherited is None else inherited
    result = {"PATH": DEFAULT_PATH}
    for name in pass_env:
        passed = inherited.get(_latin1(name).encode("latin-1"))
        if passed is not None:
            result[_latin1(name)] = passed.decode("latin-1")
    for name, value in (env or {}).items():
        result[_latin1(name)] = _latin1(value)
    return result


def is_variable_name(name: str) -> bool:
    """A name made of ASCII letters, digits and '_', not starting with a digit."""
    return name.isascii() and name.isidentifier()


def build_environ(
    request: dict[str, str], script: Script, operator: dict[str, str],
    allowed: "frozenset[str]" = REQUEST_VARIABLES,
) -> dict[str, str]:
    """Merge the request's allowed variables, the operator's and the script's into one environment.

    ``allowed``: REQUEST_VARIABLES, plus the operator's --pass-var names.
    """
    environ = {}
    dropped = []
    for name, value in request.items():
        if name in allowed or (name[:5] == "HTTP_" and is_variable_name(name)):
            if name not in DROPPED and name not in SCRIPT_VARIABLES:
                environ[name] = value
        elif name != "SCGI":
            dropped.append(name)
    if dropped:
        log_line(f"dropped request variables not on the allow-list: {quote_names(dropped)}")
    environ["GATEWAY_INTERFACE"] = "CGI/1.1"
    environ.setdefault("SERVER_SOFTWARE", SERVER_SOFTWARE)
    environ.update(script_variables(request, script))
    environ.update(operator)
    return environ


def script_variables(request: dict[str, str], script: Script) -> dict[str, str]:
    """SCRIPT_NAME, PATH_INFO, PATH_TRANSLATED and SCRIPT_FILENAME for the script run.

    When the resolver split a SCRIPT_FILENAME that went past the script
    (DIR/app.cgi/extra), the remainder is PATH_INFO and is cut off the end of
    SCRIPT_NAME (or DOCUMENT_URI when the web server sent no SCRIPT_NAME), as
    Apache and fcgiwrap do. Otherwise the web server's PATH_INFO stands.
    A script found from the URL (--script-name) brings both with it.
    """
    if script.script_name is not None:
        return _script_variables(request, script, script.script_name, script.path_info)
    split_info = _latin1(script.path_info)
    path_info = split_info or request.get("PATH_INFO", "")
    script_name = request.get("SCRIPT_NAME")
    if script_name is None:
        script_name = request.get("DOCUMENT_URI", "")
        if path_info and not split_info and script_name.endswith(path_info):
            script_name = script_name[: -len(path_info)]
    if split_info and script_name.endswith(split_info):
        script_name = script_name[: -len(split_info)]
    return _script_variables(request, script, script_name, path_info)


def _script_variables(request: dict[str, str], script: Script, script_name: str,
                      path_info: str) -> dict[str, str]:
    variables = {
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "SCRIPT_FILENAME": _latin1(script.path),
    }
    # RFC 3875 4.1.6: PATH_INFO mapped onto the document root; unset without PATH_INFO.
    document_root = request.get("DOCUMENT_ROOT")
    if path_info and document_root:
        variables["PATH_TRANSLATED"] = document_root.rstrip("/") + path_info
    return variables


def exec_environ(environ: dict[str, str]) -> dict[bytes, bytes]:
    """The environment as the bytes execve needs, each value exactly as received."""
    return {name.encode("latin-1"): value.encode("latin-1") for name, value in environ.items()}


def _latin1(text: str) -> str:
    """A file-system str (os.fsdecode's, as argv is) as a bytes-as-str latin-1 value."""
    return text.encode(sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()).decode("latin-1")
